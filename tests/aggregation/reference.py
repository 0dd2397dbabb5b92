"""The straightforward reading of a rows query: polars filter, sort, keyset cut, head.

This was the served implementation before the indexed layout (``aggregation/layout.py``); it stays
here as the reference the layout must agree with, row for row, page for page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import polars as pl

from dataflow.aggregation.layout import Filter, SortKey, TableLayout
from dataflow.aggregation.levels import TOTAL

ROW_ID = "_row"


def filter_expr(f: Filter) -> pl.Expr:
    col = pl.col(f.level)
    if f.prefix is not None:
        return col.str.starts_with(f.prefix)
    if f.values:
        return col.is_in(list(f.values)) if len(f.values) > 1 else col == f.values[0]
    out = col != TOTAL  # a range selects codes, never the margin
    if f.low is not None:
        out = out & (col >= f.low)
    if f.high is not None:
        out = out & (col <= f.high)
    return out


def _sort_expr(key: SortKey, measures: Sequence[str]) -> pl.Expr:
    """Never null, so keys compare totally: suppressed (null) measures sort last either way."""
    if key.column in measures:
        fill = -math.inf if key.descending else math.inf
        return pl.col(key.column).cast(pl.Float64).fill_null(fill).alias(f"__k_{key.column}")
    return pl.col(key.column).alias(f"__k_{key.column}")


def _after_expr(sort: Sequence[SortKey], after: Sequence[object]) -> pl.Expr:
    """Rows strictly after ``after`` in (sort keys…, row id) order."""
    row_id: Any = after[-1]
    cond: pl.Expr = pl.col(ROW_ID) > row_id
    value: Any
    for key, value in reversed(list(zip(sort, after, strict=False))):
        col = pl.col(f"__k_{key.column}")
        beyond = (col < value) if key.descending else (col > value)
        cond = beyond | ((col == value) & cond)
    return cond


def reference_page(
    layout: TableLayout,
    measures: Sequence[str],
    filters: Sequence[Filter],
    sort: Sequence[SortKey],
    after: Sequence[object] | None,
    limit: int,
) -> tuple[list[int], bool]:
    """Row ids of the page in page order, and whether more rows follow."""
    lf = layout.frame().with_row_index(ROW_ID).lazy()
    for f in filters:
        lf = lf.filter(filter_expr(f))
    if sort:
        names = [f"__k_{k.column}" for k in sort]
        lf = lf.with_columns([_sort_expr(k, measures) for k in sort])
        if after is not None:
            lf = lf.filter(_after_expr(sort, after))
        lf = lf.sort([*names, ROW_ID], descending=[*(k.descending for k in sort), False])
    elif after is not None:
        last: Any = after[-1]
        lf = lf.filter(pl.col(ROW_ID) > last)
    hit = lf.head(limit + 1).collect()[ROW_ID].to_list()
    return [int(r) for r in hit[:limit]], len(hit) > limit
