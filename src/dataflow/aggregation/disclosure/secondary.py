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
``s``; if the box cannot protect ``s``, it widens, up to the whole release. The audit
(``audit.py``) then checks the result, and any cell it flags goes round again. It gets every
perturbation found here as a hint, which it checks itself against every relation of the release
(a wrong one counts for nothing); ``release audit`` re-checks a release without them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from dataflow.aggregation.disclosure.audit import AuditResult, audit
from dataflow.aggregation.disclosure.boxes import (
    MARGIN,
    Boxes,
    bulk_perturbation,
    cheapest_perturbation,
    largest_move,
)
from dataflow.aggregation.disclosure.hypercube import Hypercubes, TableIndex
from dataflow.aggregation.disclosure.linked import CellSystem
from dataflow.aggregation.levels import TOTAL

__all__ = ["ProtectionError", "SecondaryResult", "TableIndex", "cell_costs", "protect"]

_SUPPRESSED_COST = 1e-4
_CREDIT = 1.0 + 2e-5
_WIDEN = (1, 3, -1)  # box sizes (× ``box``; negative: linked) tried before the whole release
_AUDIT_TOL = 1e-6  # audit.py's relative slack
_BULK_ROUNDS = 6  # whole-system LPs per direction with ``bulk``


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
    witnesses: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]
    # ``relax``: cells no pattern can protect fully, and the protection they got instead
    limited: dict[int, float]


def protect(
    system: CellSystem,
    tables: Sequence[TableIndex],
    *,
    previous: npt.NDArray[np.bool_] | None = None,
    box: int = 4,
    max_rounds: int = 5,
    progress: Callable[[str], None] | None = None,
    initial: npt.NDArray[np.bool_] | None = None,
    frozen: npt.NDArray[np.bool_] | None = None,
    grand_totals: npt.NDArray[np.bool_] | None = None,
    cubes: Hypercubes | None = None,
    relax: bool = False,
    bulk: bool = False,
) -> SecondaryResult:
    """Primary + secondary pattern that passes the audit (or raise ``ProtectionError``).

    ``initial`` cells are hidden from the start (default: the sensitive ones); ``frozen`` cells
    are known to the attacker whatever this release does (an earlier release published them),
    so they never help: no perturbation moves them and they are never hidden for protection.
    ``grand_totals``: cells only the whole-release step may hide (default: each table's
    all-margin cell). ``relax``: where not even the whole release can move a cell far enough
    (earlier releases pinned it), protect it as far as it can move and report it in
    ``limited`` instead of raising ``ProtectionError``; the audit then holds it to that.
    ``bulk``: first
    one LP over the whole system moves every open sensitive cell up, one down (cells whose
    boxes are too small for them, as revisions, would otherwise take one such LP each).
    """
    suppressed = (system.sensitive if initial is None else initial).copy()
    fixed = np.zeros(system.size, np.bool_) if frozen is None else frozen
    base = cell_costs(system.value, previous)
    weights_all = np.where(suppressed, _SUPPRESSED_COST, base)
    search_weights = np.where(fixed, np.inf, base)
    grand = np.zeros(system.size, np.bool_) if grand_totals is None else grand_totals
    if grand_totals is None:
        for t in tables:
            r = t.index.get(tuple([TOTAL] * len(t.spec.levels)))
            if r is not None:
                grand[t.gids[r]] = True
    cubes = cubes or Hypercubes(system, list(tables))
    boxes = Boxes(cubes)
    lps = 0
    x = system.value
    protection = system.protection.copy()
    limited: dict[int, float] = {}
    need_up = protection * MARGIN
    need_down = np.minimum(protection * MARGIN, x)
    # A cell counts as protected by someone else's perturbation a little below the target (LP
    # optima sit exactly on it, up to rounding) but still past what the audit demands.
    credit_up = protection * _CREDIT
    credit_down = np.minimum(credit_up, x - 0.25 * _AUDIT_TOL * np.maximum(1.0, x))

    def limit(g: int, reach: float) -> None:
        """Hold ``g`` to the protection it can get: a little less than its furthest move."""
        p = max(0.0, min(float(protection[g]), reach / MARGIN * (1.0 - 1e-6)))
        limited[g] = protection[g] = p
        need_up[g] = p * MARGIN
        need_down[g] = min(p * MARGIN, x[g])
        credit_up[g] = p * _CREDIT
        credit_down[g] = min(credit_up[g], x[g] - 0.25 * _AUDIT_TOL * max(1.0, x[g]))

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

    witnesses: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = []

    def hide(cells: npt.NDArray[np.int64], y: npt.NDArray[np.float64]) -> None:
        witnesses.append((cells, y))  # still valid once more cells are hidden: audit hints
        suppressed[cells] = True
        weights_all[cells] = _SUPPRESSED_COST
        credit(cells, y)

    def try_hypercube(g: int) -> None:
        """The cheapest hypercube that moves ``g`` far enough, if one exists: no LP needed."""
        up = float(need_up[g]) if not done_up[g] else 0.0
        down = float(need_down[g]) if not done_down[g] else 0.0
        if up == 0.0 and down == 0.0:
            return
        for cert in cubes.search(g, suppressed, search_weights, up, down, hidden_only=False):
            if np.isfinite(cert.cost) and cubes.verify(cert):
                hide(cert.cells, cert.signs)

    def protect_cell(g: int, widen: int) -> None:
        nonlocal lps

        def rank(c: npt.NDArray[np.int64]) -> tuple[npt.NDArray[Any], ...]:
            # free cells first, then those big enough to absorb the move, then the cheapest
            return (fixed[c], ~suppressed[c], system.value[c] < need, base[c])

        if widen == 0:
            try_hypercube(g)
        need = float(protection[g])
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
                still = fixed[cells]
                if attempt < len(_WIDEN):
                    still = still | (grand[cells] & ~suppressed[cells])
                found = cheapest_perturbation(
                    system, cubes.matrix, cells, g, amount, weights_all[cells], still
                )
                lps += 1
                if found is not None:
                    break
            if found is None and relax:
                found = largest_move(
                    system, cubes.matrix, cells, g, amount, weights_all[cells], still
                )
                lps += 1
                reach = 0.0 if found is None else float(np.max(np.abs(found[1][found[0] == g])))
                limit(g, reach)
                if found is None:
                    continue
            if found is None:
                raise ProtectionError(system.keys[g])
            hide(*found)

    order = sorted(
        np.flatnonzero(system.sensitive & (system.protection > 0)).tolist(),
        key=lambda g: (-system.protection[g], system.keys[g]),
    )
    if bulk and order:
        targets = np.array(order, np.int64)
        for sign, done in ((1.0, done_up), (-1.0, done_down)):
            # targets that pull against each other are left open: try again without the rest
            for _ in range(_BULK_ROUNDS):
                open_ = targets[~done[targets] & (need_up[targets] > 0)]
                if not len(open_):
                    break
                found = bulk_perturbation(
                    system,
                    cubes.matrix,
                    open_,
                    sign * protection[open_],
                    weights_all,
                    fixed | (grand & ~suppressed),
                )
                lps += 1
                if found is None:
                    break
                hide(*found)
                if done[open_].all() or not done[open_].any():
                    break
    for i, g in enumerate(order):
        if progress and i % 200 == 0:
            progress(f"secondary suppression: {i:,}/{len(order):,} sensitive cells")
        protect_cell(g, 0)
    rounds = 1

    def audited() -> AuditResult:
        held = replace(system, protection=protection) if limited else system
        return audit(held, suppressed, exact=False, cubes=cubes, witnesses=witnesses)

    result = audited()
    while not result.passed and rounds < max_rounds:
        for g in result.failures.tolist():
            protect_cell(g, min(len(_WIDEN), rounds))
        rounds += 1
        result = audited()
    return SecondaryResult(
        suppressed=suppressed,
        audit=result,
        lps=lps,
        rounds=rounds,
        witnesses=witnesses,
        limited=limited,
    )
