"""Date-effective reference data: UFEMG per year, readjustment indices, Art. 6 unit values.

All of it is data under ``datasets/`` with a source per row — never derived or hard-coded.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from dataflow.billing.errors import CostItemUnknown, IndexUnknown, UfemgUnknown

__all__ = ["COST_ITEMS", "CostItemTable", "CostItemValue", "IndexTable", "UfemgTable"]

# Art. 6: the cost items whose unit values SAIF publishes at least yearly.
COST_ITEMS = {
    "I": "Software empregado como ferramenta de pesquisa",
    "II": "Manutenção da rede",
    "III": "Manutenção dos equipamentos",
    "IV": "Hora/homem",
    "V": "Hora/máquina",
    "VI": "Outros elementos necessários ao fornecimento das informações",
}


@dataclass(frozen=True, slots=True)
class UfemgTable:
    """BRL per UFEMG, one value per calendar year (SEF/MG sets it each year by resolution)."""

    values: dict[int, Decimal]

    @classmethod
    def load(cls, path: Path) -> UfemgTable:
        with path.open(encoding="utf-8", newline="") as f:
            return cls({int(r["year"]): Decimal(r["brl_per_ufemg"]) for r in csv.DictReader(f)})

    def brl_per_ufemg(self, year: int) -> Decimal:
        try:
            return self.values[year]
        except KeyError:
            raise UfemgUnknown(year, sorted(self.values)) from None


@dataclass(frozen=True, slots=True)
class IndexTable:
    """12-month change (%) of price indices, per index and reference month ``YYYY-MM``."""

    values: dict[tuple[str, str], Decimal]

    @classmethod
    def load(cls, path: Path) -> IndexTable:
        with path.open(encoding="utf-8", newline="") as f:
            rows = csv.DictReader(line for line in f if not line.startswith("#"))
            return cls({(r["index"].upper(), r["month"]): Decimal(r["percent_12m"]) for r in rows})

    @classmethod
    def empty(cls) -> IndexTable:
        return cls({})

    def percent(self, index: str, month: str) -> Decimal:
        try:
            return self.values[(index.upper(), month)]
        except KeyError:
            raise IndexUnknown(index, month) from None


@dataclass(frozen=True, slots=True)
class CostItemValue:
    item: str
    unit: str
    unit_value_ufemg: Decimal
    effective_from: date
    source: str

    @property
    def is_example(self) -> bool:
        return "EXAMPLE" in self.source.upper()


@dataclass(frozen=True, slots=True)
class CostItemTable:
    """Art. 6 unit values, date-effective: the row in force is the latest ``effective_from``."""

    rows: list[CostItemValue]

    @classmethod
    def load(cls, path: Path) -> CostItemTable:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(line for line in f if not line.startswith("#"))
            rows = [
                CostItemValue(
                    item=r["item"],
                    unit=r["unit"],
                    unit_value_ufemg=Decimal(r["unit_value_ufemg"]),
                    effective_from=date.fromisoformat(r["effective_from"]),
                    source=r["source"],
                )
                for r in reader
            ]
        return cls(sorted(rows, key=lambda r: r.effective_from))

    def in_force(self, item: str, on: date) -> CostItemValue:
        found = [r for r in self.rows if r.item == item and r.effective_from <= on]
        if not found:
            raise CostItemUnknown(item, on)
        return found[-1]
