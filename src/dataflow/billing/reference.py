"""Billing's reference data, loaded once from ``datasets/`` and passed in."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import msgspec

from dataflow.billing.ufemg import CostItemTable, IndexTable, UfemgTable

__all__ = ["BillingReference", "DaeConfig"]


class DaeConfig(msgspec.Struct, frozen=True, kw_only=True):
    payee: str
    revenue_code: str
    revenue_description: str
    barcode_agency_code: str
    due_days: int = 15
    example: bool = False


@dataclass(frozen=True, slots=True)
class BillingReference:
    ufemg: UfemgTable
    indices: IndexTable
    cost_items: CostItemTable
    dae: DaeConfig

    @classmethod
    def load(cls, datasets: Path) -> BillingReference:
        dae = msgspec.convert(
            tomllib.loads((datasets / "dae.toml").read_text(encoding="utf-8")), DaeConfig
        )
        if not (len(dae.barcode_agency_code) == 4 and dae.barcode_agency_code.isdigit()):
            raise ValueError("datasets/dae.toml: barcode_agency_code must be 4 digits")
        return cls(
            ufemg=UfemgTable.load(datasets / "ufemg.csv"),
            indices=IndexTable.load(datasets / "readjustment_indices.csv"),
            cost_items=CostItemTable.load(datasets / "cost_items.csv"),
            dae=dae,
        )
