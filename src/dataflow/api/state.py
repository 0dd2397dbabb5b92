"""What handlers need, built once per worker and passed to the app."""

from __future__ import annotations

from dataclasses import dataclass

from dataflow.aggregation.catalog import LoadedRelease
from dataflow.api.auth import KeyRing
from dataflow.contracts.service import ContractsService
from dataflow.metering.protocol import Meter

__all__ = ["ApiState"]


@dataclass(slots=True)
class ApiState:
    release: LoadedRelease
    keys: KeyRing
    contracts: ContractsService
    meter: Meter | None
