"""The meter's Prometheus metrics move with what it does."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from dataflow.metering.errors import MeterUnavailable
from dataflow.metering.models import Refusal
from dataflow.metering.redis_meter import RedisMeter
from tests.e2e.conftest import free_port
from tests.metering.conftest import make_access


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_accesses_refusals_latency_and_batch_sizes(redis_url: str, redis_prefix: str) -> None:
    before = {
        "granted": _value("dataflow_meter_accesses_total"),
        "cap": _value("dataflow_meter_refusals_total", reason=Refusal.CAP.value),
        "latency": _value("dataflow_meter_latency_seconds_count"),
        "batches": _value("dataflow_meter_batch_size_count"),
        "batched": _value("dataflow_meter_batch_size_sum"),
    }
    meter = RedisMeter.from_url(redis_url, prefix=redis_prefix)
    grants = await asyncio.gather(*(meter.acquire(make_access(cap=30)) for _ in range(40)))
    await meter.aclose()
    assert sum(g.allowed for g in grants) == 30
    assert _value("dataflow_meter_accesses_total") - before["granted"] == 30
    assert _value("dataflow_meter_refusals_total", reason="monthly_cap") - before["cap"] == 10
    batches = _value("dataflow_meter_batch_size_count") - before["batches"]
    # Latency is observed once per round trip (its oldest request's wait), not per request.
    assert _value("dataflow_meter_latency_seconds_count") - before["latency"] == batches
    assert _value("dataflow_meter_batch_size_sum") - before["batched"] == 40
    assert 1 <= batches < 40  # concurrent requests were coalesced into fewer round trips


async def test_unreachable_meter_counts_unavailability() -> None:
    before = _value("dataflow_meter_unavailable_total")
    meter = RedisMeter.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=0.3)
    results = await asyncio.gather(
        *(meter.acquire(make_access()) for _ in range(5)), return_exceptions=True
    )
    await meter.aclose()
    assert all(isinstance(r, MeterUnavailable) for r in results)
    assert _value("dataflow_meter_unavailable_total") > before
