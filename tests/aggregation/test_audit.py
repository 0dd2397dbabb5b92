"""The audit can fail, and an attacker holding every published table recovers nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from dataflow.aggregation.factstore import FactStore
from dataflow.aggregation.levels import TOTAL
from dataflow.aggregation.release import AuditFailed, ReleaseSummary, build_release
from dataflow.aggregation.release_audit import audit_release
from dataflow.aggregation.specs import TableSpec

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
