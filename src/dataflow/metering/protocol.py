"""The meter contract every backend honours (one test suite runs against all of them)."""

from __future__ import annotations

from typing import Protocol

from dataflow.metering.models import Access, Grant

__all__ = ["Meter"]


class Meter(Protocol):
    async def acquire(self, access: Access) -> Grant:
        """Check the cap and count the access atomically, before anything is served."""
        ...

    async def release(self, access: Access) -> None:
        """Give back a count whose response then failed (5xx)."""
        ...

    async def count(self, partner_id: int, month: str) -> int:
        """Accesses counted for the partner in the month."""
        ...

    async def counts(self, month: str) -> dict[int, int]:
        """Every partner's count for the month (what settlement moves into the ledger)."""
        ...

    async def aclose(self) -> None: ...
