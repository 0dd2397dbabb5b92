"""Move the meter's monthly counts into the durable usage ledger (idempotent: set, not add)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from dataflow.contracts.service import ContractsService
from dataflow.metering.embedded import EmbeddedMeter
from dataflow.metering.models import billing_month
from dataflow.metering.protocol import Meter

__all__ = ["PeriodicSettler", "settle_month"]


async def settle_month(meter: Meter, contracts: ContractsService, month: str) -> dict[int, int]:
    counts = await meter.counts(month)
    for partner_id, n in sorted(counts.items()):
        await asyncio.to_thread(contracts.record_usage, partner_id, month, n)
    return counts


class PeriodicSettler:
    """Settle the current month every ``interval`` seconds and once more on stop.

    An embedded meter lives in one process; it resumes from the ledger so a restart never
    lowers a settled count.
    """

    def __init__(self, meter: Meter, contracts: ContractsService, *, interval: float = 5.0) -> None:
        self._meter = meter
        self._contracts = contracts
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if isinstance(self._meter, EmbeddedMeter):
            month = billing_month(datetime.now(UTC))
            settled = await asyncio.to_thread(self._contracts.usage_for_month, month)
            self._meter.seed(month, settled)
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await settle_month(self._meter, self._contracts, billing_month(datetime.now(UTC)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await settle_month(self._meter, self._contracts, billing_month(datetime.now(UTC)))
