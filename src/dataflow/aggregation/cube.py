"""Cells of a table spec, with every margin, computed by DuckDB from the fact store."""

from __future__ import annotations

import itertools

import duckdb
import pyarrow as pa

from dataflow.aggregation.factstore import FactStore
from dataflow.aggregation.levels import MEASURE_SQL, TOTAL, level_sql
from dataflow.aggregation.schema import FACT_SCHEMA
from dataflow.aggregation.specs import TableSpec

__all__ = ["TAXPAYERS", "build_cells", "cube_sql"]

TAXPAYERS = "n_taxpayers"  # internal: distinct CNPJ roots per cell, never published


def _grouping_sets(spec: TableSpec) -> list[list[str]]:
    """Every combination of one prefix per hierarchy: the cells and all their margins."""
    prefixes = [[h.levels[:i] for i in range(len(h.levels) + 1)] for h in spec.hierarchies]
    return [[lv for p in combo for lv in p] for combo in itertools.product(*prefixes)]


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _where(spec: TableSpec) -> str:
    clauses = []
    for column, value in sorted(spec.filters.items()):
        if column not in FACT_SCHEMA.names:
            raise ValueError(f"table {spec.id}: filter on unknown fact column {column!r}")
        values = [value] if isinstance(value, str) else value
        clauses.append(f"{column} IN ({', '.join(_quote(v) for v in values)})")
    return " AND ".join(clauses) or "TRUE"


def cube_sql(spec: TableSpec, source: str) -> str:
    """SQL with explicit GROUPING SETS; margins carry ``_T`` in the grouped-out levels."""
    derived = ", ".join(f"{level_sql(lv)} AS {lv}" for lv in spec.levels)
    select_levels = ", ".join(
        f"CASE WHEN GROUPING({lv}) = 1 THEN '{TOTAL}' ELSE {lv} END AS {lv}" for lv in spec.levels
    )
    measures = ", ".join(f"{MEASURE_SQL[m]} AS {m}" for m in spec.measures)
    sets = ", ".join("(" + ", ".join(s) + ")" for s in _grouping_sets(spec))
    order = ", ".join(spec.levels)
    return f"""
        WITH f AS (
            SELECT {derived}, item_value, access_key, issuer_root
            FROM {source} WHERE {_where(spec)}
        )
        SELECT {select_levels}, {measures}, count(DISTINCT issuer_root) AS {TAXPAYERS}
        FROM f
        GROUP BY GROUPING SETS ({sets})
        ORDER BY {order}
    """


def build_cells(store: FactStore, spec: TableSpec, con: duckdb.DuckDBPyConnection) -> pa.Table:
    source = f"read_parquet('{store.facts_glob()}', hive_partitioning = false)"
    return con.sql(cube_sql(spec, source)).to_arrow_table()
