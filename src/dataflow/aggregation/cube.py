"""Cells of a table spec, with every margin, computed by DuckDB from the fact store.

Contributions are grouped by taxpayer (CNPJ root) first — branches of one company in one cell are
one contributor (the SDC handbook's *holdings* rule) — then each cell gets its distinct-taxpayer
count and its largest taxpayer contributions, which the p%- and dominance rules need.
"""

from __future__ import annotations

import itertools
import re

import duckdb
import pyarrow as pa

from dataflow.aggregation.dialect import DUCKDB, Dialect
from dataflow.aggregation.levels import (
    LEVEL_SQL,
    MEASURE_SQL,
    TOTAL,
    JoinedLevel,
    per_item,
)
from dataflow.aggregation.specs import MAGNITUDE, TableSpec
from dataflow.invoices.factstore import FactStore
from dataflow.invoices.schema import FACT_SCHEMA

__all__ = [
    "TAXPAYERS",
    "TOP",
    "build_cells",
    "contributions_sql",
    "cube_sql",
    "delta_sql",
    "fact_columns",
    "fact_source",
    "merge_cells_sql",
    "plain_cube_sql",
]

TAXPAYERS = "n_taxpayers"  # internal: distinct CNPJ roots per cell, never published
TOP = "top"  # internal: largest taxpayer contributions to the magnitude measure, descending


def _grouping_sets(spec: TableSpec) -> list[list[str]]:
    """Every combination of one prefix per hierarchy: the cells and all their margins."""
    prefixes = [[h.levels[:i] for i in range(len(h.levels) + 1)] for h in spec.hierarchies]
    return [[lv for p in combo for lv in p] for combo in itertools.product(*prefixes)]


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _expr(level: str, dialect: Dialect) -> str:
    d = dialect.level(level)
    if isinstance(d, JoinedLevel):
        return f"coalesce(j_{level}.{d.column}, '?')"
    return d


def _joins(spec: TableSpec, dialect: Dialect) -> str:
    used = set(spec.levels) | {k for k in spec.filters if k in LEVEL_SQL}
    out = []
    for lv in sorted(used):
        d = dialect.level(lv)
        if isinstance(d, JoinedLevel):
            out.append(f"LEFT JOIN {d.table} AS j_{lv} ON j_{lv}.{d.ref_key} = {d.key_sql}")
    return " ".join(out)


def _where(spec: TableSpec, dialect: Dialect) -> str:
    clauses = []
    for key, value in sorted(spec.filters.items()):
        values = [value] if isinstance(value, str) else value
        column = _expr(key, dialect) if key in LEVEL_SQL else key
        if key not in LEVEL_SQL and key not in FACT_SCHEMA.names:
            raise ValueError(f"table {spec.id}: filter on unknown column {key!r}")
        clauses.append(f"{column} IN ({', '.join(_quote(v) for v in values)})")
    return " AND ".join(clauses) or "TRUE"


def _sets_sql(spec: TableSpec, extra: str = "") -> str:
    return ", ".join(
        "(" + ", ".join([*s, extra] if extra else s) + ")" for s in _grouping_sets(spec)
    )


def _margins(spec: TableSpec) -> str:
    return ", ".join(
        f"CASE WHEN GROUPING({lv}) = 1 THEN '{TOTAL}' ELSE {lv} END AS {lv}" for lv in spec.levels
    )


def _facts(spec: TableSpec, source: str, dialect: Dialect = DUCKDB) -> str:
    derived = ", ".join(f"{_expr(lv, dialect)} AS {lv}" for lv in spec.levels)
    return (
        f"SELECT {derived}, item_value, access_key, issuer_root "
        f"FROM {source} {_joins(spec, dialect)} WHERE {_where(spec, dialect)}"
    )


def top_n(spec: TableSpec) -> int:
    return max(2, spec.rules.dominance_n or 0)


def cube_sql(
    spec: TableSpec,
    source: str,
    *,
    contributions: str | None = None,
    dialect: Dialect = DUCKDB,
    ordered: bool = True,
) -> str:
    """Cells and margins (``_T``) with per-taxpayer statistics, in a deterministic order.

    Every measure is additive over taxpayers (an invoice has one issuer), so a cell's figures are
    sums of its taxpayers' figures, and ties in the top contributions do not matter (values only).

    When every level is an invoice attribute (issuer, model, time, destination), all items of an
    invoice fall in one finest cell: one pass over the facts groups them by finest cell and
    taxpayer (distinct invoices counted there), and the margins add those up — invoice counts
    included — instead of grouping every item once per grouping set. A product or operation
    level splits invoices across cells, and then each grouping set counts distinct invoices.

    ``contributions``: a relation holding ``contributions_sql``'s result for the same facts —
    exactly that finest-cell-by-taxpayer grouping; where it applies, the cube reads it instead of
    scanning the facts a second time (the release build computes it anyway).

    ``dialect``: the engine the SQL is for (``dialect.py``); ``ordered=False`` leaves the order
    to the caller (Spark sorts on the driver).
    """
    outer = ", ".join(
        f"count(*) AS {m}" if m == "issuer_count" else f"CAST(sum({m}) AS {_type(m)}) AS {m}"
        for m in spec.measures
    )
    levels = ", ".join(spec.levels)
    counted = [m for m in spec.measures if m != "issuer_count"]
    if all(not per_item(lv) for lv in spec.levels):
        fine = ", ".join(f"{_PER_TAXPAYER[m]} AS {m}" for m in counted)
        added = ", ".join(f"sum({m}) AS {m}" for m in counted)
        first = (
            f"SELECT {levels}, issuer_root, {', '.join(counted)} FROM {contributions}"
            if contributions is not None
            else f"SELECT {levels}, issuer_root, {fine} FROM f GROUP BY {levels}, issuer_root"
        )
        grouped = f"""fine AS ({first}),
        t AS (
            SELECT {_margins(spec)}, issuer_root, {added}
            FROM fine GROUP BY GROUPING SETS ({_sets_sql(spec, "issuer_root")})
        )"""
    else:
        inner = ", ".join(f"{_PER_TAXPAYER[m]} AS {m}" for m in counted)
        grouped = f"""t AS (
            SELECT {_margins(spec)}, issuer_root, {inner}
            FROM f GROUP BY GROUPING SETS ({_sets_sql(spec, "issuer_root")})
        )"""
    return f"""
        WITH f AS ({_facts(spec, source, dialect)}),
        {grouped}
        SELECT {levels}, {outer}, count(*) AS {TAXPAYERS},
               {dialect.top(MAGNITUDE, top_n(spec))} AS {TOP}
        FROM t GROUP BY {levels}{f" ORDER BY {levels}" if ordered else ""}
    """


_PER_TAXPAYER = {"item_value": "sum(item_value)", "invoice_count": "count(DISTINCT access_key)"}


def _type(measure: str) -> str:
    return "DECIMAL(38, 2)" if measure == "item_value" else "BIGINT"


def plain_cube_sql(spec: TableSpec, source: str, *, pregrouped: bool = False) -> str:
    """The same unprotected cells by a plain GROUPING SETS query: the benchmark's baseline.

    ``pregrouped`` gives the plain query the same shortcut ``cube_sql`` takes (group the facts
    by finest cell once, add up the margins) where every level is an invoice attribute, so the
    benchmark can show what protection costs beyond that rewrite.
    """
    measures = ", ".join(f"{MEASURE_SQL[m]} AS {m}" for m in spec.measures)
    additive = "issuer_count" not in spec.measures  # distinct issuers do not add up
    if pregrouped and additive and all(not per_item(lv) for lv in spec.levels):
        levels = ", ".join(spec.levels)
        added = ", ".join(f"sum({m})::{_type(m)} AS {m}" for m in spec.measures)
        return f"""
            WITH f AS ({_facts(spec, source)}),
            fine AS (SELECT {levels}, {measures} FROM f GROUP BY {levels})
            SELECT {_margins(spec)}, {added}
            FROM fine GROUP BY GROUPING SETS ({_sets_sql(spec)})
        """
    return f"""
        WITH f AS ({_facts(spec, source)})
        SELECT {_margins(spec)}, {measures}
        FROM f GROUP BY GROUPING SETS ({_sets_sql(spec)})
    """


def contributions_sql(
    spec: TableSpec, source: str, *, dialect: Dialect = DUCKDB, ordered: bool = True
) -> str:
    """Each taxpayer's figures per finest cell: what a later release compares with its own to
    find revisions (``delta_sql``). Internal, like the diagnostics: never served."""
    levels = ", ".join(spec.levels)
    order = f" ORDER BY {levels}, issuer_root" if ordered else ""
    return f"""
        WITH f AS ({_facts(spec, source, dialect)})
        SELECT {levels}, issuer_root, CAST(sum(item_value) AS DECIMAL(38, 2)) AS item_value,
               count(DISTINCT access_key) AS invoice_count
        FROM f GROUP BY {levels}, issuer_root{order}
    """


def delta_sql(spec: TableSpec, new: str, old: str) -> str:
    """Per cell (margins included), the revision between two releases' contributions, grouped
    by taxpayer — what differencing the two would show — as the primary rules read a cell:
    taxpayers whose figure moved, their largest moves and the sum of moves (absolute values: a
    cancellation reveals as much as a late invoice). Only cells with a change are returned."""
    levels = ", ".join(spec.levels)
    using = ", ".join([*spec.levels, "issuer_root"])
    return f"""
        WITH d AS (
            SELECT {levels}, issuer_root,
                   coalesce(n.item_value, 0) - coalesce(o.item_value, 0) AS dv
            FROM {new} AS n FULL OUTER JOIN {old} AS o USING ({using})
            WHERE n.item_value IS DISTINCT FROM o.item_value
               OR n.invoice_count IS DISTINCT FROM o.invoice_count
        ),
        t AS (
            SELECT {_margins(spec)}, issuer_root, sum(dv) AS dv
            FROM d GROUP BY GROUPING SETS ({_sets_sql(spec, "issuer_root")})
        )
        SELECT {levels}, (count(*) FILTER (WHERE dv <> 0))::BIGINT AS {TAXPAYERS},
               sum(abs(dv))::DECIMAL(38, 2) AS {MAGNITUDE},
               max(abs(dv)::DOUBLE, {top_n(spec)}) AS {TOP}
        FROM t GROUP BY {levels} ORDER BY {levels}
    """


def merge_cells_sql(
    spec: TableSpec, partials: str, *, dialect: Dialect = DUCKDB, ordered: bool = True
) -> str:
    """One table's cells from ``cube_sql`` results over disjoint sets of taxpayers.

    Partitions split the facts by taxpayer (every row of a CNPJ root in one partition), so a
    cell's measures and distinct-taxpayer counts are sums of the partitions' figures and its
    largest contributions are the largest of the partitions' largest: the merge is exact.
    """
    levels = ", ".join(spec.levels)
    added = ", ".join(
        f"CAST(sum({m}) AS {'BIGINT' if m == 'issuer_count' else _type(m)}) AS {m}"
        for m in spec.measures
    )
    return f"""
        SELECT {levels}, {added}, CAST(sum({TAXPAYERS}) AS BIGINT) AS {TAXPAYERS},
               {dialect.merge_top(TOP, top_n(spec))} AS {TOP}
        FROM {partials} GROUP BY {levels}{f" ORDER BY {levels}" if ordered else ""}
    """


def fact_columns(specs: list[TableSpec]) -> list[str]:
    """The fact columns the specs' cubes read (the rest need not be copied into partitions)."""
    text = " ".join(_facts(spec, "facts") for spec in specs)
    return [c for c in FACT_SCHEMA.names if re.search(rf"\b{c}\b", text)]


def fact_source(store: FactStore) -> str:
    return f"read_parquet('{store.facts_glob()}', hive_partitioning = false)"


def build_cells(
    store: FactStore,
    spec: TableSpec,
    con: duckdb.DuckDBPyConnection,
    contributions: pa.Table | None = None,
) -> pa.Table:
    """``con`` must have the reference tables registered (``levels.register_references``);
    ``contributions``: the table's ``contributions_sql`` result, reused where it applies."""
    if contributions is None:
        return con.sql(cube_sql(spec, fact_source(store))).to_arrow_table()
    con.register("_contributions", contributions)
    try:
        sql = cube_sql(spec, fact_source(store), contributions="_contributions")
        return con.sql(sql).to_arrow_table()
    finally:
        con.unregister("_contributions")
