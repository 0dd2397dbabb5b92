"""Primary disclosure control: which cells are sensitive, and how much protection each needs.

Rules (SDC handbook, ch. 4), on taxpayer contributions (``cube.py`` grouped them by CNPJ root):

- threshold: fewer than ``min_taxpayers`` distinct taxpayers;
- p%-rule: the second-largest contributor could estimate the largest within p%
  (``X - x1 - x2 < p/100 · x1``); upper protection level ``p/100 · x1 - (X - x1 - x2)``;
- (n, k) dominance: the n largest hold more than k% (``Σ top n > k/100 · X``); upper protection
  level ``100/k · Σ top n - X``.

Protection is symmetric (lower level = upper level, capped by the value itself, since values
are non-negative). A threshold cell must not be pinned within ``threshold_protection · X``.
Counts and values of a cell share its fate: the pattern found on the magnitude measure hides
every measure of the cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from dataflow.aggregation.cube import TAXPAYERS, TOP
from dataflow.aggregation.specs import MAGNITUDE, SuppressionRules, TableSpec

__all__ = [
    "FLAG",
    "FLAG_SUPPRESSED",
    "FLAG_ZERO",
    "Primary",
    "Reason",
    "apply_suppression",
    "primary",
    "primary_sensitive",
]

FLAG = "flag"
FLAG_SUPPRESSED = "X"
FLAG_ZERO = "-"


class Reason(IntEnum):
    """Why a cell is hidden (internal diagnostics only; the public flag is always ``X``)."""

    PUBLISHED = 0
    THRESHOLD = 1
    P_PERCENT = 2
    DOMINANCE = 3
    SECONDARY = 4
    REVISION = 5  # differencing it with an earlier release would expose the revision

    @property
    def label(self) -> str:
        return {
            0: "",
            1: "primary:threshold",
            2: "primary:p-percent",
            3: "primary:dominance",
            4: "secondary",
            5: "revision",
        }[int(self)]


@dataclass(frozen=True, slots=True)
class Primary:
    """Per cell: value, sensitivity, the first rule that fired, and the protection needed."""

    value: npt.NDArray[np.float64]
    sensitive: npt.NDArray[np.bool_]
    reason: npt.NDArray[np.int8]
    protection: npt.NDArray[np.float64]  # symmetric upper = lower protection level


def _tops(cells: pa.Table, n: int) -> npt.NDArray[np.float64]:
    """Matrix of the ``n`` largest contributions per cell, zero-padded."""
    tops = cells[TOP].combine_chunks()
    out = np.zeros((cells.num_rows, n))
    offsets = tops.offsets.to_numpy()
    flat = tops.values.to_numpy(zero_copy_only=False)
    lengths = np.diff(offsets)
    for j in range(n):
        has = lengths > j
        out[has, j] = flat[offsets[:-1][has] + j]
    return out


def primary(cells: pa.Table, rules: SuppressionRules) -> Primary:
    x = pc.cast(cells[MAGNITUDE], pa.float64()).to_numpy(zero_copy_only=False)
    x = np.nan_to_num(x, nan=0.0)
    n = cells[TAXPAYERS].to_numpy(zero_copy_only=False)
    need = max(2, rules.dominance_n or 0)
    top = _tops(cells, need)
    reason = np.zeros(len(x), np.int8)
    prot = np.zeros(len(x))
    if rules.dominance_n is not None and rules.dominance_k is not None:
        s = top[:, : rules.dominance_n].sum(axis=1)
        hit = s > rules.dominance_k / 100.0 * x
        reason[hit] = Reason.DOMINANCE
        prot = np.where(hit, np.maximum(prot, 100.0 / rules.dominance_k * s - x), prot)
    if rules.p_percent is not None:
        p = rules.p_percent / 100.0
        rest = x - top[:, 0] - top[:, 1]
        hit = rest < p * top[:, 0]
        reason[hit] = Reason.P_PERCENT
        prot = np.where(hit, np.maximum(prot, p * top[:, 0] - rest), prot)
    thin = n < rules.min_taxpayers
    reason[thin] = Reason.THRESHOLD
    prot = np.where(thin, np.maximum(prot, rules.threshold_protection * x), prot)
    sensitive = reason != Reason.PUBLISHED
    return Primary(
        value=x, sensitive=sensitive, reason=reason, protection=np.where(sensitive, prot, 0.0)
    )


def primary_sensitive(cells: pa.Table, rules: SuppressionRules) -> pa.ChunkedArray:
    """Boolean column: the cell is sensitive under the rules."""
    return pa.chunked_array([pa.array(primary(cells, rules).sensitive)])


def apply_suppression(
    cells: pa.Table, spec: TableSpec, suppressed: pa.ChunkedArray | pa.Array
) -> pa.Table:
    """Null every measure of a suppressed cell (counts share the value's fate) and set its flag."""
    out = cells
    for m in spec.measures:
        col = out[m]
        idx = out.schema.get_field_index(m)
        out = out.set_column(idx, m, pc.if_else(suppressed, pa.scalar(None, col.type), col))
    flag = pc.if_else(suppressed, FLAG_SUPPRESSED, "")
    if "invoice_count" in cells.column_names:  # a published true zero carries "-"
        zero = pc.fill_null(pc.equal(cells["invoice_count"], 0), False)
        flag = pc.if_else(pc.and_(zero, pc.invert(suppressed)), FLAG_ZERO, flag)
    return out.append_column(FLAG, flag)
