"""Prometheus metrics, correct across worker processes.

``dataflow serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers
start; each worker then writes its samples to memory-mapped files there and ``/metrics`` (served by
any worker) aggregates all of them. Without the variable (tests, the demo) the app keeps its own
in-process registry.

Requests are tallied in plain dictionaries and written to the metrics at most ``FLUSH_SECONDS``
later (and before this worker renders ``/metrics``). In multiprocess mode every ``inc`` or
``observe`` is a locked write to a memory-mapped file plus a ``getpid`` check: the five updates
of a data request cost ~18 µs of its ~350 µs; tallied, they cost ~2 µs. The price: another
worker's figures reach ``/metrics`` up to ``FLUSH_SECONDS`` late.
"""

from __future__ import annotations

import asyncio
import bisect
import os
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from dataflow.billing.lifecycle import SAO_PAULO
from dataflow.billing.repository import overdue_invoices

__all__ = [
    "CONTENT_TYPE",
    "FLUSH_SECONDS",
    "MULTIPROC_ENV",
    "Metrics",
    "OverdueCollector",
    "use_multiprocess_dir",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FLUSH_SECONDS = 1.0


def use_multiprocess_dir(path: Path) -> None:
    """Put this process and the workers it starts in multiprocess mode, writing to ``path``.

    Must run before the metrics are made: prometheus-client picks a metric's value class when a
    metric is made, from what it found at import (possibly before the variable was set).
    """
    os.environ[MULTIPROC_ENV] = str(path)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


class Metrics:
    """The API's metrics, registered in a registry of the app's own (no import-time globals)."""

    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        if self.multiprocess_dir:  # a worker of `serve`, or a process given the variable
            use_multiprocess_dir(Path(self.multiprocess_dir))
        self.registry = CollectorRegistry(auto_describe=True)
        self._collectors: list[Collector] = []
        self.requests = Counter(
            "dataflow_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dataflow_http_request_duration_seconds",
            "Time from request to the end of the response, by route template",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.accesses = Counter(
            "dataflow_data_accesses",
            "Data accesses served (each one counted by the meter), by table and format",
            ["table", "format"],
            registry=self.registry,
        )
        self.rows = Counter(
            "dataflow_rows_served", "Rows sent in data responses", registry=self.registry
        )
        self.cache = Counter(
            "dataflow_response_cache",
            "Response cache lookups for data requests, by result (hit or miss)",
            ["result"],
            registry=self.registry,
        )

        # labels() takes a lock and checks its arguments on every call; a request needs four
        # labelled children, so they are looked up once per label set and kept.
        self._children: dict[tuple[object, ...], Any] = {}
        # What is not written yet: counts per counter child, and per histogram child its sum
        # and the number of observations per bucket (prometheus' own upper bounds, +Inf last).
        self._counts: dict[Any, float] = {}
        self._observed: dict[Any, tuple[list[float], list[int]]] = {}
        self._flush_timer: asyncio.TimerHandle | None = None

    def _child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _count(self, child: Any, amount: float = 1.0) -> None:
        counts = self._counts
        counts[child] = counts.get(child, 0.0) + amount
        if self._flush_timer is None:
            self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a script, a thread): write at once
            self.flush()
            return
        self._flush_timer = loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Write what was tallied to the metrics (their files, in multiprocess mode)."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        counts, self._counts = self._counts, {}
        observed, self._observed = self._observed, {}
        for child, amount in counts.items():
            child.inc(amount)
        for child, (total, buckets) in observed.items():
            # What Histogram.observe does per value (sum, then the first bucket whose bound
            # holds it), once per bucket; tests/api/test_metrics.py pins it to observe().
            child._sum.inc(total[0])
            for i, n in enumerate(buckets):
                if n:
                    child._buckets[i].inc(n)

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        self._count(self._child(self.requests, route, method, str(status)))
        child = self._child(self.latency, route)
        pending = self._observed.get(child)
        if pending is None:
            pending = self._observed[child] = ([0.0], [0] * len(child._upper_bounds))
        pending[0][0] += seconds
        pending[1][bisect.bisect_left(child._upper_bounds, seconds)] += 1

    def cache_lookup(self, *, hit: bool) -> None:
        self._count(self._child(self.cache, "hit" if hit else "miss"))

    def access_served(self, table: str, fmt: str, rows: int) -> None:
        self._count(self._child(self.accesses, table, fmt))
        self._count(self.rows, rows)

    def add_collector(self, collector: Collector) -> None:
        """A collector that reads shared state itself (the database) at scrape time."""
        self._collectors.append(collector)
        self.registry.register(collector)

    def render(self) -> bytes:
        """The exposition; call ``flush`` first, on the event loop (this may run in a thread)."""
        if self.multiprocess_dir:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            for collector in self._collectors:
                registry.register(collector)
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))


class OverdueCollector(Collector):
    """Billing's figures, read from the database at scrape time (every worker answers the same,
    so they need no multi-process bookkeeping): overdue invoices and what they owe."""

    def __init__(self, engine: Engine, *, today: Callable[[], date] | None = None) -> None:
        self.engine = engine
        self._today = today or (lambda: datetime.now(UTC).astimezone(SAO_PAULO).date())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.engine.connect() as conn:
            late = overdue_invoices(conn, self._today())
        count = GaugeMetricFamily(
            "dataflow_billing_overdue_invoices", "Issued invoices past their due date, unpaid"
        )
        count.add_metric([], len(late))
        owed = GaugeMetricFamily(
            "dataflow_billing_overdue_brl", "Total in BRL of the overdue invoices (before credits)"
        )
        owed.add_metric([], float(sum(i.total_brl for i in late)))
        yield count
        yield owed
