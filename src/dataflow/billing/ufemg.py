"""The UFEMG value in force per year: data (``datasets/ufemg.csv``), never derived or hard-coded."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from dataflow.billing.errors import UfemgUnknown

__all__ = ["UfemgTable"]


@dataclass(frozen=True, slots=True)
class UfemgTable:
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
