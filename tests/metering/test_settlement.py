"""Settlement: streams into the SQL ledger, idempotently, with a watermark (SQLite + PostgreSQL)."""

from __future__ import annotations

import asyncio

import msgspec
import sqlalchemy as sa

from dataflow.contracts.models import Plan
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.metering.models import Outcome
from dataflow.metering.protocol import Meter
from dataflow.metering.repository import SettlementRepository
from dataflow.metering.settlement import reconcile_month, settle, settle_month
from dataflow.metering.tables import access_records, settlement_watermarks
from tests.metering.conftest import make_access

MONTH = "2026-11"


def _partners(contracts: ContractsService, n: int) -> list[int]:
    return [contracts.create_partner(f"P{i}", Plan.CONTINUOUS).id for i in range(n)]


async def _traffic(
    meter: Meter, partners: list[int], per_partner: int, *, one_by_one: bool = False
) -> None:
    accesses = [make_access(partner=p) for p in partners for _ in range(per_partner)]
    if one_by_one:  # one stream entry each, even on a batching meter
        grants = [await meter.acquire(a) for a in accesses]
    else:
        grants = await asyncio.gather(*(meter.acquire(a) for a in accesses))
    assert all(g.allowed for g in grants)


async def test_settle_moves_counts_records_releases_and_completions(
    meter: Meter, database_url: str
) -> None:
    contracts = ContractsService(make_engine(database_url))
    p1, p2 = _partners(contracts, 2)
    await _traffic(meter, [p1, p2], 7)
    failed = await meter.acquire(make_access(partner=p1))
    await meter.release(
        msgspec.structs.replace(make_access(partner=p1), record_id=failed.record_id)
    )
    served = await meter.acquire(make_access(partner=p2, table="other"))
    counted = msgspec.structs.replace(make_access(partner=p2), record_id=served.record_id)
    meter.complete(counted, status=200, nbytes=99, latency_ms=1.25)
    flush = getattr(meter, "flush", None)
    if flush is not None:
        await flush()

    assert await settle_month(meter, contracts, MONTH) == {p1: 7, p2: 8}
    assert contracts.usage(p2, MONTH) == 8  # what billing reads
    with contracts.engine.connect() as conn:
        row = conn.execute(
            sa.select(access_records).where(
                access_records.c.partner_id == p2,
                access_records.c.record_id == served.record_id,
            )
        ).one()
        released = conn.execute(
            sa.select(access_records.c.released).where(
                access_records.c.partner_id == p1, access_records.c.record_id == failed.record_id
            )
        ).scalar_one()
    assert (row.table_id, row.status, row.bytes, row.latency_ms) == ("other", 200, 99, 1.25)
    assert released is True
    repo = SettlementRepository(contracts.engine)
    rows = await reconcile_month(meter, repo, MONTH)
    assert [(r.partner_id, r.counter, r.stream, r.records, r.ledger) for r in rows] == [
        (p1, 7, 7, 7, 7),
        (p2, 8, 8, 8, 8),
    ]
    assert all(r.agrees for r in rows)


async def test_an_access_counted_with_its_outcome_settles_complete(
    meter: Meter, database_url: str
) -> None:
    contracts = ContractsService(make_engine(database_url))
    (p,) = _partners(contracts, 1)
    grant = await meter.acquire(make_access(partner=p, outcome=Outcome(200, 512, 0.5)))
    assert await settle_month(meter, contracts, MONTH) == {p: 1}
    with contracts.engine.connect() as conn:
        row = conn.execute(
            sa.select(access_records).where(access_records.c.record_id == grant.record_id)
        ).one()
    assert (row.status, row.bytes, row.latency_ms, row.released) == (200, 512, 0.5, False)


async def test_settling_again_or_replaying_changes_nothing(meter: Meter, database_url: str) -> None:
    contracts = ContractsService(make_engine(database_url))
    (p,) = _partners(contracts, 1)
    await _traffic(meter, [p], 25, one_by_one=True)
    repo = SettlementRepository(contracts.engine)
    # A settler that stopped after its commits, before trimming: the stream is still whole.
    first = await settle(meter, repo, batch=10, trim=False)
    assert (first.entries, first.batches) == (25, 3)
    assert (await settle(meter, repo, trim=False)).entries == 0  # the watermark says all is done
    # At-least-once delivery: the whole stream delivered again (watermark lost).
    with contracts.engine.begin() as conn:
        conn.execute(sa.delete(settlement_watermarks))
    assert (await settle(meter, repo, batch=7, trim=False)).entries == 25
    assert repo.ledger(MONTH) == {p: 25}
    assert repo.records(MONTH) == {p: 25}


async def test_settlement_resumes_after_a_partial_run(meter: Meter, database_url: str) -> None:
    contracts = ContractsService(make_engine(database_url))
    p1, p2 = _partners(contracts, 2)
    await _traffic(meter, [p1, p2], 12, one_by_one=True)
    repo = SettlementRepository(contracts.engine)
    partial = await settle(meter, repo, batch=5, max_batches=2)
    assert partial.entries == 10
    assert sum(repo.ledger(MONTH).values()) == 10
    await _traffic(meter, [p1], 3)  # traffic goes on meanwhile
    await settle(meter, repo, batch=5)
    assert repo.ledger(MONTH) == {p1: 15, p2: 12}


async def test_reconcile_finds_a_counter_that_disagrees(meter: Meter, database_url: str) -> None:
    contracts = ContractsService(make_engine(database_url))
    (p,) = _partners(contracts, 1)
    await _traffic(meter, [p], 4)
    repo = SettlementRepository(contracts.engine)
    await settle(meter, repo)
    assert all(r.agrees for r in await reconcile_month(meter, repo, MONTH))
    with contracts.engine.begin() as conn:  # someone edits the ledger by hand
        conn.execute(sa.text("UPDATE usage_ledger SET accesses = accesses + 1"))
    (row,) = await reconcile_month(meter, repo, MONTH)
    assert (row.counter, row.stream, row.records, row.ledger) == (4, 4, 4, 5)
    assert not row.agrees


async def _stream_size(meter: Meter, partner: int) -> int:
    return len(await meter.read(partner, "0-0", 100_000))


async def test_settled_entries_are_trimmed_and_reconcile_still_proves_agreement(
    meter: Meter, database_url: str
) -> None:
    contracts = ContractsService(make_engine(database_url))
    p1, p2 = _partners(contracts, 2)
    await _traffic(meter, [p1, p2], 9, one_by_one=True)
    failed = await meter.acquire(make_access(partner=p1))
    await meter.release(
        msgspec.structs.replace(make_access(partner=p1), record_id=failed.record_id)
    )
    repo = SettlementRepository(contracts.engine)
    await settle(meter, repo, batch=4)
    assert await _stream_size(meter, p1) == await _stream_size(meter, p2) == 0
    await _traffic(meter, [p1], 3)  # unsettled: still in the stream, counted from there
    assert await _stream_size(meter, p1) > 0
    rows = await reconcile_month(meter, repo, MONTH)
    assert [(r.partner_id, r.counter, r.stream, r.records, r.ledger) for r in rows] == [
        (p1, 12, 12, 9, 9),
        (p2, 9, 9, 9, 9),
    ]
    await settle(meter, repo)
    rows = await reconcile_month(meter, repo, MONTH)
    assert [(r.partner_id, r.counter, r.stream, r.records, r.ledger) for r in rows] == [
        (p1, 12, 12, 12, 12),
        (p2, 9, 9, 9, 9),
    ]
    assert all(r.agrees for r in rows)
    # A release arriving after its access was settled and trimmed still gives the count back.
    late = await meter.acquire(make_access(partner=p2))
    await settle(meter, repo)
    await meter.release(msgspec.structs.replace(make_access(partner=p2), record_id=late.record_id))
    await settle(meter, repo)
    assert repo.ledger(MONTH) == {p1: 12, p2: 9}
    assert all(r.agrees for r in await reconcile_month(meter, repo, MONTH))


async def test_crash_between_commit_and_trim_trims_next_round_without_doubling(
    meter: Meter, database_url: str
) -> None:
    contracts = ContractsService(make_engine(database_url))
    (p,) = _partners(contracts, 1)
    await _traffic(meter, [p], 6, one_by_one=True)
    repo = SettlementRepository(contracts.engine)
    await settle(meter, repo, batch=4, trim=False)  # committed, killed before the trim
    assert await _stream_size(meter, p) == 6
    assert (await settle(meter, repo)).entries == 0
    assert await _stream_size(meter, p) == 0
    assert repo.ledger(MONTH) == {p: 6}
    (row,) = await reconcile_month(meter, repo, MONTH)
    assert (row.counter, row.stream, row.records, row.ledger) == (6, 6, 6, 6)


async def test_concurrent_settlers_apply_each_entry_once(meter: Meter, database_url: str) -> None:
    contracts = ContractsService(make_engine(database_url))
    (p,) = _partners(contracts, 1)
    await _traffic(meter, [p], 40, one_by_one=True)
    repo = SettlementRepository(contracts.engine)
    entries = await meter.read(p, "0-0", 1000)
    # Two settlers read the same range; the second applies after the first committed.
    repo.apply(p, entries[:30])
    repo.apply(p, entries)
    assert repo.ledger(MONTH) == {p: 40}
    assert repo.records(MONTH) == {p: 40}
    (row,) = await reconcile_month(meter, repo, MONTH)
    assert row.agrees and row.stream == 40
