"""Primary rules on hand-made cells: threshold, p%, dominance, holdings."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from dataflow.aggregation.cube import TAXPAYERS, TOP, cube_sql
from dataflow.aggregation.disclosure.suppression import Reason, primary
from dataflow.aggregation.specs import Hierarchy, SuppressionRules, TableSpec


def _cells(rows: list[tuple[float, int, list[float]]]) -> pa.Table:
    return pa.table(
        {
            "item_value": pa.array([r[0] for r in rows], pa.float64()),
            TAXPAYERS: pa.array([r[1] for r in rows], pa.int64()),
            TOP: pa.array([r[2] for r in rows], pa.list_(pa.float64())),
        }
    )


RULES = SuppressionRules(min_taxpayers=3, p_percent=10.0, dominance_n=2, dominance_k=90.0)


def test_threshold_rule_and_its_protection() -> None:
    rules = SuppressionRules(min_taxpayers=3, p_percent=10.0)
    p = primary(_cells([(100.0, 2, [60.0, 40.0]), (100.0, 5, [30.0, 20.0])]), rules)
    assert p.sensitive.tolist() == [True, False]
    assert p.reason[0] == Reason.THRESHOLD
    # the strictest level wins: 10% of the value (threshold) over p% (0.1 · 60 - 0 = 6)
    assert p.protection[0] == pytest.approx(10.0)


def test_p_percent_protection_level() -> None:
    # X = 100, x1 = 80, x2 = 15: rest 5 < 0.1 · 80 → UPL = 8 - 5 = 3
    p = primary(_cells([(100.0, 4, [80.0, 15.0])]), SuppressionRules(p_percent=10.0))
    assert p.sensitive[0] and p.reason[0] == Reason.P_PERCENT
    assert p.protection[0] == pytest.approx(3.0)


def test_dominance_protection_level() -> None:
    rules = SuppressionRules(p_percent=None, dominance_n=2, dominance_k=80.0)
    # top two 85 of 100 > 80% → UPL = 100/80 · 85 - 100 = 6.25
    p = primary(_cells([(100.0, 6, [50.0, 35.0]), (100.0, 6, [40.0, 30.0])]), rules)
    assert p.sensitive.tolist() == [True, False]
    assert p.protection[0] == pytest.approx(6.25)


def test_branches_of_one_taxpayer_are_one_contributor() -> None:
    """Two establishments of one CNPJ root plus one other company: 2 taxpayers, not 3."""
    facts = pa.table(
        {
            "issuer_municipality": ["3106200"] * 3,
            "issuer_uf": ["MG"] * 3,
            "issuer_root": ["11111111", "11111111", "22222222"],
            "item_value": pa.array([50, 30, 20], pa.decimal128(18, 2)),
            "access_key": ["a", "b", "c"],
        }
    )
    spec = TableSpec(
        id="t",
        title="t",
        hierarchies=[Hierarchy(name="g", levels=["municipality"])],
        measures=["item_value", "invoice_count"],
    )
    con = duckdb.connect()
    con.register("facts", facts)
    cells = con.sql(cube_sql(spec, "facts")).to_arrow_table()
    row = cells.filter(pa.compute.equal(cells["municipality"], "3106200")).to_pylist()[0]
    assert row[TAXPAYERS] == 2
    assert row[TOP] == [80.0, 20.0]
    assert row["invoice_count"] == 3
    assert primary(cells, RULES).sensitive.all()
