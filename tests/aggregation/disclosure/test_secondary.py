"""Secondary suppression on small random tables (hierarchies, linked tables): audited safe."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflow.aggregation.cube import cube_sql
from dataflow.aggregation.disclosure.audit import audit
from dataflow.aggregation.disclosure.hypercube import TableIndex
from dataflow.aggregation.disclosure.linked import build_system
from dataflow.aggregation.disclosure.secondary import protect
from dataflow.aggregation.disclosure.suppression import primary
from dataflow.aggregation.levels import register_references
from dataflow.aggregation.specs import Hierarchy, SuppressionRules, TableSpec
from tests.aggregation.conftest import REPO

RULES = SuppressionRules(min_taxpayers=3, p_percent=10.0, dominance_n=2, dominance_k=90.0)
MUNIS = ["3106200", "3170206", "3118601"]
CNAES = ["4711302", "4712100", "4721102", "1011201", "1012101"]  # groups 471, 472, 101
MONTHS = ["2026-01-10T10:00:00-03:00", "2026-02-10T10:00:00-03:00"]

# A: municipality × (division → group); B: (division → group) × month. Linked through the
# activity × all-time margins of A (municipality _T) which are B's month _T cells.
SPEC_A = TableSpec(
    id="a",
    title="a",
    hierarchies=[
        Hierarchy(name="g", levels=["municipality"]),
        Hierarchy(name="c", levels=["cnae_division", "cnae_group"]),
    ],
    measures=["item_value", "invoice_count"],
    rules=RULES,
)
SPEC_B = TableSpec(
    id="b",
    title="b",
    hierarchies=[
        Hierarchy(name="c", levels=["cnae_division", "cnae_group"]),
        Hierarchy(name="t", levels=["month"]),
    ],
    measures=["item_value", "invoice_count"],
    rules=RULES,
)

item = st.tuples(
    st.integers(0, len(MUNIS) - 1),
    st.integers(0, len(CNAES) - 1),
    st.integers(0, 1),
    st.integers(0, 7),  # taxpayer
    st.integers(1, 10_000),  # value in cents × 100
)


def _facts(items: list[tuple[int, int, int, int, int]]) -> pa.Table:
    return pa.table(
        {
            "issuer_municipality": [MUNIS[m] for m, *_ in items],
            "issuer_uf": ["MG"] * len(items),
            "issuer_cnae": [CNAES[c] for _, c, *_ in items],
            "issued_at": pa.array([MONTHS[t] for _, _, t, *_ in items], pa.string()).cast(
                pa.timestamp("us", tz="America/Sao_Paulo")
            ),
            "issuer_root": [f"{r:08d}" for *_, r, _ in items],
            "item_value": pa.array([Decimal(v) / 100 for *_, v in items], pa.decimal128(18, 2)),
            "access_key": [str(i) for i in range(len(items))],
        }
    )


def _cells(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> pa.Table:
    return con.sql(cube_sql(spec, "facts")).to_arrow_table()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(st.lists(item, min_size=3, max_size=40))
def test_protected_pattern_passes_the_exact_audit(
    items: list[tuple[int, int, int, int, int]],
) -> None:
    con = duckdb.connect()
    register_references(con, REPO / "datasets")
    con.register("facts", _facts(items))
    built = [(s, c, primary(c, s.rules)) for s in (SPEC_A, SPEC_B) for c in [_cells(con, s)]]
    system = build_system(built)
    indexes = [TableIndex.build(s, c, system.table_rows[s.id]) for s, c, _ in built]
    result = protect(system, indexes)
    assert (result.suppressed >= system.sensitive).all()  # primary cells stay hidden
    exact = audit(system, result.suppressed, all_cells=True, exact=True)
    assert exact.passed, [system.keys[g] for g in exact.failures]
    # suppressed sensitive cells: the exact interval covers the protection interval
    s = system.sensitive
    x, p = system.value[s], system.protection[s]
    assert (exact.lower[s] <= x - np.minimum(p, x) + 1e-6 * np.maximum(1, x)).all()
    assert (exact.upper[s] >= x + p - 1e-6 * np.maximum(1, x)).all()
    # the same data gives the same pattern
    again = protect(system, indexes)
    assert (again.suppressed == result.suppressed).all()


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.lists(item, min_size=3, max_size=30))
def test_primary_only_is_flagged_whenever_a_cell_is_exposed(
    items: list[tuple[int, int, int, int, int]],
) -> None:
    """The audit is not a rubber stamp: a sensitive cell alone in a relation is always caught."""
    con = duckdb.connect()
    register_references(con, REPO / "datasets")
    con.register("facts", _facts(items))
    built = [(s, c, primary(c, s.rules)) for s in (SPEC_A, SPEC_B) for c in [_cells(con, s)]]
    system = build_system(built)
    result = audit(system, system.sensitive, all_cells=True, exact=True)
    lonely = False
    for members in system.relations:
        hidden = system.sensitive[members]
        if hidden.sum() == 1 and system.protection[members[hidden]][0] > 0:
            lonely = True
    if lonely:
        assert not result.passed
