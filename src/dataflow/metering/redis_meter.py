"""Redis meter: check-and-count in one Lua script; keys hash-tagged per partner (Cluster-ready)."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from dataflow.metering.models import Access, Grant, Refusal, entitlement_refusal

__all__ = ["RedisMeter"]

# KEYS[1] counter, KEYS[2] access stream. ARGV: cap (-1 = none), ttl, key id, table, time (ms).
# Returns {allowed, count}. Read, compare and increment happen in one atomic step.
_ACQUIRE = """
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
local cap = tonumber(ARGV[1])
if cap >= 0 and c >= cap then return {0, c} end
c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000000, '*',
           'key', ARGV[3], 'table', ARGV[4], 'ts', ARGV[5], 'n', c)
return {1, c}
"""

_RELEASE = """
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if c > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""

_COUNTER_TTL = 400 * 86_400  # a counter outlives its month long enough to be settled and audited


class RedisMeter:
    def __init__(self, client: aioredis.Redis, *, prefix: str = "df") -> None:
        self._r = client
        self._prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "df") -> RedisMeter:
        # A blocking pool makes bursts wait for a connection instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=64, timeout=5)
        return cls(aioredis.Redis(connection_pool=pool), prefix=prefix)

    def counter_key(self, partner_id: int, month: str) -> str:
        return f"{self._prefix}:{{p:{partner_id}}}:acc:{month}"

    def stream_key(self, partner_id: int) -> str:
        return f"{self._prefix}:{{p:{partner_id}}}:log"

    async def acquire(self, access: Access) -> Grant:
        refusal = entitlement_refusal(access)
        if refusal is not None:
            count = await self.count(access.partner_id, access.month)
            return Grant(allowed=False, count=count, cap=access.cap, refusal=refusal)
        cap = -1 if access.cap is None else access.cap
        allowed, count = await self._acquire(
            keys=[
                self.counter_key(access.partner_id, access.month),
                self.stream_key(access.partner_id),
            ],
            args=[cap, _COUNTER_TTL, access.key_id, access.table, int(time.time() * 1000)],
        )
        if not allowed:
            return Grant(allowed=False, count=int(count), cap=access.cap, refusal=Refusal.CAP)
        return Grant(allowed=True, count=int(count), cap=access.cap)

    async def release(self, access: Access) -> None:
        await self._release(keys=[self.counter_key(access.partner_id, access.month)])

    async def count(self, partner_id: int, month: str) -> int:
        value = await self._r.get(self.counter_key(partner_id, month))
        return int(value or 0)

    async def counts(self, month: str) -> dict[int, int]:
        out: dict[int, int] = {}
        pattern = f"{self._prefix}:{{p:*}}:acc:{month}"
        async for raw in self._r.scan_iter(match=pattern, count=1000):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            partner = int(key.split("{p:", 1)[1].split("}", 1)[0])
            out[partner] = await self.count(partner, month)
        return out

    async def aclose(self) -> None:
        await self._r.aclose()
