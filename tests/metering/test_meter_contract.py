"""One contract, every backend: the embedded meter and Redis behave the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest

from dataflow.contracts.models import PartnerStatus
from dataflow.metering.embedded import EmbeddedMeter
from dataflow.metering.models import Access, Refusal
from dataflow.metering.protocol import Meter
from dataflow.metering.redis_meter import RedisMeter


@pytest.fixture(params=["embedded", "redis"])
async def meter(request: pytest.FixtureRequest) -> AsyncIterator[Meter]:
    if request.param == "embedded":
        m: Meter = EmbeddedMeter()
    else:
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")
        m = RedisMeter.from_url(url, prefix=prefix)
    yield m
    await m.aclose()


def _access(partner: int = 1, cap: int | None = None, month: str = "2026-11", **kw: Any) -> Access:
    return Access(
        partner_id=partner,
        key_id="k1",
        month=month,
        day=date(2026, 11, 23),
        table="t",
        cap=cap,
        **kw,
    )


async def test_counts_each_access(meter: Meter) -> None:
    for i in range(1, 6):
        grant = await meter.acquire(_access())
        assert grant.allowed and grant.count == i
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


async def test_release_gives_back_a_count(meter: Meter) -> None:
    await meter.acquire(_access(cap=1))
    await meter.release(_access(cap=1))
    assert await meter.count(1, "2026-11") == 0
    assert (await meter.acquire(_access(cap=1))).allowed
    await meter.release(_access())
    await meter.release(_access())  # never below zero
    assert await meter.count(1, "2026-11") == 0


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
    inside = await meter.acquire(
        _access(window_start=date(2026, 11, 23), window_end=date(2026, 11, 23))
    )
    assert inside.allowed
