"""In-process meter: one process, no server (demo, laptop). Same contract as Redis."""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections import defaultdict

from dataflow.metering import metrics
from dataflow.metering.models import (
    Access,
    EntryKind,
    Grant,
    Refusal,
    StreamEntry,
    entitlement_refusal,
    stream_order,
)

__all__ = ["EmbeddedMeter"]


def _order(e: StreamEntry) -> tuple[int, int]:
    return e.order


class EmbeddedMeter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[int, str], int] = defaultdict(int)
        self._windows: dict[tuple[int, str, str, int], int] = defaultdict(int)
        self._streams: dict[int, list[StreamEntry]] = defaultdict(list)
        self._released: set[tuple[int, str]] = set()
        self._last_id = (0, 0)

    def _next_id(self) -> str:
        # Stream-like ids "<ms>-<seq>", increasing even across a restart (time moves on).
        ms = int(time.time() * 1000)
        last_ms, seq = self._last_id
        self._last_id = (ms, 0) if ms > last_ms else (last_ms, seq + 1)
        return f"{self._last_id[0]}-{self._last_id[1]}"

    async def acquire(self, access: Access) -> Grant:
        refusal = entitlement_refusal(access)
        if refusal is not None:
            return Grant(allowed=False, count=0, cap=access.cap, refusal=refusal)
        key = (access.partner_id, access.month)
        at_ms = int(time.time() * 1000)
        with self._lock:
            current = self._counts[key]
            if access.cap is not None and current >= access.cap:
                metrics.REFUSALS.labels(Refusal.CAP.value).inc()
                return Grant(allowed=False, count=current, cap=access.cap, refusal=Refusal.CAP)
            rate = self._take_rate(access, at_ms, current)
            if rate is not None:
                return rate
            self._counts[key] = current + 1
            record_id = self._next_id()
            outcome = access.outcome
            self._streams[access.partner_id].append(
                StreamEntry(
                    id=record_id,
                    stream_id=record_id,
                    partner_id=access.partner_id,
                    kind=EntryKind.ACCESS,
                    month=access.month,
                    key_id=access.key_id,
                    table=access.table,
                    release=access.release,
                    member_id=access.member_id,
                    at_ms=at_ms,
                    status=None if outcome is None else outcome.status,
                    bytes=None if outcome is None else outcome.bytes,
                    latency_ms=None if outcome is None else outcome.latency_ms,
                )
            )
        metrics.ACCESSES.inc()
        return Grant(allowed=True, count=current + 1, cap=access.cap, record_id=record_id)

    async def throttle(self, access: Access) -> Grant:
        at_ms = int(time.time() * 1000)
        with self._lock:
            current = self._counts.get((access.partner_id, access.month), 0)
            refused = self._take_rate(access, at_ms, current)
        return refused or Grant(allowed=True, count=current, cap=access.cap)

    def _take_rate(self, access: Access, at_ms: int, current: int) -> Grant | None:
        """Under the lock: the refusal if a window of the key is full, else take one from each."""
        sec = (access.partner_id, access.key_id, "s", at_ms // 1000)
        minute = (access.partner_id, access.key_id, "m", at_ms // 60_000)
        rate = None
        if access.rate_per_second is not None and self._windows[sec] >= access.rate_per_second:
            rate = Grant(
                allowed=False,
                count=current,
                cap=access.cap,
                refusal=Refusal.RATE,
                retry_after=1,
                limit=access.rate_per_second,
                window=1,
            )
        elif access.rate_per_minute is not None and self._windows[minute] >= access.rate_per_minute:
            rate = Grant(
                allowed=False,
                count=current,
                cap=access.cap,
                refusal=Refusal.RATE,
                retry_after=max(1, 60 - (at_ms // 1000) % 60),
                limit=access.rate_per_minute,
                window=60,
            )
        if rate is not None:
            metrics.REFUSALS.labels(Refusal.RATE.value).inc()
            return rate
        self._forget_old_windows(at_ms)
        self._windows[sec] += 1
        self._windows[minute] += 1
        return None

    def _forget_old_windows(self, at_ms: int) -> None:
        if len(self._windows) < 4096:
            return
        now_s, now_m = at_ms // 1000, at_ms // 60_000
        for k in [k for k in self._windows if k[3] < (now_s if k[2] == "s" else now_m)]:
            del self._windows[k]

    def seed(self, month: str, counts: dict[int, int]) -> None:
        """Resume from settled counts (never lowering what this process already counted)."""
        with self._lock:
            for partner_id, n in counts.items():
                key = (partner_id, month)
                self._counts[key] = max(self._counts[key], n)

    async def release(self, access: Access) -> None:
        if not access.record_id:
            return
        key = (access.partner_id, access.month)
        with self._lock:
            if (access.partner_id, access.record_id) in self._released or self._counts[key] <= 0:
                return
            self._released.add((access.partner_id, access.record_id))
            self._counts[key] -= 1
            entry_id = self._next_id()
            self._streams[access.partner_id].append(
                StreamEntry(
                    id=entry_id,
                    stream_id=entry_id,
                    partner_id=access.partner_id,
                    kind=EntryKind.RELEASE,
                    month=access.month,
                    ref=access.record_id,
                    status=500,
                    at_ms=int(time.time() * 1000),
                )
            )
        metrics.RELEASES.inc()

    def complete(self, access: Access, *, status: int, nbytes: int, latency_ms: float) -> None:
        if not access.record_id:
            return
        with self._lock:
            entry_id = self._next_id()
            self._streams[access.partner_id].append(
                StreamEntry(
                    id=entry_id,
                    stream_id=entry_id,
                    partner_id=access.partner_id,
                    kind=EntryKind.COMPLETE,
                    ref=access.record_id,
                    status=status,
                    bytes=nbytes,
                    latency_ms=round(latency_ms, 3),
                    at_ms=int(time.time() * 1000),
                )
            )

    async def count(self, partner_id: int, month: str) -> int:
        with self._lock:
            return self._counts.get((partner_id, month), 0)

    async def counts(self, month: str) -> dict[int, int]:
        with self._lock:
            return {p: n for (p, m), n in self._counts.items() if m == month and n}

    async def partners(self) -> list[int]:
        with self._lock:
            return sorted(p for p, s in self._streams.items() if s)

    async def read(self, partner_id: int, after: str, limit: int) -> list[StreamEntry]:
        # Entries are appended in id order: find the start by bisection, not by a scan of every
        # unsettled entry on the event loop each settlement round.
        start = stream_order(after)
        with self._lock:
            stream = self._streams.get(partner_id, [])
            i = bisect_right(stream, start, key=_order)
            return stream[i : i + limit]

    async def trim(self, partner_id: int, through: str) -> None:
        cut = stream_order(through)
        with self._lock:
            stream = self._streams[partner_id]
            del stream[: bisect_right(stream, cut, key=_order)]

    async def lease(self, name: str, seconds: float) -> bool:
        return True  # one process: nobody to share with

    async def aclose(self) -> None:
        return None
