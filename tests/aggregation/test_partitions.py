"""Taxpayer-hash partitions: the same cells as one pass, in bounded memory (partitions.py)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dataflow.aggregation.cube import build_cells
from dataflow.aggregation.levels import register_references
from dataflow.aggregation.partitions import BuildResources, Partitioned, configure
from dataflow.aggregation.release import ReleaseSummary, build_release
from dataflow.aggregation.specs import TableSpec
from dataflow.cli import app
from dataflow.invoices.factstore import FactStore
from dataflow.invoices.reference import ReferenceData
from dataflow.invoices.synthetic.generator import generate, parse_months

from ..proctree import run_measured
from .conftest import REPO

GB = 1 << 30


def same_table(a: pa.Table, b: pa.Table) -> bool:
    """Same names, types and values (NaN equal to NaN: the audit's bounds of published cells);
    nullability aside, which depends on the writer, not on the data."""
    if a.column_names != b.column_names or [f.type for f in a.schema] != [f.type for f in b.schema]:
        return False
    for name in a.column_names:
        x, y = a[name], b[name]
        if pa.types.is_floating(x.type):
            if not np.array_equal(x.to_numpy(), y.to_numpy(), equal_nan=True):
                return False
        elif x.to_pylist() != y.to_pylist():
            return False
    return True


@pytest.mark.parametrize(("count", "chunk_rows"), [(1, 10**7), (4, 10**7), (4, 1)])
def test_partitioned_cells_equal_the_one_pass_cells(
    fact_store: FactStore, catalogue: list[TableSpec], tmp_path: Path, count: int, chunk_rows: int
) -> None:
    """Every catalogue table, all of its columns (measures, distinct taxpayers, top
    contributions) and its order, whatever the number of partitions, and whether the facts
    were split in one COPY or one per fact file (``chunk_rows=1``)."""
    con = duckdb.connect()
    configure(con, BuildResources(memory_gb=2, partitions=count), tmp_path)
    register_references(con, REPO / "datasets")
    parts = Partitioned.split(con, fact_store, catalogue, tmp_path, count, chunk_rows=chunk_rows)
    files = len(list(fact_store.facts_dir.glob("*/*/*.parquet")))
    runs = len(list((tmp_path / "facts").glob("run-*")))
    assert files > 1
    assert runs == (0 if count == 1 else files if chunk_rows == 1 else 1)
    assert len(parts.sources) == count  # 500 taxpayers: no partition is empty
    plain = duckdb.connect()
    register_references(plain, REPO / "datasets")
    for spec in catalogue:
        cells, _ = parts.table(spec, tmp_path / f"{spec.id}.parquet")
        assert cells.equals(build_cells(fact_store, spec, plain)), spec.id
        contributions = pq.read_table(tmp_path / f"{spec.id}.parquet")
        assert contributions.num_rows > 0
        keys = [*spec.levels, "issuer_root"]
        assert contributions.select(keys).to_pylist() == sorted(
            contributions.select(keys).to_pylist(), key=lambda r: tuple(r.values())
        )


def test_a_partitioned_release_is_the_same_release(
    fact_store: FactStore,
    linked_specs: list[TableSpec],
    linked_release: ReleaseSummary,
    tmp_path: Path,
) -> None:
    again = build_release(
        fact_store, linked_specs, tmp_path, resources=BuildResources(memory_gb=1, partitions=3)
    )
    assert again.partitions == 3
    for sub in ("tables", "internal", "internal/contributions"):
        for spec in linked_specs:
            a = pq.read_table(linked_release.path / sub / f"{spec.id}.parquet")
            b = pq.read_table(again.path / sub / f"{spec.id}.parquet")
            assert same_table(a, b), (sub, spec.id)
    assert [p.name for p in tmp_path.iterdir()] == [again.path.name]  # no spill left


def test_a_build_out_of_memory_says_so_in_one_line_and_leaves_nothing(
    fact_store: FactStore, tmp_path: Path
) -> None:
    out = tmp_path / "releases"
    result = CliRunner().invoke(
        app,
        [
            "release", "build", "--store", str(fact_store.root), "--out", str(out),
            "--tables", str(REPO / "tables"), "--memory-limit", "0.2", "--partitions", "1",
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "out of memory" in lines[0] and "--memory-limit" in lines[0]
    assert "Traceback" not in result.output
    assert list(out.iterdir()) == []  # neither .staging-* nor its spill directory


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory, reference: ReferenceData) -> FactStore:
    store = FactStore(tmp_path_factory.mktemp("million"))
    generate(store, reference, items=1_000_000, seed=3, months=parse_months("2026-03:2026-03"))
    return store


@pytest.mark.slow
def test_memory_limit_is_honoured_where_the_build_would_exceed_it(
    million: FactStore, tmp_path: Path
) -> None:
    """The NCM table (distinct invoices per taxpayer and grouping set: the largest cube) of 10⁶
    items: the whole build process peaks above 0.5 GB without a limit, under it with one."""
    tables = tmp_path / "tables"
    tables.mkdir()
    shutil.copy(REPO / "tables" / "sales_ncm_heading_month.toml", tables)
    limit = 0.5

    def build(*extra: str) -> int:
        out = tmp_path / f"releases{len(extra)}"
        m = run_measured(
            [sys.executable, "-m", "dataflow", "release", "build", "--store",
             str(million.root), "--out", str(out), "--tables", str(tables), *extra]
        )  # fmt: skip
        assert m.returncode == 0, m.stderr
        return m.peak_rss

    unbounded = build()
    bounded = build("--memory-limit", str(limit))
    assert unbounded > limit * GB, unbounded / GB
    assert bounded <= limit * GB, bounded / GB
