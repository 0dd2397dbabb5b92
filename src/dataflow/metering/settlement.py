"""Move access records from the meter's streams into the durable usage ledger.

At-least-once delivery + idempotent apply = exactly-once effect: the settler reads each
partner's stream after its watermark, applies the entries and advances the watermark in one SQL
transaction. A settler killed mid-batch rolls back; the rerun reads the same entries again and
applying them twice changes nothing (records are keyed by stream id; the ledger is recomputed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from dataflow.contracts.service import ContractsService
from dataflow.metering import metrics
from dataflow.metering.embedded import EmbeddedMeter
from dataflow.metering.models import EntryKind, billing_month
from dataflow.metering.protocol import Meter
from dataflow.metering.repository import SettlementRepository

__all__ = [
    "PeriodicSettler",
    "ReconcileRow",
    "SettleSummary",
    "reconcile_month",
    "settle",
    "settle_month",
]

log = logging.getLogger(__name__)


class SettleSummary(msgspec.Struct, kw_only=True):
    partners: int = 0
    entries: int = 0
    batches: int = 0
    months: list[str] = msgspec.field(default_factory=list)


async def settle(
    meter: Meter,
    repo: SettlementRepository,
    *,
    batch: int = 5000,
    max_batches: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    trim: bool = True,
) -> SettleSummary:
    """Apply every partner's stream entries after its watermark, batch by batch.

    ``batch`` counts stream entries (one entry carries every access of a coalesced round trip).
    After each committed batch the stream is trimmed through the new watermark (``trim``): what
    is settled lives in SQL, and the stream stays as long as the settler lags. A crash between
    the commit and the trim leaves settled entries behind; the next round skips and trims them.
    ``on_batch(partner_id, entries)`` is called after each committed batch (progress).
    """
    summary = SettleSummary()
    months: set[str] = set()
    newest_ms = 0
    for partner_id in await meter.partners():
        summary.partners += 1
        after = await asyncio.to_thread(repo.watermark, partner_id)
        if trim:  # settled before, by a round that stopped before it trimmed
            await _trim(meter, partner_id, after)
        while max_batches is None or summary.batches < max_batches:
            entries = await meter.read(partner_id, after, batch)
            if not entries:
                break
            months |= await asyncio.to_thread(repo.apply, partner_id, entries)
            summary.entries += len(entries)
            summary.batches += 1
            metrics.SETTLED.inc(len(entries))
            newest_ms = max(newest_ms, entries[-1].at_ms)
            after = entries[-1].stream_id or entries[-1].id
            if trim:
                await _trim(meter, partner_id, after)
            if on_batch is not None:
                on_batch(partner_id, len(entries))
    if newest_ms:
        metrics.SETTLEMENT_LAG.set(max(0.0, time.time() - newest_ms / 1000))
    summary.months = sorted(months)
    return summary


async def _trim(meter: Meter, partner_id: int, through: str) -> None:
    if through == "0-0":
        return
    try:
        await meter.trim(partner_id, through)
    except Exception:  # settled entries left in the stream cost memory, not correctness
        log.warning("could not trim partner %s's stream; next round will", partner_id)


async def settle_month(meter: Meter, contracts: ContractsService, month: str) -> dict[int, int]:
    """Settle everything pending and return the ledger of ``month``."""
    repo = await asyncio.to_thread(SettlementRepository, contracts.engine)
    await settle(meter, repo)
    return await asyncio.to_thread(repo.ledger, month)


class ReconcileRow(msgspec.Struct, kw_only=True):
    partner_id: int
    counter: int  # the meter's monthly counter
    stream: int  # access entries of the month the stream carried, less releases (see below)
    records: int  # settled access records (not released) in SQL
    ledger: int  # usage_ledger.accesses

    @property
    def agrees(self) -> bool:
        return self.counter == self.stream == self.records == self.ledger


async def _stream_counts(meter: Meter, partner_id: int, month: str, after: str) -> int:
    n = 0
    while True:
        entries = await meter.read(partner_id, after, 10_000)
        if not entries:
            return n
        for e in entries:
            if e.month == month:
                n += 1 if e.kind is EntryKind.ACCESS else -1 if e.kind is EntryKind.RELEASE else 0
        after = entries[-1].stream_id or entries[-1].id


async def reconcile_month(
    meter: Meter, repo: SettlementRepository, month: str
) -> list[ReconcileRow]:
    """Counters, stream and ledger of every partner for the month, side by side.

    The stream is trimmed as it is settled, so its side is two parts that never overlap: what
    it carried up to the watermark (tallied entry by entry when settled, in the watermark's own
    transaction) and the entries still in Redis after the watermark. A settler committing while
    this reads makes it read again.
    """
    counters = await meter.counts(month)
    for _attempt in range(5):
        marks, tallies = await asyncio.to_thread(repo.settled_stream, month)
        ledger = await asyncio.to_thread(repo.ledger, month)
        records = await asyncio.to_thread(repo.records, month)
        partners = sorted(
            set(counters) | set(ledger) | set(records) | set(tallies) | set(await meter.partners())
        )
        streams = {
            p: tallies.get(p, 0) + await _stream_counts(meter, p, month, marks.get(p, "0-0"))
            for p in partners
        }
        if (await asyncio.to_thread(repo.settled_stream, month))[0] == marks:
            break
    rows = []
    for p in partners:
        row = ReconcileRow(
            partner_id=p,
            counter=counters.get(p, 0),
            stream=streams[p],
            records=records.get(p, 0),
            ledger=ledger.get(p, 0),
        )
        if row.counter or row.stream or row.records or row.ledger:
            rows.append(row)
    return rows


class PeriodicSettler:
    """Settle every ``interval`` seconds in the background and once more on stop.

    Several workers may each run one: applying is idempotent, so overlap costs work, not
    correctness. An embedded meter lives in one process; it resumes its counters from the
    ledger so a restart never lowers a settled count.
    """

    def __init__(self, meter: Meter, contracts: ContractsService, *, interval: float = 5.0) -> None:
        self._meter = meter
        self._engine = contracts.engine
        self._interval = interval
        self._repo: SettlementRepository | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._repo = await asyncio.to_thread(SettlementRepository, self._engine)
        if isinstance(self._meter, EmbeddedMeter):
            month = billing_month(datetime.now(UTC))
            self._meter.seed(month, await asyncio.to_thread(self._repo.ledger, month))
        if self._interval > 0:
            self._task = asyncio.create_task(self._loop())

    async def _once(self) -> None:
        assert self._repo is not None
        try:
            # Workers share the stream: one of them settles per interval, the others skip.
            if not await self._meter.lease("settle", max(self._interval * 0.8, 1.0)):
                return
            await settle(self._meter, self._repo)
        except Exception:  # a failed round is retried next interval; entries stay in the stream
            log.exception("settlement failed; will retry")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._once()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._repo is not None:
            await self._once()
