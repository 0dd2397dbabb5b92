"""Contributions and cells on Apache Spark: the release build past one machine.

The same table specs, compiled to Spark SQL (``cube.py`` with ``dialect.SPARK``: explicit
GROUPING SETS), run where Spark runs — ``local[N]`` here, any cluster with ``--master`` or under
``spark-submit`` — over a fact store Spark can read (a local path, ``hdfs://``, ``s3a://``).
Spark does the shuffles, so no taxpayer partitioning of our own is needed. What comes back to
the driver is what depends on the table dimensions, not on the items: each table's cells (Arrow),
on which suppression and the audit then run as for DuckDB. Contributions (finest cell ×
taxpayer) are written by Spark to a scratch directory the driver can read too, then sorted into
the release by DuckDB on the driver (spilling, in bounded memory).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from dataflow.aggregation.cube import TAXPAYERS, TOP, contributions_sql, cube_sql
from dataflow.aggregation.dialect import SPARK
from dataflow.aggregation.levels import REF_TABLES
from dataflow.aggregation.specs import TableSpec
from dataflow.invoices.spark import java_version, spark_session

__all__ = ["SparkCells", "cells_schema", "java_version", "spark_session"]

FACTS = "facts"


def cells_schema(spec: TableSpec) -> pa.Schema:
    """The cells' Arrow types as DuckDB gives them (levels, measures, internal statistics)."""
    measure = {"item_value": pa.decimal128(38, 2)}
    return pa.schema(
        [
            *[(lv, pa.string()) for lv in spec.levels],
            *[(m, measure.get(m, pa.int64())) for m in spec.measures],
            (TAXPAYERS, pa.int64()),
            (TOP, pa.list_(pa.field("l", pa.float64()))),
        ]
    )


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


@dataclass(slots=True)
class SparkCells:
    """A release build's cells engine on Spark (the counterpart of ``partitions.Partitioned``)."""

    spark: Any  # SparkSession (typed loosely: pyspark is imported only when used)
    con: duckdb.DuckDBPyConnection  # the driver's DuckDB: sorts contributions into the release
    scratch: Path
    count: int = 1

    @classmethod
    def start(
        cls,
        spark: Any,
        facts: str,
        datasets_dir: Path,
        con: duckdb.DuckDBPyConnection,
        scratch: Path,
    ) -> SparkCells:
        """Register the facts (``facts``: a directory of Parquet files, read recursively, no
        partition columns) and the reference tables as Spark views."""
        reader = spark.read.option("recursiveFileLookup", "true").option(
            "pathGlobFilter", "*.parquet"
        )
        reader.parquet(facts).createOrReplaceTempView(FACTS)
        for ref in REF_TABLES.values():
            path = datasets_dir / ref.file
            if not path.is_file():
                raise FileNotFoundError(f"reference table {ref.name} needs {path}")
            table = pacsv.read_csv(
                path,
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(_csv_columns(path), pa.string())
                ),
            )
            spark.createDataFrame(table).createOrReplaceTempView(f"src_{ref.name}")
            spark.sql(
                f"CREATE OR REPLACE TEMP VIEW {ref.name} AS "
                f"WITH src AS (SELECT * FROM src_{ref.name}) {ref.select}"
            )
        return cls(spark=spark, con=con, scratch=scratch)

    def watermark(self) -> dict[str, object]:
        """What ``release._watermark`` computes, from Spark: items and value per local month."""
        month = SPARK.level("month")
        rows = self.spark.sql(
            f"SELECT {month} AS m, count(*) AS n, CAST(sum(item_value) AS STRING) AS v, "
            f"CAST(max(issued_at) AS STRING) AS last FROM {FACTS} GROUP BY 1 ORDER BY 1"
        ).collect()
        months = {r["m"]: {"items": int(r["n"]), "item_value": r["v"]} for r in rows}
        return {
            "items": sum(int(r["n"]) for r in rows),
            "max_issued_at": max((r["last"] for r in rows), default=None),
            "months": months,
        }

    def table(
        self,
        spec: TableSpec,
        contributions_out: Path,
        progress: Callable[[str], None] | None = None,
    ) -> tuple[pa.Table, float]:
        t = time.perf_counter()
        scratch = self.scratch / "spark" / spec.id
        self.spark.sql(contributions_sql(spec, FACTS, dialect=SPARK, ordered=False)).write.mode(
            "overwrite"
        ).parquet(str(scratch))
        keys = ", ".join([*spec.levels, "issuer_root"])
        self.con.execute(
            f"COPY (SELECT * FROM read_parquet({_quoted(scratch / '*.parquet')}) "
            f"ORDER BY {keys}) TO {_quoted(contributions_out)} (FORMAT parquet, COMPRESSION zstd)"
        )
        contributing = time.perf_counter() - t
        view = f"contributions_{spec.id}"
        self.spark.read.parquet(str(scratch)).createOrReplaceTempView(view)
        sql = cube_sql(spec, FACTS, contributions=view, dialect=SPARK, ordered=False)
        cells = self.spark.sql(sql).toArrow()
        schema = cells_schema(spec)
        cells = pa.Table.from_arrays(
            [cells[f.name].cast(f.type) for f in schema], schema=schema
        ).sort_by([(lv, "ascending") for lv in spec.levels])
        return cells, contributing


def _csv_columns(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return f.readline().strip().split(",")
