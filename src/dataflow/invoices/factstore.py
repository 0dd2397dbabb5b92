"""The Parquet fact store: ``facts/`` and ``invoices/``, hive-partitioned by year and month."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["SORT_KEYS", "FactStore"]

# Sorted within partitions by the main filter keys, so row-group statistics prune well.
SORT_KEYS = ("issuer_municipality", "issuer_cnae", "issued_at")


@dataclass(frozen=True, slots=True)
class FactStore:
    root: Path

    @property
    def facts_dir(self) -> Path:
        return self.root / "facts"

    @property
    def invoices_dir(self) -> Path:
        return self.root / "invoices"

    def partition(self, kind: str, year: int, month: int) -> Path:
        return self.root / kind / f"year={year:04d}" / f"month={month:02d}"

    def facts_glob(self) -> str:
        return str(self.facts_dir / "*" / "*" / "*.parquet")

    def invoices_glob(self) -> str:
        return str(self.invoices_dir / "*" / "*" / "*.parquet")

    def exists(self) -> bool:
        return any(self.facts_dir.glob("*/*/*.parquet"))

    def write_month(
        self, year: int, month: int, facts: pa.Table, invoices: pa.Table, *, part: str = "part-0"
    ) -> None:
        """Write one month atomically: files land under a temporary name, then are renamed."""
        for kind, table, keys in (
            ("facts", facts, SORT_KEYS),
            ("invoices", invoices, ("issuer_cnpj", "issued_at")),
        ):
            target = self.partition(kind, year, month)
            target.mkdir(parents=True, exist_ok=True)
            ordered = table.sort_by([(k, "ascending") for k in keys])
            tmp = target / f".{part}.parquet.tmp"
            pq.write_table(ordered, tmp, compression="zstd", row_group_size=256_000)
            tmp.replace(target / f"{part}.parquet")

    def clear(self) -> None:
        for d in (self.facts_dir, self.invoices_dir):
            if d.exists():
                shutil.rmtree(d)
