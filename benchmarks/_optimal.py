"""Exact optimal secondary suppression (mixed-integer, HiGHS via scipy ``milp``) for small systems.

Fischetti–Salazar's model with one perturbation per sensitive cell and direction, written out
in full (no cut generation), so only for tables of a few dozen cells: binary ``z_c`` (cell
suppressed), and for every sensitive ``s`` and direction a perturbation ``y`` with ``A·y = 0``,
``y_s = ±protection`` and ``-x_c·z_c ≤ y_c ≤ M·z_c``. Minimizes ``Σ w_c·z_c``: the same weights
as the heuristic, so the two costs compare directly.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from dataflow.aggregation.disclosure.linked import CellSystem

__all__ = ["optimal_pattern"]


def optimal_pattern(
    system: CellSystem, weights: npt.NDArray[np.float64], *, time_limit: float = 60.0
) -> npt.NDArray[np.bool_] | None:
    n = system.size
    x = system.value
    sens = np.flatnonzero(system.sensitive & (system.protection > 0))
    moves = []
    for s in sens.tolist():
        p = float(system.protection[s]) * (1 + 1e-4)
        moves.append((s, p))
        down = min(p, float(x[s]))
        if down > 0:
            moves.append((s, -down))
    k = len(moves)
    n_var = n + k * n  # z, then one y block per move
    big = float(x.sum()) * 2 + 1.0
    rel_rows, rel_cols, rel_vals = [], [], []
    for r, members in enumerate(system.relations):
        coef: dict[int, float] = {}
        for i, g in enumerate(members.tolist()):
            coef[g] = coef.get(g, 0.0) + (1.0 if i == 0 else -1.0)
        for g, v in coef.items():
            if v:
                rel_rows.append(r)
                rel_cols.append(g)
                rel_vals.append(v)
    a_rel = sp.csr_matrix((rel_vals, (rel_rows, rel_cols)), shape=(len(system.relations), n))
    blocks = []
    lo_list, hi_list = [], []
    for j, (s, amount) in enumerate(moves):
        off = n + j * n
        # A·y = 0
        blocks.append(
            sp.hstack(
                [
                    sp.csr_matrix((a_rel.shape[0], off)),
                    a_rel,
                    sp.csr_matrix((a_rel.shape[0], n_var - off - n)),
                ]
            )
        )
        lo_list.append(np.zeros(a_rel.shape[0]))
        hi_list.append(np.zeros(a_rel.shape[0]))
        # y_c - M z_c ≤ 0 and y_c + x_c z_c ≥ 0
        eye = sp.identity(n, format="csr")
        up = sp.hstack(
            [-big * eye, sp.csr_matrix((n, off - n)), eye, sp.csr_matrix((n, n_var - off - n))]
        )
        dn = sp.hstack(
            [sp.diags(x), sp.csr_matrix((n, off - n)), eye, sp.csr_matrix((n, n_var - off - n))]
        )
        blocks += [up, dn]
        lo_list += [np.full(n, -np.inf), np.zeros(n)]
        hi_list += [np.zeros(n), np.full(n, np.inf)]
        # y_s = amount
        row = sp.csr_matrix(([1.0], ([0], [off + s])), shape=(1, n_var))
        blocks.append(row)
        lo_list.append(np.array([amount]))
        hi_list.append(np.array([amount]))
    cost = np.concatenate([weights, np.zeros(k * n)])
    lb = np.concatenate([system.sensitive.astype(float), np.full(k * n, -np.inf)])
    ub = np.concatenate([np.ones(n), np.full(k * n, np.inf)])
    integrality = np.concatenate([np.ones(n), np.zeros(k * n)])
    if not moves:
        return system.sensitive.copy()
    res = milp(
        cost,
        constraints=LinearConstraint(
            sp.vstack(blocks), np.concatenate(lo_list), np.concatenate(hi_list)
        ),
        bounds=Bounds(lb, ub),
        integrality=integrality,
        options={"time_limit": time_limit, "disp": False},
    )
    if res.x is None:
        return None
    return np.asarray(res.x[:n] > 0.5)
