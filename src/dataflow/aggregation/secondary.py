"""Secondary suppression: hide enough further cells that no sensitive cell can be recovered.

For each sensitive cell ``s`` (largest protection first, then by identity: deterministic) and each
direction, a small LP looks for a *perturbation* ``y`` of the table that keeps every relation of
every linked table (``A·y = 0``), keeps cells non-negative (``x + y ≥ 0``) and moves ``s`` by its
protection level, at least cost ``Σ w_c·|y_c|``. Every cell the perturbation touches is then
suppressed: ``x + y`` is a table consistent with everything still published, so no attacker can
exclude it — ``s`` is protected by construction. Already-suppressed cells cost (almost) nothing,
and cells suppressed in the previous release cost less, which keeps patterns stable over time.

The LP runs on a *box* around ``s`` — per hierarchy, the cell's own code, its ancestors, a few
siblings and a few descendants (the hypercube method's search space) — in every table that holds
``s``; if the box cannot protect ``s``, it widens, up to the whole release. The independent LP
audit (``audit.py``) then checks the result, and any cell it flags goes round again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from dataflow.aggregation.audit import AuditResult, audit
from dataflow.aggregation.hypercube import Hypercubes, TableIndex, parent_node
from dataflow.aggregation.levels import TOTAL
from dataflow.aggregation.linked import CellSystem
from dataflow.aggregation.lp import LpModel

__all__ = ["ProtectionError", "SecondaryResult", "TableIndex", "cell_costs", "protect"]

_SUPPRESSED_COST = 1e-4
_MARGIN = 1.0 + 1e-4  # aim a little past the protection level, so solver tolerances cannot bite
_CREDIT = 1.0 + 2e-5
_WIDEN = (1, 3, -1)  # box sizes (× ``box``; negative: linked) tried before the whole release
_AUDIT_TOL = 1e-6  # audit.py's relative slack


class ProtectionError(RuntimeError):
    """A sensitive cell could not be protected even by suppressing the whole release."""

    def __init__(self, key: str) -> None:
        super().__init__(f"cannot protect cell {key}")
        self.key = key


def cell_costs(
    value: npt.NDArray[np.float64], previous: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.float64]:
    """Information-loss weight: one per cell plus the log of its value (few cells, small ones);
    half price for a cell suppressed in the previous release (stable patterns)."""
    w = 1.0 + np.log1p(np.maximum(value, 0.0))
    if previous is not None:
        w = np.where(previous, 0.5 * w, w)
    return w


@dataclass(frozen=True, slots=True)
class SecondaryResult:
    suppressed: npt.NDArray[np.bool_]
    audit: AuditResult
    lps: int
    rounds: int


class _Boxes:
    def __init__(self, system: CellSystem, tables: Sequence[TableIndex]) -> None:
        self.system = system
        self.tables = tables
        self.where: dict[int, list[tuple[int, int]]] = {}
        for ti, t in enumerate(tables):
            for row, g in enumerate(t.gids.tolist()):
                self.where.setdefault(g, []).append((ti, row))

    def linked_box(
        self,
        g: int,
        k: int,
        rank: Callable[[int], tuple[float, ...]],
        shared: npt.NDArray[np.bool_],
    ) -> set[int]:
        """The box, plus a small box around each of its cells that other tables publish too:
        a linked margin can then move, with its other table compensating."""
        out = self.box(g, k, rank)
        for c in [c for c in out if shared[c]]:
            out |= self.box(c, 2, rank)
        return out

    def box(self, g: int, k: int, rank: Callable[[int], tuple[float, ...]]) -> set[int]:
        out: set[int] = set()
        for ti, row in self.where.get(g, []):
            out |= self._table_box(self.tables[ti], row, k, rank)
        return out

    def _table_box(
        self, t: TableIndex, row: int, k: int, rank: Callable[[int], tuple[float, ...]]
    ) -> set[int]:
        s = t.tuples[row]
        dims: list[list[tuple[str, ...]]] = []
        for j, (a, b) in enumerate(t.spans):
            node = s[a:b]

            def cell_rank(n: tuple[str, ...], a: int = a, b: int = b) -> tuple[float, ...]:
                r = t.index.get((*s[:a], *n, *s[b:]))
                return rank(int(t.gids[r])) if r is not None else (math.inf,)

            chosen = [node]
            up = parent_node(node)
            while up is not None:
                chosen.append(up)
                parent_kids = t.children[j].get(up, [])
                if up == parent_node(node):
                    sibs = sorted((n for n in parent_kids if n != node), key=cell_rank)
                    chosen.extend(sibs[:k])
                up = parent_node(up)
            frontier = [n for n in chosen if n == node or parent_node(n) == parent_node(node)]
            while frontier:
                nxt = []
                for n in frontier:
                    kids = sorted(t.children[j].get(n, []), key=cell_rank)[: max(2, k // 2)]
                    nxt.extend(kids)
                chosen.extend(nxt)
                frontier = nxt
            dims.append(list(dict.fromkeys(chosen)))
        out = set()
        for combo in _product(dims):
            r = t.index.get(combo)
            if r is not None:
                out.add(int(t.gids[r]))
        return out


def _product(dims: list[list[tuple[str, ...]]]) -> list[tuple[str, ...]]:
    acc: list[tuple[str, ...]] = [()]
    for d in dims:
        acc = [(*a, *n) for a in acc for n in d]
    return acc


def _solve(
    system: CellSystem,
    matrix: sp.csc_matrix,
    cells: npt.NDArray[np.int64],
    s: int,
    amount: float,
    weights: npt.NDArray[np.float64],
    frozen: npt.NDArray[np.bool_] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
    """Cells and values of the cheapest perturbation inside ``cells`` moving ``s`` by ``amount``
    (``frozen`` cells, per position in ``cells``, may not move)."""
    n = len(cells)
    sub = matrix[:, cells].tocsr()
    sub = sub[np.flatnonzero(np.diff(sub.indptr))]  # relations touching the box
    r = sub.shape[0]
    si = int(np.searchsorted(cells, s))
    scale = abs(amount)
    x = system.value[cells] / scale
    cost = np.concatenate([weights, weights])
    cost[si] = cost[n + si] = 0.0
    upper = np.concatenate([np.full(n, np.inf), x])
    if frozen is not None:
        upper[np.concatenate([frozen, frozen])] = 0.0
    lower = np.zeros(2 * n)
    if amount > 0:
        lower[si] = upper[si] = _MARGIN
        upper[n + si] = 0.0
    else:
        lower[n + si] = upper[n + si] = min(_MARGIN, x[si])
        upper[si] = 0.0
    a_eq = sp.hstack([sub, -sub], format="csr")
    status, _, sol = LpModel(a_eq, np.zeros(r), np.zeros(r), lower, upper, cost).solve()
    if status != "optimal" or sol is None:
        return None
    y = sol[:n] - sol[n:]
    keep = np.abs(y) > 1e-7
    return cells[keep], y[keep] * scale


def protect(
    system: CellSystem,
    tables: Sequence[TableIndex],
    *,
    previous: npt.NDArray[np.bool_] | None = None,
    box: int = 4,
    max_rounds: int = 5,
    progress: Callable[[str], None] | None = None,
) -> SecondaryResult:
    """Primary + secondary pattern that passes the audit (or raise ``ProtectionError``)."""
    suppressed = system.sensitive.copy()
    base = cell_costs(system.value, previous)
    weights_all = np.where(suppressed, _SUPPRESSED_COST, base)
    boxes = _Boxes(system, tables)
    grand = np.zeros(system.size, np.bool_)
    for t in tables:
        r = t.index.get(tuple([TOTAL] * len(t.spec.levels)))
        if r is not None:
            grand[t.gids[r]] = True
    cubes = Hypercubes(system, list(tables))
    lps = 0
    x = system.value
    need_up = system.protection * _MARGIN
    need_down = np.minimum(system.protection * _MARGIN, x)
    # A cell counts as protected by someone else's perturbation a little below the target (LP
    # optima sit exactly on it, up to rounding) but still past what the audit demands.
    credit_up = system.protection * _CREDIT
    credit_down = np.minimum(credit_up, x - 0.25 * _AUDIT_TOL * np.maximum(1.0, x))
    done_up = np.zeros(system.size, np.bool_)
    done_down = np.zeros(system.size, np.bool_)

    def credit(cells: npt.NDArray[np.int64], y: npt.NDArray[np.float64]) -> None:
        """Every cell a found perturbation moves far enough is protected too (both signs:
        ``α·y`` and ``-β·y`` are perturbations as long as values stay non-negative)."""
        xc = x[cells]
        neg, pos = y < 0, y > 0
        alpha = float(np.min(xc[neg] / -y[neg])) if neg.any() else np.inf
        beta = float(np.min(xc[pos] / y[pos])) if pos.any() else np.inf
        for scale, sign in ((alpha, 1.0), (beta, -1.0)):
            move = min(scale, 1e12) * sign * y
            done_up[cells[move >= credit_up[cells]]] = True
            done_down[cells[-move >= credit_down[cells]]] = True

    def hide(cells: npt.NDArray[np.int64], y: npt.NDArray[np.float64]) -> None:
        suppressed[cells] = True
        weights_all[cells] = _SUPPRESSED_COST
        credit(cells, y)

    def try_hypercube(g: int) -> None:
        """The cheapest hypercube that moves ``g`` far enough, if one exists: no LP needed."""
        up = float(need_up[g]) if not done_up[g] else 0.0
        down = float(need_down[g]) if not done_down[g] else 0.0
        if up == 0.0 and down == 0.0:
            return
        for cert in cubes.search(g, suppressed, base, up, down, hidden_only=False):
            if cubes.verify(cert):
                hide(cert.cells, cert.signs)

    def protect_cell(g: int, widen: int) -> None:
        nonlocal lps

        def rank(c: int) -> tuple[float, ...]:
            # free cells first, then those big enough to absorb the move, then the cheapest
            return (0.0 if suppressed[c] else 1.0, float(system.value[c] < need), base[c])

        if widen == 0:
            try_hypercube(g)
        need = float(system.protection[g])
        for amount, done in ((need, done_up), (-min(need, float(x[g])), done_down)):
            if amount == 0.0 or (done[g] and widen == 0):
                continue
            found = None
            for attempt in range(widen, len(_WIDEN) + 1):
                if attempt == len(_WIDEN):
                    cells = np.arange(system.size, dtype=np.int64)
                elif _WIDEN[attempt] < 0:
                    linked = boxes.linked_box(g, -box * _WIDEN[attempt], rank, cubes.shared)
                    cells = np.array(sorted(linked))
                else:
                    cells = np.array(sorted(boxes.box(g, box * _WIDEN[attempt], rank)))
                # Boxes never hide a table's grand total; only the whole release may.
                frozen = None if attempt == len(_WIDEN) else grand[cells] & ~suppressed[cells]
                found = _solve(system, cubes.matrix, cells, g, amount, weights_all[cells], frozen)
                lps += 1
                if found is not None:
                    break
            if found is None:
                raise ProtectionError(system.keys[g])
            hide(*found)

    order = sorted(
        np.flatnonzero(system.sensitive & (system.protection > 0)).tolist(),
        key=lambda g: (-system.protection[g], system.keys[g]),
    )
    for i, g in enumerate(order):
        if progress and i % 200 == 0:
            progress(f"secondary suppression: {i:,}/{len(order):,} sensitive cells")
        protect_cell(g, 0)
    rounds = 1
    result = audit(system, suppressed, all_cells=True, exact=False, cubes=cubes)
    while not result.passed and rounds < max_rounds:
        for g in result.failures.tolist():
            protect_cell(g, min(len(_WIDEN), rounds))
        rounds += 1
        result = audit(system, suppressed, all_cells=True, exact=False, cubes=cubes)
    return SecondaryResult(suppressed=suppressed, audit=result, lps=lps, rounds=rounds)
