"""Disclosure control: mark sensitive cells and hide their measures (SIDRA markers)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from dataflow.aggregation.cube import TAXPAYERS
from dataflow.aggregation.specs import SuppressionRules, TableSpec

__all__ = ["FLAG", "FLAG_SUPPRESSED", "FLAG_ZERO", "apply_suppression", "primary_sensitive"]

FLAG = "flag"
FLAG_SUPPRESSED = "X"
FLAG_ZERO = "-"


def primary_sensitive(cells: pa.Table, rules: SuppressionRules) -> pa.ChunkedArray:
    """Cells with fewer than ``min_taxpayers`` distinct CNPJ roots (threshold rule)."""
    return pc.less(cells[TAXPAYERS], rules.min_taxpayers)


def apply_suppression(cells: pa.Table, spec: TableSpec, suppressed: pa.ChunkedArray) -> pa.Table:
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
