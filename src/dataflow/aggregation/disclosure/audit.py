"""The disclosure audit: what an attacker can derive from everything a release publishes.

For every suppressed cell, linear programming (scipy, HiGHS) gives the smallest and largest value
consistent with the published cells, every additivity relation of every table (all hierarchy
levels, linked tables included) and non-negativity. A sensitive cell passes when that interval
covers its protection interval ``[x - lower, x + upper]``.

The system splits into independent sub-systems — connected components of suppressed cells
through the relations — and each component is solved on its own, which keeps the LPs small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from dataflow.aggregation.disclosure.boxes import Boxes, bulk_perturbation, cheapest_perturbation
from dataflow.aggregation.disclosure.hypercube import Hypercubes
from dataflow.aggregation.disclosure.linked import CellSystem
from dataflow.aggregation.disclosure.lp import LpModel

__all__ = ["AuditResult", "Component", "audit", "components"]

_REL_TOL = 1e-6  # relative slack for the solver's tolerances
_BOXES = (4, 12, -4)  # box sizes tried per open cell before its component LP (negative: linked)
_RESIDUAL = 1e-9  # a box witness may miss a relation by this much, relative to its largest move


@dataclass(frozen=True, slots=True)
class Component:
    cells: npt.NDArray[np.int64]  # global ids of the suppressed cells
    rows: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], float]]  # (cols, coefs, rhs)


@dataclass(frozen=True, slots=True)
class AuditResult:
    lower: npt.NDArray[np.float64]  # attacker's bounds per global cell (NaN where published)
    upper: npt.NDArray[np.float64]
    failures: npt.NDArray[np.int64]  # sensitive cells whose interval is too narrow
    components: int  # independent sub-systems solved by LP
    largest_component: int
    lps: int
    certified: int = 0  # sensitive cells settled by a verified hypercube certificate

    @property
    def passed(self) -> bool:
        return len(self.failures) == 0


def _find(parent: list[int], a: int) -> int:
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


def components(system: CellSystem, suppressed: npt.NDArray[np.bool_]) -> list[Component]:
    """Independent sub-systems: suppressed cells joined when they share a relation."""
    ids = np.flatnonzero(suppressed)
    local = {int(g): i for i, g in enumerate(ids)}
    parent = list(range(len(ids)))
    rel_rows: list[tuple[list[int], list[float], float]] = []
    x = system.value
    for members in system.relations:
        signs = np.full(len(members), -1.0)
        signs[0] = 1.0
        unknown = suppressed[members]
        if not unknown.any():
            continue
        cols: dict[int, float] = {}
        for g, s in zip(members[unknown].tolist(), signs[unknown].tolist(), strict=True):
            cols[local[g]] = cols.get(local[g], 0.0) + s
        cols = {c: v for c, v in cols.items() if v != 0.0}
        if not cols:
            continue
        # Σ unknown s·x = -Σ published s·x; the true values satisfy it exactly.
        rhs = float(np.dot(signs[unknown], x[members[unknown]]))
        keys = list(cols)
        root = _find(parent, keys[0])
        for c in keys[1:]:
            parent[_find(parent, c)] = root
        rel_rows.append((keys, [cols[c] for c in keys], rhs))
    groups: dict[int, list[int]] = {}
    for i in range(len(ids)):
        groups.setdefault(_find(parent, i), []).append(i)
    comp_rows: dict[int, list[tuple[list[int], list[float], float]]] = {}
    for row in rel_rows:
        comp_rows.setdefault(_find(parent, row[0][0]), []).append(row)
    out = []
    for root, members_local in sorted(groups.items(), key=lambda kv: kv[1][0]):
        pos = {c: i for i, c in enumerate(members_local)}
        rows = [
            (np.array([pos[c] for c in cols], np.int64), np.array(coefs), rhs)
            for cols, coefs, rhs in comp_rows.get(root, [])
        ]
        out.append(Component(cells=ids[members_local], rows=rows))
    return out


def _bounds(
    comp: Component,
    x: npt.NDArray[np.float64],
    targets: npt.NDArray[np.int64],
    need_lo: npt.NDArray[np.float64] | None,
    need_hi: npt.NDArray[np.float64] | None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], int]:
    """Attacker's min and max per target (local indices).

    With ``need_lo``/``need_hi`` (per local cell) the answer is only as exact as the pass/fail
    decision needs: every LP optimum is a point the attacker cannot exclude, so a target whose
    value there already lies beyond its protection level is settled without an LP of its own,
    and its bound is the witness value (an inner bound of the true interval).
    """
    n = len(comp.cells)
    lo = np.zeros(len(targets))
    hi = np.full(len(targets), np.inf)
    if not comp.rows:
        return lo, hi, 0
    scale = max(1.0, float(x[comp.cells].max()))
    data = np.concatenate([c for _, c, _ in comp.rows])
    cols = np.concatenate([k for k, _, _ in comp.rows])
    rows = np.concatenate([np.full(len(k), r) for r, (k, _, _) in enumerate(comp.rows)])
    a_eq = sp.csr_matrix((data, (rows, cols)), shape=(len(comp.rows), n))
    b_eq = np.array([rhs for _, _, rhs in comp.rows]) / scale
    model = LpModel(a_eq, b_eq, b_eq, np.zeros(n), np.full(n, np.inf))
    lps = 0
    targets = np.asarray(targets, np.int64)
    one = np.ones(1)
    seen_lo = np.full(n, np.inf)  # smallest / largest value each cell took in any optimum
    seen_hi = np.full(n, -np.inf)
    if need_lo is not None and need_hi is not None:
        # Two witness LPs settle most cells at once: push every target down, then up. The up
        # push runs on a boxed copy (a point of a smaller set is still a point the attacker
        # cannot exclude) so that it has an optimum.
        gap = np.maximum(need_hi[targets] - x[comp.cells][targets], 0.01 * x[comp.cells][targets])
        weight = scale / np.maximum(gap, 1.0)
        cap = np.full(n, np.inf)
        cap[targets] = 2.0 * need_hi[targets] / scale + 1.0
        boxed = LpModel(a_eq, b_eq, b_eq, np.zeros(n), cap)
        for m, sense in ((model, 1.0), (boxed, -1.0)):
            m.set_cost(targets, sense * weight)
            status, _, sol = m.solve()
            lps += 1
            if sol is not None:
                np.minimum(seen_lo, sol, out=seen_lo)
                np.maximum(seen_hi, sol, out=seen_hi)
            m.set_cost(targets, 0.0 * weight)
    for j, t in enumerate(targets.tolist()):
        col = np.array([t])
        for sense in (1.0, -1.0):
            if need_lo is not None and need_hi is not None:
                if sense > 0 and seen_lo[t] * scale <= need_lo[t]:
                    lo[j] = seen_lo[t] * scale
                    continue
                if sense < 0 and seen_hi[t] * scale >= need_hi[t]:
                    hi[j] = seen_hi[t] * scale
                    continue
            model.set_cost(col, sense * one)
            status, obj, sol = model.solve()
            lps += 1
            if sol is not None:
                np.minimum(seen_lo, sol, out=seen_lo)
                np.maximum(seen_hi, sol, out=seen_hi)
            if status == "unbounded":  # the attacker learns no upper bound
                continue
            if status != "optimal":
                raise RuntimeError(f"audit LP {status} on a system the true values satisfy")
            if sense > 0:
                lo[j] = max(0.0, obj * scale)
            else:
                hi[j] = -obj * scale
        model.set_cost(col, 0 * one)
    return lo, hi, lps


Witness = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]  # cells, perturbation


def _moves(
    x: npt.NDArray[np.float64], cells: npt.NDArray[np.int64], y: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """How far ``x + t·y`` (``t`` in ``[-β, α]``, the widest range keeping values
    non-negative) moves each of ``cells`` up and down."""
    xc = x[cells]
    neg, pos = y < 0, y > 0
    alpha = min(float(np.min(xc[neg] / -y[neg])) if neg.any() else np.inf, 1e12)
    beta = min(float(np.min(xc[pos] / y[pos])) if pos.any() else np.inf, 1e12)
    return np.maximum(alpha * y, -beta * y), np.minimum(np.maximum(-alpha * y, beta * y), xc)


def _apply_witnesses(
    system: CellSystem,
    suppressed: npt.NDArray[np.bool_],
    cubes: Hypercubes,
    witnesses: list[Witness],
    lower: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
) -> None:
    """Widen ``lower``/``upper`` in place by every witness that checks out.

    A witness is a perturbation ``y`` of hidden cells. All of them are checked at once against
    every relation of the release (``A·y = 0`` up to ``_RESIDUAL`` of its largest entry; a
    hypercube's ±1 entries leave no residual at all); every cell must be hidden and every value
    non-negative. Then ``x + t·y`` agrees with everything published for ``t`` in ``[-β, α]``
    (values stay non-negative): a point the attacker cannot exclude, for every cell it moves.
    """
    if not witnesses:
        return
    x = system.value
    cells = np.concatenate([c for c, _ in witnesses])
    data = np.concatenate([y for _, y in witnesses])
    owner = np.repeat(np.arange(len(witnesses)), [len(c) for c, _ in witnesses])
    y_mat = sp.csc_matrix((data, (cells, owner)), shape=(system.size, len(witnesses)))
    r = (cubes.matrix @ y_mat).tocsc()
    r.data = np.abs(r.data)
    residual = np.asarray(r.max(axis=0).todense()).ravel() if r.nnz else np.zeros(len(witnesses))
    largest = np.zeros(len(witnesses))
    np.maximum.at(largest, owner, np.abs(data))
    ok = residual <= _RESIDUAL * largest
    bad = ~suppressed[cells] | (x[cells] < 0)
    ok[np.unique(owner[bad])] = False
    for w in np.flatnonzero(ok).tolist():
        c, y = witnesses[w]
        up, down = _moves(x, c, y)
        upper[c] = np.maximum(upper[c], x[c] + up)
        lower[c] = np.minimum(lower[c], x[c] - down)


def _certify(
    system: CellSystem,
    suppressed: npt.NDArray[np.bool_],
    cubes: Hypercubes,
    targets: npt.NDArray[np.int64],
    need_lo: npt.NDArray[np.float64],
    need_hi: npt.NDArray[np.float64],
    tol: npt.NDArray[np.float64],
    lower: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
) -> None:
    """Hypercubes of hidden cells (``hypercube.py``) for the ``targets`` still open; widens
    ``lower``/``upper`` in place by those that check out (``_apply_witnesses``).

    A hypercube found for one cell often moves other sensitive corners far enough too: the
    search skips cells so settled (tentatively — only verified certificates count in the end).
    """
    x = system.value
    hi, lo = upper.copy(), lower.copy()
    found_all: list[Witness] = []
    zero = np.zeros(system.size)
    for g in targets.tolist():
        if hi[g] >= need_hi[g] - tol[g] and lo[g] <= need_lo[g] + tol[g]:
            continue
        up = max(0.0, float(need_hi[g] - x[g] - tol[g]))
        down = max(0.0, float(x[g] - need_lo[g] - tol[g]))
        found = cubes.search(g, suppressed, zero, up, down, hidden_only=True)
        if len(found) != 1:  # not both ways by one hypercube: look wider before any LP
            found = cubes.search(g, suppressed, zero, up, down, hidden_only=True, wide=True)
        for cert in found:
            found_all.append((cert.cells, cert.signs))
            u, d = _moves(x, cert.cells, cert.signs)
            hi[cert.cells] = np.maximum(hi[cert.cells], x[cert.cells] + u)
            lo[cert.cells] = np.minimum(lo[cert.cells], x[cert.cells] - d)
    _apply_witnesses(system, suppressed, cubes, found_all, lower, upper)


def _box_certify(
    system: CellSystem,
    suppressed: npt.NDArray[np.bool_],
    cubes: Hypercubes,
    targets: npt.NDArray[np.int64],
    need_lo: npt.NDArray[np.float64],
    need_hi: npt.NDArray[np.float64],
    tol: npt.NDArray[np.float64],
    lower: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
) -> int:
    """Witnesses from small LPs for the cells no hypercube settles; returns the LPs solved.

    For an open cell and direction, the cheapest perturbation of *hidden* cells inside a box
    around it (``boxes.py``) that moves it past its protection level: zero outside the box, so
    the box's columns of the relation matrix are all the relations it can touch. Each solution
    is checked against every relation of the release (``A·y ≈ 0``, relative ``_RESIDUAL``) and
    scaled so that no value goes negative; then ``x + t·y`` is a point the attacker cannot
    exclude, and every cell it moves far enough (either sign) gets that bound — ``lower`` and
    ``upper`` are widened in place.
    """
    x = system.value
    boxes = Boxes(cubes)
    lps = 0

    def rank(c: npt.NDArray[np.int64]) -> tuple[npt.NDArray[Any], ...]:
        return (~suppressed[c], -x[c])  # hidden first, then the largest

    order = sorted(targets.tolist(), key=lambda g: (-system.protection[g], system.keys[g]))
    for g in order:
        for sign in (1.0, -1.0):
            if sign > 0 and upper[g] >= need_hi[g] - tol[g]:
                continue
            if sign < 0 and lower[g] <= need_lo[g] + tol[g]:
                continue
            amount = float(need_hi[g] - x[g]) if sign > 0 else -float(x[g] - need_lo[g])
            for k in _BOXES:
                if k < 0:
                    box = boxes.linked_box(g, -k, rank, cubes.shared)
                else:
                    box = boxes.box(g, k, rank)
                cells = np.array(sorted(c for c in box if suppressed[c]), np.int64)
                found = cheapest_perturbation(
                    system, cubes.matrix, cells, g, amount, np.ones(len(cells))
                )
                lps += 1
                if found is not None:
                    _apply_witnesses(system, suppressed, cubes, [found], lower, upper)
                    break
    return lps


def audit(
    system: CellSystem,
    suppressed: npt.NDArray[np.bool_],
    *,
    all_cells: bool = True,
    exact: bool = True,
    cubes: Hypercubes | None = None,
    witnesses: list[Witness] | None = None,
    bulk: bool = False,
) -> AuditResult:
    """Bounds for suppressed cells (only the sensitive ones unless ``all_cells``) and failures.

    ``exact=False`` settles a cell as soon as some attacker-feasible point shows it protected
    (same verdict, far fewer LPs); its bounds are then inner bounds (witness values). With
    ``cubes`` as well, witnesses settle most sensitive cells first — ``witnesses`` given by the
    caller (e.g. the perturbations secondary suppression found), then hypercubes of hidden
    cells, then box LPs — each checked here against every relation of the release, and LPs on
    whole components run only for the rest; only sensitive cells get bounds (``all_cells`` is
    ignored). How a witness was found does not matter: only checked witnesses count. ``bulk``:
    after the hypercubes, one LP over every hidden cell moves all open cells up, one down
    (for cells beyond small boxes, such as revisions: one witness for them all).
    """
    x = system.value
    lower = np.full(system.size, np.nan)
    upper = np.full(system.size, np.nan)
    exposed = system.sensitive & ~suppressed
    need_lo = x - np.minimum(system.protection, x)
    need_hi = x + system.protection
    tol = _REL_TOL * np.maximum(1.0, x)
    settled = np.zeros(system.size, np.bool_)
    box_lps = 0
    if cubes is not None and not exact:
        targets = np.flatnonzero(system.sensitive & suppressed)
        lo_c = np.full(system.size, np.inf)
        hi_c = np.full(system.size, -np.inf)
        free = targets[system.protection[targets] <= 0]  # settled by the true value
        lo_c[free] = hi_c[free] = x[free]
        _apply_witnesses(system, suppressed, cubes, witnesses or [], lo_c, hi_c)

        def still_open() -> npt.NDArray[np.int64]:
            done = (hi_c >= need_hi - tol) & (lo_c <= need_lo + tol)
            return np.flatnonzero(system.sensitive & suppressed & ~done)

        _certify(system, suppressed, cubes, still_open(), need_lo, need_hi, tol, lo_c, hi_c)
        if bulk:
            for sign in (1.0, -1.0):
                open_ = still_open()
                reach = need_hi[open_] - x[open_] if sign > 0 else x[open_] - need_lo[open_]
                open_, reach = open_[reach > 0], reach[reach > 0]
                if len(open_):
                    found = bulk_perturbation(
                        system, cubes.matrix, open_, sign * reach, np.ones(system.size), ~suppressed
                    )
                    box_lps += 1
                    if found is not None:
                        _apply_witnesses(system, suppressed, cubes, [found], lo_c, hi_c)
        targets = still_open()
        box_lps += _box_certify(
            system, suppressed, cubes, targets, need_lo, need_hi, tol, lo_c, hi_c
        )
        settled = (hi_c >= need_hi - tol) & (lo_c <= need_lo + tol) & system.sensitive & suppressed
        lower[settled], upper[settled] = lo_c[settled], hi_c[settled]
        all_cells = False
    open_cells = suppressed & ~settled & (system.sensitive | all_cells)
    comps = components(system, suppressed) if open_cells.any() else []
    lps = box_lps
    solved = []
    for comp in comps:
        targets = np.flatnonzero(open_cells[comp.cells])
        if not len(targets):
            continue
        solved.append(comp)
        c = comp.cells
        shortcut = (need_lo[c] + tol[c], need_hi[c] - tol[c]) if not exact else (None, None)
        lo, hi, n = _bounds(comp, x, targets, *shortcut)
        lps += n
        lower[comp.cells[targets]] = lo
        upper[comp.cells[targets]] = hi
    with np.errstate(invalid="ignore"):
        weak = system.sensitive & suppressed & ((lower > need_lo + tol) | (upper < need_hi - tol))
        weak |= system.sensitive & suppressed & (np.isnan(lower) | np.isnan(upper))
    failures = np.flatnonzero(weak | exposed)
    return AuditResult(
        lower=lower,
        upper=upper,
        failures=failures,
        components=len(solved),
        largest_component=max((len(c.cells) for c in solved), default=0),
        lps=lps,
        certified=int(settled.sum()),
    )
