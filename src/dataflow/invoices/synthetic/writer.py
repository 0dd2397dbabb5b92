"""Parquet parts of the fact store, written atomically (temporary name, then rename)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from dataflow.invoices.factstore import FactStore

__all__ = ["ROW_GROUP", "part_name", "write_part"]

ROW_GROUP = 256_000


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def write_part(
    store: FactStore, kind: str, year: int, month: int, index: int, table: pa.Table
) -> None:
    target = store.partition(kind, year, month)
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / f".{part_name(index)}.tmp"
    pq.write_table(
        table,
        tmp,
        compression="zstd",
        row_group_size=ROW_GROUP,
        # Dictionary pages for every column, access keys too: an invoice's items repeat its key.
        use_dictionary=True,
    )
    tmp.replace(target / part_name(index))
