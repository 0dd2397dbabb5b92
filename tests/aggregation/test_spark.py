"""The release build on Spark (local mode) gives the DuckDB build's cells, every one of them."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dataflow.aggregation.dialect import DUCKDB, SPARK
from dataflow.aggregation.partitions import BuildResources
from dataflow.aggregation.release import ReleaseSummary, build_release
from dataflow.aggregation.spark import java_version
from dataflow.aggregation.specs import TableSpec
from dataflow.invoices.factstore import FactStore

from .test_partitions import same_table

pytestmark = pytest.mark.xdist_group("spark")


def test_java_17_or_later_is_there() -> None:
    version = java_version()
    assert version is not None, "no Java runtime: Spark needs openjdk-17-jre-headless"
    major = int(version.split('"')[1].split(".")[0])
    assert major >= 17, version


def test_the_dialects_differ_only_where_they_must(catalogue: list[TableSpec]) -> None:
    from dataflow.aggregation.cube import cube_sql

    for spec in catalogue:
        duck, spark = (cube_sql(spec, "facts", dialect=d) for d in (DUCKDB, SPARK))
        assert "GROUPING SETS" in duck and "GROUPING SETS" in spark
        assert "max(CAST(item_value AS DOUBLE)" in duck and "collect_list" in spark
        assert "strftime" not in spark and "::" not in spark


@pytest.mark.slow
def test_spark_builds_the_standard_catalogue_cell_for_cell(
    spark: object,
    fact_store: FactStore,
    catalogue: list[TableSpec],
    release: ReleaseSummary,
    tmp_path: Path,
) -> None:
    """Values, invoice counts, distinct taxpayers, top contributions, margins and flags: the
    published tables, the internal diagnostics and the kept contributions, all six tables."""
    on_spark = build_release(
        fact_store, catalogue, tmp_path, resources=BuildResources(engine="spark")
    )
    assert on_spark.tables == release.tables
    for sub in ("tables", "internal", "internal/contributions"):
        for spec in catalogue:
            a = pq.read_table(release.path / sub / f"{spec.id}.parquet")
            b = pq.read_table(on_spark.path / sub / f"{spec.id}.parquet")
            assert same_table(a, b), (sub, spec.id)
    assert [p.name for p in tmp_path.iterdir()] == [on_spark.path.name]
