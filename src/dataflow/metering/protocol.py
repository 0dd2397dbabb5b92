"""The meter contract every backend honours (one test suite runs against all of them)."""

from __future__ import annotations

from typing import Protocol

from dataflow.metering.models import Access, Grant, StreamEntry

__all__ = ["Meter"]


class Meter(Protocol):
    async def acquire(self, access: Access) -> Grant:
        """Check caps, rate limits, window and status and count the access atomically,
        writing its access record, before anything is served.

        Raises ``MeterUnavailable`` when it cannot count in time: the caller must not serve.
        """
        ...

    async def throttle(self, access: Access) -> Grant:
        """Take one request from the key's rate windows (the ones ``acquire`` uses), counting
        nothing and writing no record: for unbilled routes that cost the server (a chart).

        Refused with ``Refusal.RATE`` when a window is full; raises ``MeterUnavailable`` like
        ``acquire``. Checks neither status nor window nor cap: those belong to data accesses.
        """
        ...

    async def release(self, access: Access) -> None:
        """Give back a count whose response then failed (5xx); the stream records why."""
        ...

    def complete(self, access: Access, *, status: int, nbytes: int, latency_ms: float) -> None:
        """Amend the access record with what was served (best effort, never awaited)."""
        ...

    async def count(self, partner_id: int, month: str) -> int:
        """Accesses counted for the partner in the month."""
        ...

    async def counts(self, month: str) -> dict[int, int]:
        """Every partner's count for the month."""
        ...

    async def partners(self) -> list[int]:
        """Partners that have an access stream (what the settler walks)."""
        ...

    async def read(self, partner_id: int, after: str, limit: int) -> list[StreamEntry]:
        """Stream entries of a partner strictly after ``after`` (``"0-0"``: from the start)."""
        ...

    async def trim(self, partner_id: int, through: str) -> None:
        """Drop stream entries up to and including ``through`` (settled: they live in SQL)."""
        ...

    async def lease(self, name: str, seconds: float) -> bool:
        """Take a named lease for ``seconds`` unless someone holds it (one settler at a time)."""
        ...

    async def aclose(self) -> None: ...
