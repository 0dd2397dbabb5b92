"""The audit can fail, and an attacker holding every published table recovers nothing."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflow.aggregation.cube import cube_sql
from dataflow.aggregation.disclosure.audit import _apply_witnesses, audit
from dataflow.aggregation.disclosure.hypercube import Hypercubes, TableIndex
from dataflow.aggregation.disclosure.linked import CellSystem, build_system
from dataflow.aggregation.disclosure.secondary import protect
from dataflow.aggregation.disclosure.suppression import primary
from dataflow.aggregation.levels import register_references
from dataflow.aggregation.release import AuditFailed, ReleaseSummary, build_release
from dataflow.aggregation.release_audit import audit_release
from dataflow.aggregation.specs import TableSpec
from dataflow.invoices.factstore import FactStore
from tests.aggregation.attacker import Attacker, link_division_month, public_rows
from tests.aggregation.disclosure.test_secondary import SPEC_A, SPEC_B, _facts, item

REPO = Path(__file__).resolve().parents[3]


def test_primary_only_is_caught_and_not_published(
    fact_store: FactStore, linked_specs: list[TableSpec], tmp_path: Path
) -> None:
    with pytest.raises(AuditFailed) as caught:
        build_release(fact_store, linked_specs, tmp_path, secondary=False)
    assert caught.value.cells
    # the staging directory was never renamed into a release
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".staging")]
    staged = caught.value.where
    report = audit_release(staged)
    assert not report.passed and report.failures > 0


def test_audit_passes_on_the_linked_release(linked_release: ReleaseSummary) -> None:
    report = audit_release(linked_release.path, exact=True)
    assert report.passed, report
    assert report.hashes_ok
    assert all(t.failures == 0 for t in report.tables)


def test_partner_attack_recovers_no_sensitive_cell(
    linked_release: ReleaseSummary, linked_specs: list[TableSpec]
) -> None:
    sensitive = {}
    for spec in linked_specs:
        internal = pl.read_parquet(linked_release.path / "internal" / f"{spec.id}.parquet")
        for r in internal.filter(pl.col("reason").str.starts_with("primary")).iter_rows(named=True):
            sensitive[(spec.id, tuple(r[lv] for lv in spec.levels))] = r
    published = {  # every published cell of both tables, straight from the public files
        (spec.id, tuple(r[: len(spec.levels)]))
        for spec in linked_specs
        for r in pl.read_parquet(linked_release.path / "tables" / f"{spec.id}.parquet")
        .filter(pl.col("item_value").is_not_null())
        .select(spec.levels)
        .iter_rows()
    }
    assert not published & set(sensitive), "a sensitive cell was published"
    partner = Attacker()
    for spec in linked_specs:
        partner.add_table("r", spec, public_rows(linked_release.path, spec))
    link_division_month(partner, "r", linked_specs)
    assert partner.rows
    checked = 0
    for key, r in sensitive.items():
        lo, hi = partner.bounds({("r", *key): 1.0})
        x, p = float(r["value"]), float(r["protection"])
        tol = 1e-6 * max(1.0, x)
        assert lo <= x - min(p, x) + tol, (key, lo, x, p)
        assert hi >= x + p - tol, (key, hi, x, p)
        checked += 1
    assert checked > 0


def _small_system(
    items: list[tuple[int, int, int, int, int]],
) -> tuple[CellSystem, Hypercubes]:
    con = duckdb.connect()
    register_references(con, REPO / "datasets")
    con.register("facts", _facts(items))
    built = [
        (s, c, primary(c, s.rules))
        for s in (SPEC_A, SPEC_B)
        for c in [con.sql(cube_sql(s, "facts")).to_arrow_table()]
    ]
    system = build_system(built)
    indexes = [TableIndex.build(s, c, system.table_rows[s.id]) for s, c, _ in built]
    return system, Hypercubes(system, indexes)


@settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(item, min_size=3, max_size=40), st.lists(st.booleans(), max_size=120))
def test_witness_audit_agrees_with_the_exact_lp(
    items: list[tuple[int, int, int, int, int]], extra: list[bool]
) -> None:
    """Witnesses (hints, hypercubes, box LPs) give the exact audit's verdict, and their bounds
    lie inside the exact intervals: every one is a point the attacker cannot exclude."""
    system, cubes = _small_system(items)
    hidden = system.sensitive.copy()
    hidden[: len(extra)] |= np.array(extra[: system.size], np.bool_)[: system.size]
    exact = audit(system, hidden, exact=True)
    fast = audit(system, hidden, exact=False, cubes=cubes)
    assert set(fast.failures.tolist()) == set(exact.failures.tolist())
    s = system.sensitive & hidden & ~np.isnan(fast.lower)
    tol = 1e-6 * np.maximum(1.0, system.value[s])
    assert (fast.lower[s] >= exact.lower[s] - tol).all()
    assert (fast.upper[s] <= exact.upper[s] + tol).all()
    # protected: secondary's perturbations as hints settle every cell, and no LP is needed
    result = protect(system, cubes.tables)
    assert result.audit.passed and result.audit.lps == 0


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.lists(item, min_size=3, max_size=40))
def test_wrong_witnesses_count_for_nothing(items: list[tuple[int, int, int, int, int]]) -> None:
    system, cubes = _small_system(items)
    hidden = system.sensitive.copy()
    x = system.value
    targets = np.flatnonzero(hidden & (system.protection > 0))
    plain = audit(system, hidden, exact=False, cubes=cubes)
    bogus = []
    ones = np.ones(system.size)
    for g in targets.tolist():
        big = np.array([10.0 * (x[g] + system.protection[g] + 1.0)])
        bogus.append((np.array([g]), big))  # moves one cell alone: breaks its relations
        # hypercubes through published cells keep every relation, but the attacker sees them
        for cert in cubes.search(g, hidden, ones, 1.0, 1.0, hidden_only=False):
            if not hidden[cert.cells].all() and cubes.verify(cert):
                bogus.append((cert.cells, cert.signs * 1e6))
    lower = np.full(system.size, np.inf)
    upper = np.full(system.size, -np.inf)
    _apply_witnesses(system, hidden, cubes, bogus, lower, upper)
    lonely = [g for g in targets.tolist() if not any(g in m for m in system.relations)]
    moved = np.isfinite(upper[targets]) & ~np.isin(targets, lonely)
    assert not moved.any()
    hinted = audit(system, hidden, exact=False, cubes=cubes, witnesses=bogus)
    assert set(hinted.failures.tolist()) == set(plain.failures.tolist())
