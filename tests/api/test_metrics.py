"""The request metrics are tallied and written later: what they show must be what writing every
request at once would have shown, and it must show up within FLUSH_SECONDS."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from dataflow.api.metrics import _BUCKETS, FLUSH_SECONDS, Metrics

ROUTE = "/v1/tables/{table_id}/rows"
_latencies = st.lists(
    st.one_of(
        st.sampled_from(_BUCKETS),  # exactly on a bound: the bucket of that bound
        st.floats(min_value=0.0, max_value=20.0, allow_nan=False),
    ),
    max_size=60,
)


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


@settings(max_examples=60, deadline=None)
@given(latencies=_latencies, statuses=st.lists(st.sampled_from([200, 304, 400, 429]), max_size=60))
def test_tallied_histogram_and_counters_equal_writing_each_request(
    latencies: list[float], statuses: list[int]
) -> None:
    metrics = Metrics()
    reference = Histogram(
        "reference_seconds", "", ["route"], buckets=_BUCKETS, registry=CollectorRegistry()
    )
    for i, seconds in enumerate(latencies):
        metrics.request_done(
            ROUTE, "GET", statuses[i % len(statuses)] if statuses else 200, seconds
        )
        reference.labels(ROUTE).observe(seconds)
    metrics.access_served("t", "json", 7)
    metrics.cache_lookup(hit=False)
    metrics.flush()  # no event loop here: _count wrote at once, the histogram waits for flush

    name = "dataflow_http_request_duration_seconds"
    ref = reference.labels(ROUTE)
    for bound in [*_BUCKETS, float("inf")]:
        le = "+Inf" if bound == float("inf") else str(bound)
        expected = sum(1 for s in latencies if s <= bound)
        assert _sample(metrics, f"{name}_bucket", route=ROUTE, le=le) == expected
    assert _sample(metrics, f"{name}_count", route=ROUTE) == len(latencies)
    assert abs(_sample(metrics, f"{name}_sum", route=ROUTE) - ref._sum.get()) < 1e-9
    total = sum(
        _sample(metrics, "dataflow_http_requests_total", route=ROUTE, method="GET", status=str(s))
        for s in (200, 304, 400, 429)
    )
    assert total == len(latencies)
    assert _sample(metrics, "dataflow_rows_served_total") == 7
    assert _sample(metrics, "dataflow_data_accesses_total", table="t", format="json") == 1


async def test_tallies_reach_the_metrics_within_flush_seconds() -> None:
    metrics = Metrics()
    metrics.request_done(ROUTE, "GET", 200, 0.003)
    metrics.access_served("t", "csv", 5)
    labels = {"route": ROUTE, "method": "GET", "status": "200"}
    assert _sample(metrics, "dataflow_http_requests_total", **labels) == 0  # tallied only
    await asyncio.sleep(FLUSH_SECONDS + 0.2)
    assert _sample(metrics, "dataflow_http_requests_total", **labels) == 1
    assert _sample(metrics, "dataflow_rows_served_total") == 5
    assert _sample(metrics, "dataflow_http_request_duration_seconds_count", route=ROUTE) == 1
    metrics.request_done(ROUTE, "GET", 200, 0.003)
    metrics.flush()  # what /metrics and shutdown do: at once, and the timer is cancelled
    assert _sample(metrics, "dataflow_http_requests_total", **labels) == 2
    assert metrics._flush_timer is None
