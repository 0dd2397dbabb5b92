"""Redis meter specifics beyond the shared contract: the linger window of a busy meter."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY

from dataflow.metering.models import Grant
from dataflow.metering.redis_meter import RedisMeter
from tests.metering.conftest import make_access


def _round_trips() -> float:
    return REGISTRY.get_sample_value("dataflow_meter_batch_size_count") or 0.0


async def test_an_idle_meter_sends_at_once(redis_url: str, redis_prefix: str) -> None:
    meter = RedisMeter.from_url(redis_url, prefix=redis_prefix, linger=2.0)
    try:
        await meter.acquire(make_access())  # connects and loads the script
        await asyncio.sleep(2.1)  # the window of that round trip is over: idle again
        started = time.perf_counter()
        assert (await meter.acquire(make_access())).allowed
        assert time.perf_counter() - started < 1.0  # no linger for a lone request
    finally:
        await meter.aclose()


async def test_a_busy_meter_lets_the_window_fill(redis_url: str, redis_prefix: str) -> None:
    meter = RedisMeter.from_url(redis_url, prefix=redis_prefix, linger=0.3)
    try:
        await meter.acquire(make_access())  # opens a window
        before = _round_trips()

        async def later(i: int) -> Grant:
            await asyncio.sleep(0.01 * i)
            return await meter.acquire(make_access())

        grants = await asyncio.gather(*(later(i) for i in range(10)))
        assert all(g.allowed for g in grants)
        # Ten requests spread over 90 ms, inside the window: one round trip for all of them.
        assert _round_trips() - before == 1
        assert await meter.count(1, "2026-11") == 11
    finally:
        await meter.aclose()


async def test_without_linger_each_spread_request_goes_alone(
    redis_url: str, redis_prefix: str
) -> None:
    meter = RedisMeter.from_url(redis_url, prefix=redis_prefix, linger=0.0)
    try:
        await meter.acquire(make_access())
        before = _round_trips()
        for _ in range(3):
            await asyncio.sleep(0.05)
            assert (await meter.acquire(make_access())).allowed
        assert _round_trips() - before == 3
    finally:
        await meter.aclose()
