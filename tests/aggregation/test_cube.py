"""Taxpayer-grouped cubes give the same cells and measures as a plain GROUPING SETS query."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import msgspec
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflow.aggregation.cube import TAXPAYERS, contributions_sql, cube_sql, plain_cube_sql
from dataflow.aggregation.levels import per_item, register_references
from dataflow.aggregation.specs import Hierarchy, TableSpec

from .conftest import REPO

MUNIS = ["3106200", "3170206"]
CNAES = ["4711302", "4712100", "4721102", "1011201"]
NCMS = ["02011000", "02023000", "04011010", "22030000"]
DAYS = ["2026-01-10T10:00:00-03:00", "2026-02-28T23:30:00-03:00", "2026-03-01T01:00:00-03:00"]
MEASURES = ["item_value", "invoice_count", "issuer_count"]

BY_ISSUER = TableSpec(  # every level is an invoice attribute: the pre-grouped path
    id="by_issuer",
    title="t",
    hierarchies=[
        Hierarchy(name="g", levels=["municipality"]),
        Hierarchy(name="c", levels=["cnae_division", "cnae_group"]),
        Hierarchy(name="t", levels=["month"]),
    ],
    measures=MEASURES,
)
BY_PRODUCT = TableSpec(  # NCM splits invoices across cells
    id="by_product",
    title="t",
    hierarchies=[
        Hierarchy(name="p", levels=["ncm_chapter", "ncm_heading"]),
        Hierarchy(name="t", levels=["month"]),
    ],
    measures=MEASURES,
)

# An invoice: issuer (municipality, CNAE, taxpayer root), day, and its items' (NCM, cents).
invoice = st.tuples(
    st.integers(0, len(MUNIS) - 1),
    st.integers(0, len(CNAES) - 1),
    st.integers(0, 4),
    st.integers(0, len(DAYS) - 1),
    st.lists(st.tuples(st.integers(0, len(NCMS) - 1), st.integers(1, 10_000)), min_size=1),
)


def _facts(invoices: list[tuple[int, int, int, int, list[tuple[int, int]]]]) -> pa.Table:
    rows = [
        (f"k{i}", MUNIS[m], CNAES[c], f"{r:08d}", DAYS[d], NCMS[n], Decimal(v) / 100)
        for i, (m, c, r, d, items) in enumerate(invoices)
        for n, v in items
    ]
    cols = list(zip(*rows, strict=True))
    return pa.table(
        {
            "access_key": list(cols[0]),
            "issuer_municipality": list(cols[1]),
            "issuer_uf": ["MG"] * len(rows),
            "issuer_cnae": list(cols[2]),
            "issuer_root": list(cols[3]),
            "issued_at": pa.array(list(cols[4]), pa.string()).cast(
                pa.timestamp("us", tz="America/Sao_Paulo")
            ),
            "ncm": list(cols[5]),
            "item_value": pa.array(list(cols[6]), pa.decimal128(18, 2)),
        }
    )


def test_levels_read_per_item() -> None:
    assert per_item("ncm_heading") and per_item("cfop")
    assert not any(per_item(lv) for lv in BY_ISSUER.levels)


def _connected(
    invoices: list[tuple[int, int, int, int, list[tuple[int, int]]]],
) -> duckdb.DuckDBPyConnection:
    """DuckDB with the reference tables and the invoices as ``facts``."""
    con = duckdb.connect()
    register_references(con, REPO / "datasets")
    con.register("facts", _facts(invoices))
    return con


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.lists(invoice, min_size=1, max_size=25))
def test_cube_measures_equal_plain_group_by(
    invoices: list[tuple[int, int, int, int, list[tuple[int, int]]]],
) -> None:
    con = _connected(invoices)
    for spec in (BY_ISSUER, BY_PRODUCT):
        cube = con.sql(cube_sql(spec, "facts")).to_arrow_table()
        plain = con.sql(plain_cube_sql(spec, "facts")).to_arrow_table()
        key = spec.levels
        got = {tuple(r[lv] for lv in key): r for r in cube.to_pylist()}
        want = {tuple(r[lv] for lv in key): r for r in plain.to_pylist()}
        assert got.keys() == want.keys()
        for cell, row in want.items():
            for m in MEASURES:
                assert got[cell][m] == row[m], (spec.id, cell, m)
            assert got[cell][TAXPAYERS] == row["issuer_count"]


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.lists(invoice, min_size=1, max_size=25))
def test_cube_from_the_contributions_is_the_cube_from_the_facts(
    invoices: list[tuple[int, int, int, int, list[tuple[int, int]]]],
) -> None:
    """The release build reads invoice-level cubes off the contributions it keeps anyway."""
    con = _connected(invoices)
    for spec in (BY_ISSUER, BY_PRODUCT):
        con.sql(f"CREATE OR REPLACE TABLE contrib AS {contributions_sql(spec, 'facts')}")
        direct = con.sql(cube_sql(spec, "facts")).fetchall()
        assert con.sql(cube_sql(spec, "facts", contributions="contrib")).fetchall() == direct


@settings(max_examples=10, deadline=None, derandomize=True)
@given(st.lists(invoice, min_size=1, max_size=25))
def test_pregrouped_baseline_equals_plain_group_by(
    invoices: list[tuple[int, int, int, int, list[tuple[int, int]]]],
) -> None:
    """The benchmark's second baseline computes the same cells."""
    con = _connected(invoices)
    for spec in (BY_ISSUER, BY_PRODUCT):
        spec = msgspec.structs.replace(spec, measures=["item_value", "invoice_count"])
        order = ", ".join(spec.levels)
        plain = con.sql(f"{plain_cube_sql(spec, 'facts')} ORDER BY {order}").fetchall()
        fast = con.sql(
            f"{plain_cube_sql(spec, 'facts', pregrouped=True)} ORDER BY {order}"
        ).fetchall()
        assert fast == plain
