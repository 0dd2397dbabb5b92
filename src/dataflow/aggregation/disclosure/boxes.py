"""Boxes around a cell and the cheapest perturbation inside one (one small HiGHS LP).

A *box* around a cell is, per hierarchy of every table that holds the cell, its own code, its
ancestors, a few siblings and a few descendants (the hypercube method's search space). A
perturbation ``y`` supported on a box keeps every relation of the release when the box's own
columns of the relation matrix do (``A[:, box]·y = 0``): cells outside the box do not move.
Secondary suppression uses it to decide what to hide, the audit to prove a hidden cell moves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from dataflow.aggregation.disclosure.hypercube import Hypercubes, Node, parent_node
from dataflow.aggregation.disclosure.linked import CellSystem
from dataflow.aggregation.disclosure.lp import LpModel, LpUnsolved

__all__ = ["MARGIN", "Boxes", "bulk_perturbation", "cheapest_perturbation", "largest_move"]

MARGIN = 1.0 + 1e-4  # aim a little past the protection level, so solver tolerances cannot bite

# Sort keys of cells (given by global id), most significant first; lower ranks first.
Rank = Callable[[npt.NDArray[np.int64]], tuple[npt.NDArray[Any], ...]]


class Boxes:
    """Boxes around cells over the tables of one release (``cubes`` indexes their rows)."""

    def __init__(self, cubes: Hypercubes) -> None:
        self.system = cubes.system
        self.tables = cubes.tables
        self.where = cubes.where
        self.slices = cubes.slices
        # The same table as other releases published it ("id@version", lineage.py): a cell
        # that moves there moves at the same codes here, so a box spans every twin.
        family: dict[str, list[int]] = {}
        for ti, t in enumerate(self.tables):
            family.setdefault(t.spec.id.partition("@")[0], []).append(ti)
        self.twins = [
            [tj for tj in family[t.spec.id.partition("@")[0]] if tj != ti]
            for ti, t in enumerate(self.tables)
        ]

    def linked_box(self, g: int, k: int, rank: Rank, shared: npt.NDArray[np.bool_]) -> set[int]:
        """The box, plus a small box around each of its cells that other tables publish too:
        a linked margin can then move, with its other table compensating."""
        out = self.box(g, k, rank)
        for c in [c for c in out if shared[c]]:
            out |= self.box(c, 2, rank)
        return out

    def box(self, g: int, k: int, rank: Rank) -> set[int]:
        out: set[int] = set()
        for ti, row in self.where.get(g, []):
            out |= self._table_box(ti, row, k, rank)
            for tj in self.twins[ti]:
                twin = self.tables[tj].index.get(self.tables[ti].tuples[row])
                if twin is not None:
                    out |= self._table_box(tj, twin, k, rank)
        return out

    def _ranked(
        self, ti: int, j: int, others: tuple[str, ...], parent: Node, rank: Rank, count: int
    ) -> list[Node]:
        """The first ``count`` children of ``parent`` along hierarchy ``j`` at the other
        hierarchies' codes ``others``: cells present by ``rank``, then absent ones in order."""
        entry = self.slices[ti][j].get((others, parent))
        out: list[Node] = []
        if entry is not None:
            nodes, gids = entry
            keys = rank(gids)
            order = np.lexsort(keys[::-1])[:count]
            out = [nodes[i] for i in order.tolist()]
        if len(out) < count:
            have = set(entry[0]) if entry is not None else set()
            kids = self.tables[ti].children[j].get(parent, [])
            out += [n for n in kids if n not in have][: count - len(out)]
        return out

    def _table_box(self, ti: int, row: int, k: int, rank: Rank) -> set[int]:
        t = self.tables[ti]
        s = t.tuples[row]
        dims: list[list[tuple[str, ...]]] = []
        for j, (a, b) in enumerate(t.spans):
            node = s[a:b]
            others = s[:a] + s[b:]
            chosen = [node]
            up = parent_node(node)
            while up is not None:
                chosen.append(up)
                if up == parent_node(node):
                    sibs = self._ranked(ti, j, others, up, rank, k + 1)
                    chosen.extend([n for n in sibs if n != node][:k])
                up = parent_node(up)
            frontier = [n for n in chosen if n == node or parent_node(n) == parent_node(node)]
            while frontier:
                nxt = []
                for n in frontier:
                    nxt.extend(self._ranked(ti, j, others, n, rank, max(2, k // 2)))
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


def cheapest_perturbation(
    system: CellSystem,
    matrix: sp.csc_matrix,
    cells: npt.NDArray[np.int64],
    s: int,
    amount: float,
    weights: npt.NDArray[np.float64],
    frozen: npt.NDArray[np.bool_] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
    """Cells and values of the cheapest perturbation inside ``cells`` (sorted) moving ``s`` by
    ``amount`` (times ``MARGIN``), keeping ``x + y ≥ 0``; ``frozen`` cells (per position in
    ``cells``) may not move. ``None`` when the box cannot do it."""
    return _perturbation(system, matrix, cells, s, amount, weights, frozen, exact=True)


def largest_move(
    system: CellSystem,
    matrix: sp.csc_matrix,
    cells: npt.NDArray[np.int64],
    s: int,
    amount: float,
    weights: npt.NDArray[np.float64],
    frozen: npt.NDArray[np.bool_] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
    """Like ``cheapest_perturbation`` when ``s`` cannot move by ``amount``: the perturbation
    moving it furthest that way (at most ``amount``), cheapest among those; ``None`` when it
    cannot move at all."""
    return _perturbation(system, matrix, cells, s, amount, weights, frozen, exact=False)


def _perturbation(
    system: CellSystem,
    matrix: sp.csc_matrix,
    cells: npt.NDArray[np.int64],
    s: int,
    amount: float,
    weights: npt.NDArray[np.float64],
    frozen: npt.NDArray[np.bool_] | None,
    *,
    exact: bool,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
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
    moved = si if amount > 0 else n + si
    upper[n + si if amount > 0 else si] = 0.0
    reach = MARGIN if amount > 0 else min(MARGIN, x[si])
    upper[moved] = reach
    if exact:
        lower[moved] = reach
    else:  # the move outweighs every cost: as far as possible first
        cost[moved] = -(1.0 + float(np.sum(weights))) * 1e3
    a_eq = sp.hstack([sub, -sub], format="csr")
    status, _, sol = LpModel(a_eq, np.zeros(r), np.zeros(r), lower, upper, cost).solve()
    if status != "optimal" or sol is None or (not exact and sol[moved] <= 1e-9):
        return None
    y = sol[:n] - sol[n:]
    keep = np.abs(y) > 1e-7
    return cells[keep], y[keep] * scale


def bulk_perturbation(
    system: CellSystem,
    matrix: sp.csc_matrix,
    targets: npt.NDArray[np.int64],
    amounts: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    frozen: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
    """One perturbation of the whole system moving the targets their way — all up or all down
    — each as far as it can up to its amount (times ``MARGIN``), keeping ``x + y ≥ 0`` and
    frozen cells still, then at least cost: many cells protected by one LP. A target that
    cannot move that far (pinned by published cells) does not spoil the others: whoever moved
    far enough is protected, the rest are left to their own LPs. ``None`` if nothing moved."""
    n = system.size
    scale = float(np.max(np.abs(amounts)))
    x = system.value / scale
    cost = np.concatenate([weights, weights])
    upper = np.concatenate([np.full(n, np.inf), x])
    upper[np.concatenate([frozen, frozen])] = 0.0
    need = np.abs(amounts) / scale * MARGIN
    moved = targets if amounts[0] > 0 else n + targets
    upper[n + targets if amounts[0] > 0 else targets] = 0.0
    if amounts[0] < 0:
        need = np.minimum(need, x[targets])
    upper[moved] = need
    # Reaching a target outweighs its compensations: moved all the way, each is worth 10³
    # times the dearest cell (a little less for the smallest, to keep the LP well scaled).
    cost[moved] = -1e3 * (1.0 + float(np.max(weights))) / np.maximum(need, 1e-3)
    r = matrix.shape[0]
    a_eq = sp.hstack([matrix, -matrix], format="csr")
    try:
        status, _, sol = LpModel(
            a_eq, np.zeros(r), np.zeros(r), np.zeros(2 * n), upper, cost
        ).solve()
    except LpUnsolved:  # numerical trouble: the targets fall back to their own LPs
        return None
    if status != "optimal" or sol is None or not (sol[moved] > 1e-9).any():
        return None
    y = sol[:n] - sol[n:]
    keep = np.flatnonzero(np.abs(y) > 1e-7)
    return keep.astype(np.int64), _polish(matrix, keep, y[keep], x[keep]) * scale


def _polish(
    matrix: sp.csc_matrix,
    cells: npt.NDArray[np.int64],
    y: npt.NDArray[np.float64],
    x: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """``y`` corrected by the least change that keeps every relation exactly (to rounding):
    a large LP meets them only to the solver's tolerance, more than a witness may miss by.
    Cells the LP took to zero (``y = -x`` to tolerance) stay exactly there: a correction that
    took them below would shrink how far the perturbation may be scaled."""
    at_zero = y <= -x + 1e-6 * np.maximum(1.0, x)
    y = np.where(at_zero, -x, y)
    sub = matrix[:, cells].tocsr()
    residual = sub @ y
    free = np.flatnonzero(~at_zero)
    if not residual.any() or not len(free):
        return y
    part = sub[:, free]
    delta = spla.lsqr(part, residual, atol=1e-15, btol=1e-15, iter_lim=10 * len(free))[0]
    y[free] -= delta
    return y
