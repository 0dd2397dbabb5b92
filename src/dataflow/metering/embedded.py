"""In-process meter: one process, no server (demo, laptop). Same contract as Redis."""

from __future__ import annotations

import threading
from collections import defaultdict

from dataflow.metering.models import Access, Grant, Refusal, entitlement_refusal

__all__ = ["EmbeddedMeter"]


class EmbeddedMeter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[int, str], int] = defaultdict(int)
        self.records: list[Access] = []

    async def acquire(self, access: Access) -> Grant:
        key = (access.partner_id, access.month)
        refusal = entitlement_refusal(access)
        with self._lock:
            current = self._counts[key]
            if refusal is not None:
                return Grant(allowed=False, count=current, cap=access.cap, refusal=refusal)
            if access.cap is not None and current >= access.cap:
                return Grant(allowed=False, count=current, cap=access.cap, refusal=Refusal.CAP)
            self._counts[key] = current + 1
            self.records.append(access)
            return Grant(allowed=True, count=current + 1, cap=access.cap)

    def seed(self, month: str, counts: dict[int, int]) -> None:
        """Resume from settled counts (never lowering what this process already counted)."""
        with self._lock:
            for partner_id, n in counts.items():
                key = (partner_id, month)
                self._counts[key] = max(self._counts[key], n)

    async def release(self, access: Access) -> None:
        key = (access.partner_id, access.month)
        with self._lock:
            if self._counts[key] > 0:
                self._counts[key] -= 1

    async def count(self, partner_id: int, month: str) -> int:
        with self._lock:
            return self._counts.get((partner_id, month), 0)

    async def counts(self, month: str) -> dict[int, int]:
        with self._lock:
            return {p: n for (p, m), n in self._counts.items() if m == month and n}

    async def aclose(self) -> None:
        return None
