"""Lua scripts of the Redis meter. Each touches one partner's keys only (one Cluster slot)."""

from __future__ import annotations

__all__ = ["ACQUIRE_MANY", "RELEASE", "THROTTLE"]

# Grant n of m: check and count a batch of one partner's accesses in one atomic step, and
# write their access records as ONE stream entry (the batch's details, packed by the caller,
# plus which of them were granted). Per-access XADDs would cost Redis more than the check.
# KEYS[1] monthly counter, KEYS[2] access stream; when rate limits apply, KEYS[3+2i] and
# KEYS[4+2i] are request i's per-second and per-minute window counters of its key.
# ARGV: cap, counter ttl, per-second limit, per-minute limit (-1: none), month, n, details
# (JSON: [[key id, table, release, member id, time ms(, [status, bytes, latency])], …], stored
# as is; the outcome is there when the response was ready before it was counted).
# Returns {stream id or '', the counter before the batch, codes}: codes is one digit per request
# (1 granted, 0 cap, 2 rate/s, 3 rate/min); each request's count follows from the counter and the
# grants before it. Three values whatever the batch size: the client parses 3 replies, not 2n.
ACQUIRE_MANY = """
local cap = tonumber(ARGV[1])
local rps = tonumber(ARGV[3])
local rpm = tonumber(ARGV[4])
local n = tonumber(ARGV[6])
local limited = #KEYS > 2
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
local windows = {}
local ttl = {}
local granted = {}
local codes = {}
local before = c
for i = 0, n - 1 do
  local code = 1
  local ks, km
  if cap >= 0 and c >= cap then
    code = 0
  elseif limited then
    ks, km = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
    if windows[ks] == nil then
      windows[ks] = tonumber(redis.call('GET', ks) or '0'); ttl[ks] = 2
    end
    if windows[km] == nil then
      windows[km] = tonumber(redis.call('GET', km) or '0'); ttl[km] = 61
    end
    if rps >= 0 and windows[ks] >= rps then code = 2
    elseif rpm >= 0 and windows[km] >= rpm then code = 3 end
  end
  if code == 1 then
    c = c + 1
    granted[#granted + 1] = i
    if limited then windows[ks] = windows[ks] + 1; windows[km] = windows[km] + 1 end
  end
  codes[#codes + 1] = code
end
local sid = ''
if #granted > 0 then
  if redis.call('INCRBY', KEYS[1], #granted) == #granted then
    redis.call('EXPIRE', KEYS[1], ARGV[2])
  end
  for k, v in pairs(windows) do redis.call('SET', k, v, 'EX', ttl[k]) end
  sid = redis.call('XADD', KEYS[2], '*', 't', 'a', 'm', ARGV[5],
                   'g', table.concat(granted, ','), 'd', ARGV[7])
end
return {sid, before, table.concat(codes)}
"""

# Give back one count (5xx) and say so in the stream, atomically. KEYS: counter, stream,
# released-set. ARGV: record id, month, status, time (ms). Never below zero; once per record.
RELEASE = """
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then return -1 end
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if c <= 0 then return 0 end
c = redis.call('DECR', KEYS[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('EXPIRE', KEYS[3], 3456000)
redis.call('XADD', KEYS[2], '*', 't', 'x', 'ref', ARGV[1], 'm', ARGV[2], 'st', ARGV[3],
           'ts', ARGV[4])
return c
"""

# Take one request from a key's rate windows, counting no access (unbilled routes that cost the
# server: the usage chart). The same window keys and expiries as ACQUIRE_MANY, so both draw on
# one budget. KEYS: per-second window, per-minute window. ARGV: per-second limit, per-minute
# limit (-1: none). Returns 1 taken, 2 per-second window full, 3 per-minute window full.
THROTTLE = """
local rps = tonumber(ARGV[1])
local rpm = tonumber(ARGV[2])
local s = tonumber(redis.call('GET', KEYS[1]) or '0')
local m = tonumber(redis.call('GET', KEYS[2]) or '0')
if rps >= 0 and s >= rps then return 2 end
if rpm >= 0 and m >= rpm then return 3 end
redis.call('SET', KEYS[1], s + 1, 'EX', 2)
redis.call('SET', KEYS[2], m + 1, 'EX', 61)
return 1
"""
