"""Billing's Prometheus figures, read from the database at scrape time (any worker answers the
same, so they need no multi-process bookkeeping): overdue invoices and what they owe."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from dataflow.billing.lifecycle import SAO_PAULO
from dataflow.billing.repository import overdue_invoices

__all__ = ["OverdueCollector"]


class OverdueCollector(Collector):
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
