"""What handlers need, built once per worker and passed to the app."""

from __future__ import annotations

from dataclasses import dataclass, field

from dataflow.aggregation.catalog import LoadedRelease
from dataflow.api.auth import KeyRing
from dataflow.api.execute import QueryRunner
from dataflow.api.metrics import Metrics
from dataflow.api.usage_chart import UsageCharts
from dataflow.contracts.service import ContractsService
from dataflow.metering.protocol import Meter

__all__ = ["ApiState"]


@dataclass(slots=True)
class ApiState:
    release: LoadedRelease
    keys: KeyRing
    contracts: ContractsService
    meter: Meter | None
    runner: QueryRunner
    metrics: Metrics
    charts: UsageCharts = field(default_factory=UsageCharts)

    @property
    def etag(self) -> str:
        return f'"{self.release.version}"'
