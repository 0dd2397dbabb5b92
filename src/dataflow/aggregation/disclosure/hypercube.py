"""Hypercube certificates: cheap proofs that a hidden cell can move, found without an LP.

Along one hierarchy of a table, a vector ``u`` over its codes that keeps every
``parent = Σ children`` step is ``path(n → leaf) − path(m → leaf')`` for siblings ``n``, ``m``
(each path follows one child per level down to the finest level), or ``path(root → leaf)`` when
``n`` is the margin itself. Every relation of a table is one hierarchy step at fixed codes of the
other hierarchies, so the tensor product ``y = u₁ ⊗ … ⊗ u_k`` keeps all of them as long as every
corner it touches exists: the classic hypercube of secondary suppression, generalised to
hierarchies and margins. If every corner is hidden, ``x + t·y`` agrees with everything published
for ``0 ≤ t ≤ min{x_c : y_c < 0}`` (and ``x − t·y`` for ``t ≤ min{x_c : y_c > 0}``): an attacker
cannot exclude those points, so the cell's interval reaches at least that far both ways.

A corner shared with another table (linked cells) must keep that table's relations too, so every
certificate is checked against the full relation matrix of the release (``verify``) before it
counts. Cells without a certificate fall back to LPs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import scipy.sparse as sp

from dataflow.aggregation.disclosure.linked import CellSystem
from dataflow.aggregation.levels import TOTAL
from dataflow.aggregation.specs import TableSpec

__all__ = ["Certificate", "Hypercubes", "TableIndex", "parent_node", "relation_matrix"]

Node = tuple[str, ...]


def parent_node(node: Node) -> Node | None:
    depth = sum(1 for c in node if c != TOTAL)
    if depth == 0:
        return None
    return (*node[: depth - 1], *([TOTAL] * (len(node) - depth + 1)))


def _ancestors(node: Node) -> list[Node]:
    out = []
    up = parent_node(node)
    while up is not None:
        out.append(up)
        up = parent_node(up)
    return out


@dataclass(slots=True)
class TableIndex:
    """Coordinates of one table's rows, to walk its hierarchies."""

    spec: TableSpec
    tuples: list[tuple[str, ...]]
    index: dict[tuple[str, ...], int]
    gids: npt.NDArray[np.int64]
    spans: list[tuple[int, int]]  # per hierarchy: slice of the level tuple
    children: list[dict[Node, list[Node]]]  # per hierarchy: node → kids

    @classmethod
    def build(cls, spec: TableSpec, cells: pa.Table, gids: npt.NDArray[np.int64]) -> TableIndex:
        cols = [cells[lv].to_pylist() for lv in spec.levels]
        tuples = list(zip(*cols, strict=True))
        spans, start = [], 0
        for h in spec.hierarchies:
            spans.append((start, start + len(h.levels)))
            start += len(h.levels)
        children: list[dict[Node, list[Node]]] = []
        for a, b in spans:
            nodes = {t[a:b] for t in tuples}
            kids: dict[Node, list[Node]] = {}
            for node in sorted(nodes):
                p = parent_node(node)
                if p is not None:
                    kids.setdefault(p, []).append(node)
            children.append(kids)
        return cls(spec, tuples, {t: i for i, t in enumerate(tuples)}, gids, spans, children)


def relation_matrix(system: CellSystem) -> sp.csc_matrix:
    """Every relation as a row ``+parent − Σ children`` over the global cells (CSC)."""
    if not system.relations:
        return sp.csc_matrix((0, system.size))
    rows = np.concatenate([np.full(len(m), r, np.int64) for r, m in enumerate(system.relations)])
    cols = np.concatenate(system.relations)
    data = np.concatenate([np.r_[1.0, -np.ones(len(m) - 1)] for m in system.relations])
    return sp.csc_matrix((data, (rows, cols)), shape=(len(system.relations), system.size))


@dataclass(frozen=True, slots=True)
class Certificate:
    """A perturbation ``y`` (±1 on ``cells``) and how far it moves its cell up and down."""

    cells: npt.NDArray[np.int64]
    signs: npt.NDArray[np.float64]
    up: float  # x_s + up is attacker-feasible
    down: float  # x_s − down is attacker-feasible
    cost: float  # weight of the corners not yet hidden


class Hypercubes:
    """Hypercube search over the tables of one release (all tables holding a cell)."""

    def __init__(self, system: CellSystem, tables: list[TableIndex], *, options: int = 3) -> None:
        self.system = system
        self.tables = tables
        self.options = options
        self.where: dict[int, list[tuple[int, int]]] = {}
        count = np.zeros(system.size, np.int64)
        for ti, t in enumerate(tables):
            np.add.at(count, t.gids, 1)
            for row, g in enumerate(t.gids.tolist()):
                self.where.setdefault(g, []).append((ti, row))
        self.shared = count > 1
        # per table, per hierarchy: (codes of the other hierarchies, parent) → children present
        self.slices: list[list[dict[tuple[tuple[str, ...], Node], tuple[list[Node], Any]]]] = []
        for t in tables:
            per_dim = []
            for a, b in t.spans:
                groups: dict[tuple[tuple[str, ...], Node], tuple[list[Node], list[int]]] = {}
                for tup, g in zip(t.tuples, t.gids.tolist(), strict=True):
                    node = tup[a:b]
                    up = parent_node(node)
                    if up is None:
                        continue
                    nodes, gids = groups.setdefault((tup[:a] + tup[b:], up), ([], []))
                    nodes.append(node)
                    gids.append(g)
                per_dim.append({k: (n, np.array(g, np.int64)) for k, (n, g) in groups.items()})
            self.slices.append(per_dim)
        # per table: node ids per hierarchy, and every row's mixed-radix key (sorted) → gid
        self.node_ids: list[list[dict[Node, int]]] = []
        self.radix: list[list[int]] = []
        self.keys: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []
        for t in tables:
            ids = [
                {n: i for i, n in enumerate(sorted({tup[a:b] for tup in t.tuples}))}
                for a, b in t.spans
            ]
            key = np.zeros(len(t.tuples), np.int64)
            for (a, b), m in zip(t.spans, ids, strict=True):
                key = key * len(m) + np.array([m[tup[a:b]] for tup in t.tuples], np.int64)
            order = np.argsort(key, kind="stable")
            self.node_ids.append(ids)
            self.radix.append([len(m) for m in ids])
            self.keys.append((key[order], t.gids[order]))
        self.matrix = relation_matrix(system)

    def verify(self, cert: Certificate) -> bool:
        """``A·y = 0`` over every relation of the release (linked tables included)."""
        if not self.shared[cert.cells].any():
            return True  # within one table the tensor construction keeps every relation
        r = self.matrix[:, cert.cells] @ cert.signs
        return bool(np.all(np.abs(r) < 1e-9))

    def verify_all(self, certs: list[Certificate]) -> npt.NDArray[np.bool_]:
        """Batch check of many certificates against the full relation matrix (no shortcut)."""
        if not certs:
            return np.zeros(0, np.bool_)
        cols = np.concatenate([np.full(len(c.cells), i) for i, c in enumerate(certs)])
        rows = np.concatenate([c.cells for c in certs])
        data = np.concatenate([c.signs for c in certs])
        y = sp.csc_matrix((data, (rows, cols)), shape=(self.system.size, len(certs)))
        r = (self.matrix @ y).tocsc()
        r.data = np.abs(r.data)
        worst = np.asarray(r.max(axis=0).todense()).ravel() if r.nnz else np.zeros(len(certs))
        return worst < 1e-9

    def search(
        self,
        g: int,
        suppressed: npt.NDArray[np.bool_],
        weight: npt.NDArray[np.float64],
        need_up: float,
        need_down: float,
        *,
        hidden_only: bool,
        wide: bool = False,
    ) -> list[Certificate]:
        """Cheapest certificates for ``g``: one moving it both ways if possible, else the best
        per direction (empty if none). ``hidden_only`` keeps to corners already hidden."""
        best_both: Certificate | None = None
        best_up: Certificate | None = None
        best_down: Certificate | None = None
        if hidden_only:
            # Every corner is hidden (cost 0): the first candidate moving the cell both ways
            # settles it, and candidates come lazily, hidden siblings first.
            for ti, row in self.where.get(g, []):
                for cert in self._hidden(
                    ti, self._options(ti, row, suppressed, need_up, wide), suppressed
                ):
                    ok_up, ok_down = cert.up >= need_up, cert.down >= need_down
                    if ok_up and ok_down:
                        return [cert]
                    if ok_up and best_up is None:
                        best_up = cert
                    if ok_down and best_down is None:
                        best_down = cert
            return [c for c in (best_up, best_down) if c is not None]
        for ti, row in self.where.get(g, []):
            options = self._options(ti, row, suppressed, need_up, wide)
            cand = self._candidates(ti, options, suppressed, weight, hidden_only)
            if cand is None:
                continue
            gid, sign, cost, up, down = cand
            can_up, can_down = up >= need_up, down >= need_down
            for ok, kind in ((can_up & can_down, 0), (can_up, 1), (can_down, 2)):
                if not ok.any():
                    continue
                i = int(np.flatnonzero(ok)[np.argmin(cost[ok])])  # first of the cheapest
                best = (best_both, best_up, best_down)[kind]
                if best is not None and not cost[i] < best.cost:
                    continue
                used = sign[i] != 0
                cert = Certificate(
                    cells=gid[i][used],
                    signs=sign[i][used],
                    up=float(up[i]),
                    down=float(down[i]),
                    cost=float(cost[i]),
                )
                if kind == 0:
                    best_both = cert
                    if cert.cost == 0.0:
                        return [cert]
                elif kind == 1:
                    best_up = cert
                else:
                    best_down = cert
        if best_both is not None and (
            best_up is None or best_down is None or best_both.cost <= best_up.cost + best_down.cost
        ):
            return [best_both]
        return [c for c in (best_up, best_down) if c is not None]

    def _options(
        self, ti: int, row: int, suppressed: npt.NDArray[np.bool_], need: float, wide: bool
    ) -> list[list[list[tuple[Node, float]]]]:
        """Per hierarchy of table ``ti``, the signed paths through cell ``row`` a hypercube
        may combine: own path minus a sibling's (best siblings first), or the margin's path."""
        t = self.tables[ti]
        s = t.tuples[row]
        x = self.system.value

        slices = self.slices[ti]
        others = [s[:a] + s[b:] for a, b in t.spans]

        def best(j: int, parent: Node, skip: Node | None, k: int) -> list[Node]:
            """The ``k`` best children of ``parent`` next to the cell along hierarchy ``j``:
            hidden first, then those big enough to absorb the move, then the largest."""
            entry = slices[j].get((others[j], parent))
            if entry is None:
                return []
            nodes, g = entry
            xs = x[g]
            order = np.lexsort((-xs, xs < need, ~suppressed[g]))
            out = [nodes[i] for i in order[: k + 1].tolist() if nodes[i] != skip]
            return out[:k]

        def descend(j: int, node: Node) -> list[Node]:
            path = [node]
            kids = best(j, node, None, 1)
            while kids:
                path.append(kids[0])
                kids = best(j, kids[0], None, 1)
            return path

        dims: list[list[list[tuple[Node, float]]]] = []
        for j, (a, b) in enumerate(t.spans):
            node = s[a:b]
            own = descend(j, node)
            # Climb while the cell is its parent's only child here (then it equals its parent).
            cur, up = node, parent_node(node)
            sibs: list[Node] = []
            while up is not None:
                sibs = best(j, up, cur, 3 * self.options if wide else self.options)
                if sibs:
                    break
                own.insert(0, up)
                cur, up = up, parent_node(up)
            opts = [[(n, 1.0) for n in own] + [(n, -1.0) for n in descend(j, m)] for m in sibs]
            # The path from the margin down through the cell keeps every step too.
            root = list(reversed(_ancestors(own[0]))) + own
            opts.append([(n, 1.0) for n in root])
            dims.append(opts)
        return dims

    def _hidden(
        self,
        ti: int,
        dims: list[list[list[tuple[Node, float]]]],
        suppressed: npt.NDArray[np.bool_],
    ) -> Iterator[Certificate]:
        """Candidates whose corners all exist and are hidden, lazily, in product order."""
        t = self.tables[ti]
        x = self.system.value
        for combo in itertools.product(*dims):
            if all(all(sg > 0 for _, sg in opt) for opt in combo):
                continue  # it would move the table's grand total
            cells: list[int] = []
            signs: list[float] = []
            up_cap = down_cap = math.inf
            for corner in itertools.product(*combo):
                key: tuple[str, ...] = ()
                sign = 1.0
                for n, sg in corner:
                    key += n
                    sign *= sg
                r = t.index.get(key)
                if r is None or not suppressed[int(t.gids[r])]:
                    break
                c = int(t.gids[r])
                if sign < 0:
                    up_cap = min(up_cap, float(x[c]))
                else:
                    down_cap = min(down_cap, float(x[c]))
                cells.append(c)
                signs.append(sign)
            else:
                yield Certificate(
                    cells=np.array(cells, np.int64),
                    signs=np.array(signs),
                    up=up_cap,
                    down=down_cap,
                    cost=0.0,
                )

    def _candidates(
        self,
        ti: int,
        dims: list[list[list[tuple[Node, float]]]],
        suppressed: npt.NDArray[np.bool_],
        weight: npt.NDArray[np.float64],
        hidden_only: bool,
    ) -> (
        tuple[
            npt.NDArray[np.int64],
            npt.NDArray[np.float64],
            npt.NDArray[np.float64],
            npt.NDArray[np.float64],
            npt.NDArray[np.float64],
        ]
        | None
    ):
        """Every candidate hypercube of ``dims`` (table ``ti``), in one array pass: per
        combination (one option per hierarchy, in product order), its corners' gids and
        signs (0 pads unused corners), cost of the corners not hidden, and how far it moves
        the cell up and down; only valid combinations (every corner exists, hidden if
        ``hidden_only``, not the all-margin one). ``None`` if there are none."""
        x = self.system.value
        ids, radix = self.node_ids[ti], self.radix[ti]
        # an option through a node the table lacks has a missing corner in every combination
        dims = [[o for o in opts if all(n in ids[j] for n, _ in o)] for j, opts in enumerate(dims)]
        if not all(dims):
            return None
        k = len(dims)
        shape = [len(opts) for opts in dims] + [max(len(o) for o in opts) for opts in dims]
        key: Any = np.zeros([1] * (2 * k), np.int64)
        sign: Any = np.ones([1] * (2 * k))
        for j, opts in enumerate(dims):
            codes = np.zeros((len(opts), shape[k + j]), np.int64)
            sg = np.zeros((len(opts), shape[k + j]))
            for i, opt in enumerate(opts):
                codes[i, : len(opt)] = [ids[j][n] for n, _ in opt]
                sg[i, : len(opt)] = [v for _, v in opt]
            axes = [1] * (2 * k)
            axes[j], axes[k + j] = shape[j], shape[k + j]
            key = key * radix[j] + codes.reshape(axes)
            sign = sign * sg.reshape(axes)
        n_combos = int(np.prod(shape[:k]))
        key = np.broadcast_to(key, shape).reshape(n_combos, -1)
        sign = np.broadcast_to(sign, shape).reshape(n_combos, -1)
        keys, key_gids = self.keys[ti]
        pos = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
        used = sign != 0
        gid = np.where(used, key_gids[pos], 0)
        valid = ~(used & (keys[pos] != key)).any(axis=1) & (sign < 0).any(axis=1)
        open_ = used & ~suppressed[gid]
        if hidden_only:
            valid &= ~open_.any(axis=1)
        if not valid.any():
            return None
        gid, sign, open_, used = gid[valid], sign[valid], open_[valid], used[valid]
        xg = x[gid]
        cost = np.where(open_, weight[gid], 0.0).sum(axis=1)
        up = np.where(sign < 0, xg, np.inf).min(axis=1)
        down = np.where(used & (sign > 0), xg, np.inf).min(axis=1)
        return gid, sign, cost, up, down
