"""Prometheus metrics of the meter.

Multi-process safe: with ``PROMETHEUS_MULTIPROC_DIR`` set before start-up, prometheus-client
writes each worker's values to that directory and the API's ``/metrics`` aggregates them
(``MultiProcessCollector``). The objects are module attributes because the client registers a
metric once per process; they hold no configuration, and are made on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "ACCESSES",
    "BATCH_SIZE",
    "METER_LATENCY",
    "METER_UNAVAILABLE",
    "REFUSALS",
    "RELEASES",
    "SETTLED",
    "SETTLEMENT_LAG",
]


def _create() -> dict[str, Any]:
    # Made on first use, not at import: prometheus-client picks a metric's value class (in
    # memory, or memory-mapped files in multiprocess mode) when the metric is made, and this
    # module is imported by the CLI before `serve` turns multiprocess mode on.
    return {
        "ACCESSES": Counter(
            "dataflow_meter_accesses", "Data accesses counted (granted) by the meter"
        ),
        "REFUSALS": Counter(
            "dataflow_meter_refusals", "Accesses refused by the meter, by reason", ["reason"]
        ),
        "RELEASES": Counter(
            "dataflow_meter_releases", "Counts given back because the response failed"
        ),
        "METER_UNAVAILABLE": Counter(
            "dataflow_meter_unavailable",
            "Requests refused with 503 because the meter could not count",
        ),
        "METER_LATENCY": Histogram(
            "dataflow_meter_latency_seconds",
            "Per round trip: how long its oldest request waited for the answer "
            "(queueing + round trip)",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        ),
        "BATCH_SIZE": Histogram(
            "dataflow_meter_batch_size",
            "Accesses checked per pipelined round trip",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        ),
        "SETTLED": Counter("dataflow_settlement_entries", "Stream entries applied to the ledger"),
        "SETTLEMENT_LAG": Gauge(
            "dataflow_settlement_lag_seconds",
            "Age of the newest stream entry the last settlement applied "
            "(how far the ledger trails)",
            multiprocess_mode="max",
        ),
    }


if TYPE_CHECKING:
    ACCESSES: Counter
    REFUSALS: Counter
    RELEASES: Counter
    METER_UNAVAILABLE: Counter
    METER_LATENCY: Histogram
    BATCH_SIZE: Histogram
    SETTLED: Counter
    SETTLEMENT_LAG: Gauge
else:

    def __getattr__(name: str) -> Any:  # PEP 562: the first use of any metric makes them all
        if name not in __all__:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        made = _create()
        globals().update(made)  # from now on plain module attributes: no further calls here
        return made[name]
