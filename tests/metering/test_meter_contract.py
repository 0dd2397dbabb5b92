"""One contract, every backend: the embedded meter and Redis (batched and not) behave the same."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import msgspec
import pytest

from dataflow.contracts.models import PartnerStatus
from dataflow.metering import redis_meter
from dataflow.metering.models import EntryKind, Outcome, Refusal
from dataflow.metering.protocol import Meter
from dataflow.metering.redis_meter import RedisMeter
from tests.metering.conftest import make_access as _access


async def _flush(meter: Meter) -> None:
    flush = getattr(meter, "flush", None)
    if flush is not None:
        await flush()


async def test_counts_each_access(meter: Meter) -> None:
    for i in range(1, 6):
        grant = await meter.acquire(_access())
        assert grant.allowed and grant.count == i and grant.record_id
    assert await meter.count(1, "2026-11") == 5
    assert await meter.count(2, "2026-11") == 0
    assert await meter.count(1, "2026-10") == 0


async def test_cap_is_never_exceeded(meter: Meter) -> None:
    grants = [await meter.acquire(_access(cap=3)) for _ in range(5)]
    assert [g.allowed for g in grants] == [True, True, True, False, False]
    assert grants[-1].refusal is Refusal.CAP
    assert grants[-1].remaining == 0
    assert await meter.count(1, "2026-11") == 3


async def test_concurrent_acquires_respect_cap(meter: Meter) -> None:
    grants = await asyncio.gather(*(meter.acquire(_access(cap=50)) for _ in range(200)))
    assert sum(g.allowed for g in grants) == 50
    assert await meter.count(1, "2026-11") == 50
    counts = sorted(g.count for g in grants if g.allowed)
    assert counts == list(range(1, 51))  # every grant saw its own place in the month


async def test_concurrent_partners_are_counted_apart(meter: Meter) -> None:
    accesses = [_access(partner=p, cap=30) for p in (1, 2, 3) for _ in range(40)]
    grants = await asyncio.gather(*(meter.acquire(a) for a in accesses))
    assert sum(g.allowed for g in grants) == 90
    assert await meter.counts("2026-11") == {1: 30, 2: 30, 3: 30}


async def test_release_gives_back_a_count_once(meter: Meter) -> None:
    grant = await meter.acquire(_access(cap=1))
    counted = msgspec.structs.replace(_access(cap=1), record_id=grant.record_id)
    await meter.release(counted)
    assert await meter.count(1, "2026-11") == 0
    assert (await meter.acquire(_access(cap=1))).allowed
    await meter.release(counted)  # the same record is never released twice
    await meter.release(_access())  # nothing counted, nothing to give back
    assert await meter.count(1, "2026-11") == 1


async def test_counts_by_month(meter: Meter) -> None:
    for partner, n in ((1, 3), (2, 2)):
        for _ in range(n):
            await meter.acquire(_access(partner=partner))
    await meter.acquire(_access(partner=3, month="2026-10"))
    assert await meter.counts("2026-11") == {1: 3, 2: 2}


@pytest.mark.parametrize(
    ("kw", "refusal"),
    [
        ({"status": PartnerStatus.SUSPENDED}, Refusal.SUSPENDED),
        ({"status": PartnerStatus.ENDED}, Refusal.INACTIVE),
        ({"status": PartnerStatus.CANCELLED}, Refusal.INACTIVE),
        ({"window_start": date(2026, 11, 24)}, Refusal.BEFORE_WINDOW),
        ({"window_end": date(2026, 11, 22)}, Refusal.AFTER_WINDOW),
    ],
)
async def test_entitlement_refusals_count_nothing(
    meter: Meter, kw: dict[str, Any], refusal: Refusal
) -> None:
    grant = await meter.acquire(_access(**kw))
    assert not grant.allowed and grant.refusal is refusal
    assert await meter.count(1, "2026-11") == 0
    assert await meter.read(1, "0-0", 10) == []  # no record either
    inside = await meter.acquire(
        _access(window_start=date(2026, 11, 23), window_end=date(2026, 11, 23))
    )
    assert inside.allowed


async def test_rate_limit_per_second_is_per_key(meter: Meter) -> None:
    grants = await asyncio.gather(*(meter.acquire(_access(rate_per_second=5)) for _ in range(8)))
    allowed = sum(g.allowed for g in grants)
    # A second boundary may fall inside the burst: then two windows each allow 5.
    assert 5 <= allowed <= 8
    refused = [g for g in grants if not g.allowed]
    assert all(g.refusal is Refusal.RATE and g.retry_after == 1 for g in refused)
    assert all(g.limit == 5 and g.window == 1 for g in refused)
    other_key = await meter.acquire(_access(key_id="k2", rate_per_second=5))
    assert other_key.allowed
    assert await meter.count(1, "2026-11") == allowed + 1  # refusals are not counted


async def test_rate_limit_per_minute(meter: Meter) -> None:
    grants = [await meter.acquire(_access(rate_per_minute=3)) for _ in range(5)]
    refused = [g for g in grants if not g.allowed]
    assert len(refused) >= 1  # a minute boundary may split the burst, at most once
    assert all(g.refusal is Refusal.RATE and g.window == 60 for g in refused)
    assert all(g.retry_after is not None and 1 <= g.retry_after <= 60 for g in refused)


async def test_throttle_takes_from_the_keys_rate_window_and_counts_nothing(meter: Meter) -> None:
    limited = _access(rate_per_minute=3)
    grants = [await meter.throttle(limited) for _ in range(5)]
    refused = [g for g in grants if not g.allowed]
    assert len(refused) >= 1  # a minute boundary may split the burst, at most once
    assert all(g.refusal is Refusal.RATE and g.window == 60 and g.limit == 3 for g in refused)
    assert all(g.retry_after is not None and 1 <= g.retry_after <= 60 for g in refused)
    # the same window as data accesses: an access right after is refused too (same minute)
    if grants[-1].allowed is False:
        after = await meter.acquire(limited)
        assert not after.allowed and after.refusal is Refusal.RATE
    # nothing is counted or recorded, and another key or no limit is not throttled
    assert await meter.count(1, "2026-11") == 0
    assert await meter.read(1, "0-0", 100) == []
    assert (await meter.throttle(_access(key_id="k2", rate_per_minute=3))).allowed
    assert all([(await meter.throttle(_access(key_id="k3"))).allowed for _ in range(20)])


async def test_throttle_checks_neither_status_nor_cap(meter: Meter) -> None:
    """Unbilled routes stay open to a suspended or capped partner (its account is how it
    learns why); only the rate windows apply."""
    suspended = _access(status=PartnerStatus.SUSPENDED, cap=0, rate_per_second=100)
    assert (await meter.throttle(suspended)).allowed


async def test_every_access_has_a_record_in_the_stream(meter: Meter) -> None:
    grants = await asyncio.gather(
        *(meter.acquire(_access(member_id=7, table=f"t{i % 2}")) for i in range(6))
    )
    first = msgspec.structs.replace(_access(), record_id=grants[0].record_id)
    second = msgspec.structs.replace(_access(), record_id=grants[1].record_id)
    await meter.release(first)
    meter.complete(second, status=200, nbytes=1234, latency_ms=3.5)
    await _flush(meter)
    entries = await meter.read(1, "0-0", 100)
    accesses = [e for e in entries if e.kind is EntryKind.ACCESS]
    assert sorted(e.id for e in accesses) == sorted(g.record_id for g in grants)
    assert {e.table for e in accesses} == {"t0", "t1"}
    assert all(e.member_id == 7 and e.release == "r1" and e.at_ms > 0 for e in accesses)
    (released,) = [e for e in entries if e.kind is EntryKind.RELEASE]
    assert released.ref == first.record_id and released.month == "2026-11"
    (done,) = [e for e in entries if e.kind is EntryKind.COMPLETE]
    assert (done.ref, done.status, done.bytes, done.latency_ms) == (
        second.record_id,
        200,
        1234,
        3.5,
    )
    assert [e.order for e in entries] == sorted(e.order for e in entries)
    first_entry = entries[0].stream_id
    later = await meter.read(1, first_entry, 100)
    assert later == [e for e in entries if e.stream_id != first_entry]
    assert await meter.read(1, entries[-1].stream_id, 100) == []
    assert await meter.partners() == [1]


async def test_an_outcome_known_at_count_time_is_in_the_access_record(meter: Meter) -> None:
    plain, served = await asyncio.gather(
        meter.acquire(_access()), meter.acquire(_access(outcome=Outcome(200, 4321, 0.75)))
    )
    await _flush(meter)
    entries = await meter.read(1, "0-0", 100)
    assert [e.kind for e in entries] == [EntryKind.ACCESS, EntryKind.ACCESS]  # no completion
    by_id = {e.id: e for e in entries}
    assert (by_id[served.record_id].status, by_id[served.record_id].bytes) == (200, 4321)
    assert by_id[served.record_id].latency_ms == 0.75
    assert by_id[plain.record_id].status is None and by_id[plain.record_id].bytes is None


async def test_completion_reaches_the_stream_without_a_flush(meter: Meter) -> None:
    # Completions ride along with the next acquisitions' round trip; with none coming they are
    # sent by themselves shortly after.
    grant = await meter.acquire(_access())
    meter.complete(
        msgspec.structs.replace(_access(), record_id=grant.record_id),
        status=200,
        nbytes=10,
        latency_ms=1.0,
    )
    for _ in range(100):
        entries = await meter.read(1, "0-0", 100)
        if any(e.kind is EntryKind.COMPLETE for e in entries):
            break
        await asyncio.sleep(0.02)
    (done,) = [e for e in entries if e.kind is EntryKind.COMPLETE]
    assert done.ref == grant.record_id


async def test_completions_ride_with_the_next_acquisitions(
    redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_meter, "_COMPLETION_DELAY", 60.0)  # only a ride can carry it
    meter = RedisMeter.from_url(redis_url, prefix=redis_prefix)  # batching: what rides along
    first = await meter.acquire(_access())
    meter.complete(
        msgspec.structs.replace(_access(), record_id=first.record_id),
        status=200,
        nbytes=10,
        latency_ms=1.0,
    )
    second = await meter.acquire(_access())  # its round trip carries the completion
    entries = await meter.read(1, "0-0", 100)
    await meter.aclose()
    kinds = [e.kind for e in entries]
    assert kinds == [EntryKind.ACCESS, EntryKind.ACCESS, EntryKind.COMPLETE] and second.allowed
