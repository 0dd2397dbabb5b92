"""Billing's reference data, loaded once from ``datasets/`` and passed in."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import msgspec

from dataflow.billing.barcode import revenue_digits
from dataflow.billing.ufemg import CostItemTable, IndexTable, UfemgTable

__all__ = ["EXAMPLE_WARNING", "BillingReference", "DaeConfig"]

EXAMPLE_WARNING = (
    "made with EXAMPLE reference values (see example_values): not payable and not for partners; "
    "put SEF/MG's real codes and unit values in datasets/ first"
)


class DaeConfig(msgspec.Struct, frozen=True, kw_only=True):
    payee: str
    revenue_code: str
    revenue_description: str
    barcode_agency_code: str
    due_days: int = 15
    value_identifier: str = "6"  # 6: effective value, mod 10; 8: effective value, mod 11
    example: bool = False

    def example_values(self) -> list[str]:
        """Which values of ``datasets/dae.toml`` are examples (empty once SEF/MG's are in)."""
        if not self.example:
            return []
        return ["datasets/dae.toml: revenue_code", "datasets/dae.toml: barcode_agency_code"]


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
        if dae.value_identifier not in ("6", "8"):
            raise ValueError("datasets/dae.toml: value_identifier must be '6' (mod 10) or '8'")
        revenue_digits(dae.revenue_code)  # the whole code must fit the barcode's free field
        return cls(
            ufemg=UfemgTable.load(datasets / "ufemg.csv"),
            indices=IndexTable.load(datasets / "readjustment_indices.csv"),
            cost_items=CostItemTable.load(datasets / "cost_items.csv"),
            dae=dae,
        )

    def example_values(self, *, cost_items: bool = False) -> list[str]:
        """The example values an output was made with: DAE codes, and unit values if asked."""
        out = self.dae.example_values()
        if cost_items and any(r.is_example for r in self.cost_items.rows):
            out.append("datasets/cost_items.csv: Art. 6 unit values")
        return out
