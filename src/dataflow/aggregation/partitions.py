"""Contributions and cells per taxpayer-hash partition: a month of items in bounded memory.

The facts are split once by a hash of the taxpayer (``issuer_root``): every row of a CNPJ root
lands in one partition, so each partition's cubes are the cubes of its taxpayers alone, and
merging them is exact — measures and distinct-taxpayer counts add, a cell's largest contributions
are the largest of the partitions' largest (``cube.merge_cells_sql``). Each partition is small
enough for DuckDB's memory limit; what does not fit spills to ``temp_directory``. Partial results
go to Parquet beside the staging directory, never into Python's memory; only the merged cells
(whose size depends on the table dimensions, not on the items) come back as Arrow.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from dataflow.aggregation.cube import (
    contributions_sql,
    cube_sql,
    fact_columns,
    fact_source,
    merge_cells_sql,
)
from dataflow.aggregation.specs import TableSpec
from dataflow.invoices.factstore import FactStore

__all__ = [
    "BuildResources",
    "OutOfResources",
    "Partitioned",
    "configure",
    "partition_count",
]

# Without --memory-limit: DuckDB's cap as before (the NCM cube at 2×10⁷ items spills under it).
_DEFAULT_DUCKDB_GB = 4.0
# Of a --memory-limit, what is left to DuckDB: the rest holds the interpreter and its libraries
# (~0.4 GB), the cells and the suppression's arrays, and DuckDB's own overshoot past its limit.
_DUCKDB_SHARE = 0.6
_PROCESS_BASE_GB = 0.3
# What DuckDB needs whatever the rows (per thread: hash tables, Parquet buffers), measured: the
# NCM cube of 10⁶ items fails at 100 MB on one thread, runs at 200 MB.
_THREAD_BYTES = 96 << 20
_MIN_DUCKDB_GB = 1 / 32  # below this even one partition of a small store fails
# DuckDB memory one fact row of a partition may need in the worst cube (the NCM table: distinct
# invoice keys per taxpayer and grouping set), beyond the per-thread part.
_ROW_BYTES = 400
_GB = 1 << 30
# Rows of the store each partitioning COPY reads (``Partitioned.split``).
_SPLIT_ROWS = 10_000_000


class OutOfResources(RuntimeError):
    """The build ran out of memory or of spill space; the message says what to set."""


@dataclass(frozen=True, slots=True)
class BuildResources:
    """What a build may use. ``memory_gb``: the whole process's peak RSS target (None: DuckDB
    capped at 4 GB, one partition, as before); ``partitions``: force the taxpayer-hash
    partition count (None: from the store's size and the memory); ``threads``: DuckDB threads."""

    memory_gb: float | None = None
    partitions: int | None = None
    threads: int | None = None
    # "duckdb" (this machine) or "spark" (contributions and cells on Spark, ``spark.py``)
    engine: str = "duckdb"
    master: str | None = None  # Spark master URL (None: spark-submit's, else local[*])
    facts: str | None = None  # the facts as Spark reads them (default: the store's facts/)

    def duckdb_gb(self) -> float:
        if self.memory_gb is None:
            return _DEFAULT_DUCKDB_GB
        return max(_MIN_DUCKDB_GB, (self.memory_gb - _PROCESS_BASE_GB) * _DUCKDB_SHARE)

    def duckdb_threads(self) -> int:
        if self.threads is not None:
            return self.threads
        cores = os.cpu_count() or 1
        if self.memory_gb is None:
            return cores
        # every thread holds its own buffers: about one per GB of DuckDB memory
        return max(1, min(cores, int(self.duckdb_gb())))

    def rows_per_partition(self) -> int:
        usable = self.duckdb_gb() * _GB - self.duckdb_threads() * _THREAD_BYTES
        return max(1, int(max(usable, 32 << 20) / _ROW_BYTES))


def partition_count(items: int, resources: BuildResources) -> int:
    if resources.partitions is not None:
        return max(1, resources.partitions)
    if resources.memory_gb is None:
        return 1
    return max(1, math.ceil(items / resources.rows_per_partition()))


def configure(con: duckdb.DuckDBPyConnection, resources: BuildResources, spill: Path) -> None:
    """Memory limit, spilling to ``spill`` and bounded threads on a build's connection."""
    mb = int(resources.duckdb_gb() * 1024)
    con.execute(f"SET memory_limit = '{mb}MB'")
    con.execute(f"SET temp_directory = '{spill / 'duckdb'}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET threads = {resources.duckdb_threads()}")


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _runs(store: FactStore, rows: int) -> list[list[Path]]:
    """The store's fact files in consecutive runs of about ``rows`` rows (at least one file)."""
    runs: list[list[Path]] = [[]]
    held = 0
    for path in sorted(store.facts_dir.glob("*/*/*.parquet")):
        if runs[-1] and held >= rows:
            runs.append([])
            held = 0
        runs[-1].append(path)
        held += pq.read_metadata(path).num_rows
    return [r for r in runs if r]


@dataclass(slots=True)
class Partitioned:
    """The facts of ``store`` split into ``count`` taxpayer-hash partitions under ``spill``
    (with one partition: the store itself, nothing copied)."""

    con: duckdb.DuckDBPyConnection
    store: FactStore
    spill: Path
    count: int
    sources: list[str]

    @classmethod
    def split(
        cls,
        con: duckdb.DuckDBPyConnection,
        store: FactStore,
        specs: list[TableSpec],
        spill: Path,
        count: int,
        *,
        chunk_rows: int = _SPLIT_ROWS,
    ) -> Partitioned:
        if count <= 1:
            return cls(con, store, spill, 1, [fact_source(store)])
        target = spill / "facts"
        columns = ", ".join(fact_columns(specs))
        # One COPY per run of the store's files, not one over the whole month: DuckDB's
        # partitioned write costs more per row as its input grows (10⁸ items, 19 partitions,
        # load ~2: one COPY 73 s and 2.6 GB; runs of 10⁷ rows 53 s and 2.4 GB).
        target.mkdir(parents=True, exist_ok=True)
        buckets: set[int] = set()
        for k, files in enumerate(_runs(store, chunk_rows)):
            out = target / f"run-{k:05d}"
            listed = "[" + ", ".join(_quoted(f) for f in files) + "]"
            con.execute(
                f"COPY (SELECT {columns}, (hash(issuer_root) % {count})::INTEGER AS bucket "
                f"FROM read_parquet({listed}, hive_partitioning = false)) TO {_quoted(out)} "
                "(FORMAT parquet, PARTITION_BY (bucket), COMPRESSION zstd)"
            )
            buckets.update(int(d.name.split("=")[1]) for d in out.glob("bucket=*"))
        sources = [
            f"read_parquet({_quoted(target / '*' / f'bucket={b}' / '*.parquet')}, "
            "hive_partitioning = false)"
            for b in sorted(buckets)
        ]
        return cls(con, store, spill, count, sources)

    def table(
        self,
        spec: TableSpec,
        contributions_out: Path,
        progress: Callable[[str], None] | None = None,
    ) -> tuple[pa.Table, float]:
        """One table's cells (Arrow) and its contributions written to ``contributions_out``
        (sorted by finest cell and taxpayer); returns the cells and the contributions' seconds."""
        import time

        work = self.spill / "tables" / spec.id
        (work / "contributions").mkdir(parents=True, exist_ok=True)
        (work / "cells").mkdir(parents=True, exist_ok=True)
        levels = ", ".join([*spec.levels, "issuer_root"])
        contributing = 0.0
        for i, source in enumerate(self.sources):
            if progress and len(self.sources) > 1:
                progress(f"cube {spec.id} (partition {i + 1}/{len(self.sources)})")
            t = time.perf_counter()
            part = work / "contributions" / f"part-{i:05d}.parquet"
            # unordered: the table's contributions are sorted once, after the last partition
            unordered = contributions_sql(spec, source, ordered=False)
            self.con.execute(f"COPY ({unordered}) TO {_quoted(part)} (FORMAT parquet)")
            contributing += time.perf_counter() - t
            cells = cube_sql(spec, source, contributions=f"read_parquet({_quoted(part)})")
            self.con.execute(
                f"COPY ({cells}) TO {_quoted(work / 'cells' / f'part-{i:05d}.parquet')} "
                "(FORMAT parquet)"
            )
        t = time.perf_counter()
        self.con.execute(
            f"COPY (SELECT * FROM read_parquet({_quoted(work / 'contributions' / '*.parquet')}) "
            f"ORDER BY {levels}) TO {_quoted(contributions_out)} "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        contributing += time.perf_counter() - t
        merged = merge_cells_sql(spec, f"read_parquet({_quoted(work / 'cells' / '*.parquet')})")
        return self.con.sql(merged).to_arrow_table(), contributing
