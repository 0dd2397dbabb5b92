"""The audit can fail, and an attacker holding every published table recovers nothing."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from dataflow.aggregation.audit import _apply_witnesses, audit
from dataflow.aggregation.cube import cube_sql
from dataflow.aggregation.factstore import FactStore
from dataflow.aggregation.hypercube import Hypercubes, TableIndex
from dataflow.aggregation.levels import TOTAL, register_references
from dataflow.aggregation.linked import CellSystem, build_system
from dataflow.aggregation.release import AuditFailed, ReleaseSummary, build_release
from dataflow.aggregation.release_audit import audit_release
from dataflow.aggregation.secondary import protect
from dataflow.aggregation.specs import TableSpec
from dataflow.aggregation.suppression import primary

from .test_secondary import SPEC_A, SPEC_B, _facts, item

REPO = Path(__file__).resolve().parents[2]


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


def _attacker_bounds(
    release: Path, specs: list[TableSpec], targets: list[tuple[str, tuple[str, ...]]]
) -> tuple[dict[tuple[str, tuple[str, ...]], tuple[float, float]], int]:
    """Play the partner: only the public files; every relation of every level; LP bounds.

    Written apart from ``audit.py`` on purpose (scipy ``linprog``, identities by table and code,
    cross-table links by the division × month margins both tables publish).
    """
    var: dict[tuple[str, tuple[str, ...]], int] = {}
    known: dict[tuple[str, tuple[str, ...]], float] = {}
    rows: list[list[tuple[tuple[str, tuple[str, ...]], float]]] = []
    for spec in specs:
        df = pl.read_parquet(release / "tables" / f"{spec.id}.parquet")
        levels = spec.levels
        recs = {
            tuple(r[: len(levels)]): r[len(levels)]
            for r in df.select([*levels, "item_value"]).iter_rows()
        }
        for key, v in recs.items():
            cell = (spec.id, key)
            if v is None:
                var.setdefault(cell, len(var))
            else:
                known[cell] = float(v)
        for h in spec.hierarchies:
            pos = [levels.index(lv) for lv in h.levels]
            for d, p in enumerate(pos):
                groups: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
                for key in recs:
                    if key[p] != TOTAL and all(key[q] == TOTAL for q in pos[d + 1 :]):
                        groups.setdefault((*key[:p], TOTAL, *key[p + 1 :]), []).append(key)
                for parent, kids in groups.items():
                    rows.append([((spec.id, parent), 1.0)] + [((spec.id, k), -1.0) for k in kids])
    # the same division × month cell in both tables is one number
    a = next(s for s in specs if "model" in s.levels)
    b = next(s for s in specs if "quarter" in s.levels)
    for key in list(var) + list(known):
        if key[0] != a.id:
            continue
        codes = dict(zip(a.levels, key[1], strict=True))
        if codes.get("model", TOTAL) != TOTAL:
            continue
        other = dict.fromkeys(b.levels, TOTAL)
        other.update({lv: codes[lv] for lv in b.levels if lv in codes})
        if codes["month"] != TOTAL:
            other["year"], other["quarter"] = codes["month"][:4], _quarter(codes["month"])
        twin = (b.id, tuple(other[lv] for lv in b.levels))
        if twin in var or twin in known:
            rows.append([(key, 1.0), (twin, -1.0)])
    scale = 1e-3  # thousands of BRL keep the LP well conditioned
    ri, ci, vals, b_eq = [], [], [], []
    for row in rows:
        coefs: dict[int, float] = {}
        rhs = 0.0
        for cell, s in row:
            if cell in var:
                coefs[var[cell]] = coefs.get(var[cell], 0.0) + s
            else:
                rhs -= s * known[cell] * scale
        coefs = {k: v for k, v in coefs.items() if v}
        if coefs:
            for k, v in coefs.items():
                ri.append(len(b_eq))
                ci.append(k)
                vals.append(v)
            b_eq.append(rhs)
    a_eq = sp.csr_matrix((vals, (ri, ci)), shape=(len(b_eq), len(var)))
    out = {}
    for cell in targets:
        i = var[cell]
        bounds = []
        for sense in (1.0, -1.0):
            c = np.zeros(len(var))
            c[i] = sense
            res = linprog(c, A_eq=a_eq, b_eq=np.array(b_eq), bounds=(0, None), method="highs")
            assert res.status in (0, 3), res.message  # 3: unbounded above
            bounds.append(sense * res.fun / scale if res.status == 0 else np.inf)
        out[cell] = (bounds[0], bounds[1])
    return out, len(rows)


def _quarter(month: str) -> str:
    return f"{month[:4]}-Q{(int(month[5:]) - 1) // 3 + 1}"


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
    bounds, n_rel = _attacker_bounds(linked_release.path, linked_specs, sorted(sensitive))
    assert n_rel > 0 and bounds
    checked = 0
    for key, r in sensitive.items():
        lo, hi = bounds[key]
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
