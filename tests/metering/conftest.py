"""Meter fixtures: one contract, every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest

from dataflow.metering.embedded import EmbeddedMeter
from dataflow.metering.models import Access
from dataflow.metering.protocol import Meter
from dataflow.metering.redis_meter import RedisMeter


@pytest.fixture(params=["embedded", "redis", "redis-unbatched"])
async def meter(request: pytest.FixtureRequest) -> AsyncIterator[Meter]:
    if request.param == "embedded":
        m: Meter = EmbeddedMeter()
    else:
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")
        # Generous timeouts: these tests check the contract, not latency, and a shared loaded
        # machine stalled the default one-second connects and two-second round trips (flaky).
        m = RedisMeter.from_url(
            url,
            prefix=prefix,
            timeout=10,
            connect_timeout=10,
            batching=request.param == "redis",
        )
    yield m
    await m.aclose()


def make_access(
    *, partner: int = 1, cap: int | None = None, month: str = "2026-11", **kw: Any
) -> Access:
    fields: dict[str, Any] = {
        "key_id": "k1",
        "day": date(2026, 11, 23),
        "table": "t",
        "release": "r1",
        **kw,
    }
    return Access(partner_id=partner, month=month, cap=cap, **fields)
