"""The indexed layout returns exactly what the straightforward polars filter + sort returns.

Every table of the release, every filter form (equality, list, range, prefix, margin), any sort,
cursors issued by the query itself and arbitrary keyset positions: hypothesis draws them, the
reference (``reference.py``) answers, and the layout must give the same rows in the same order.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflow.aggregation.catalog import LoadedRelease, load_release
from dataflow.aggregation.layout import Filter, SortKey, TableLayout
from dataflow.aggregation.levels import TOTAL
from dataflow.aggregation.query import parse_query, run_query
from dataflow.aggregation.release import ReleaseSummary
from tests.aggregation.reference import reference_page

CODE_CHARS = "0123456789ABX_T-"


@pytest.fixture(scope="module")
def loaded(release: ReleaseSummary) -> LoadedRelease:
    return load_release(release.path)


def _codes(layout: TableLayout, level: str) -> list[str]:
    return layout.levels[level].codes


@st.composite
def _filter(draw: st.DrawFn, layout: TableLayout, level: str) -> Filter:
    codes = _codes(layout, level)
    known = st.sampled_from(codes)
    code = st.one_of(known, known, st.text(CODE_CHARS, min_size=1, max_size=8))
    form = draw(st.sampled_from(["equal", "list", "range", "prefix", "margin"]))
    if form == "equal":
        return Filter(level, values=(draw(code),))
    if form == "margin":
        return Filter(level, values=(TOTAL,))
    if form == "list":
        return Filter(
            level, values=tuple(sorted(set(draw(st.lists(code, min_size=2, max_size=5)))))
        )
    if form == "range":
        low, high = draw(st.one_of(st.none(), code)), draw(st.one_of(st.none(), code))
        if low is None and high is None:
            low = draw(known)
        return Filter(level, low=low, high=high)
    whole = draw(known)
    cut = draw(st.integers(min_value=1, max_value=len(whole)))
    return Filter(level, prefix=draw(st.one_of(st.just(whole[:cut]), code)))


@st.composite
def _query(draw: st.DrawFn, loaded: LoadedRelease) -> tuple[str, list[Filter], list[SortKey], int]:
    table_id = draw(st.sampled_from(sorted(loaded.tables)))
    table, layout = loaded.tables[table_id], loaded.layouts[table_id]
    levels = draw(st.lists(st.sampled_from(table.levels), unique=True, max_size=3))
    filters = [draw(_filter(layout, lv)) for lv in levels]
    columns = st.sampled_from([*table.levels, *table.measures])
    names = draw(st.lists(columns, unique=True, max_size=3))
    sort = [SortKey(c, descending=draw(st.booleans())) for c in names]
    limit = draw(st.one_of(st.integers(1, 40), st.integers(41, 3_000)))
    return table_id, filters, sort, limit


def _check(
    loaded: LoadedRelease,
    table_id: str,
    filters: list[Filter],
    sort: list[SortKey],
    after: list[object] | None,
    limit: int,
) -> tuple[list[int], bool]:
    layout = loaded.layouts[table_id]
    got = layout.select(filters, sort, after, limit)
    want = reference_page(layout, loaded.tables[table_id].measures, filters, sort, after, limit)
    assert (got.rows.tolist(), got.has_more) == want, (table_id, filters, sort, after, limit)
    return want


_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@_SETTINGS
@given(data=st.data())
def test_first_pages_match_the_reference(loaded: LoadedRelease, data: st.DataObject) -> None:
    table_id, filters, sort, limit = data.draw(_query(loaded))
    _check(loaded, table_id, filters, sort, None, limit)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_issued_cursors_walk_the_reference_order(
    loaded: LoadedRelease, data: st.DataObject
) -> None:
    """Paging with the cursors the layout issues covers the reference's whole result, in order."""
    table_id, filters, sort, _ = data.draw(_query(loaded))
    limit = data.draw(st.integers(1, 400))
    layout = loaded.layouts[table_id]
    measures = loaded.tables[table_id].measures
    everything, _ = reference_page(layout, measures, filters, sort, None, layout.height)
    seen: list[int] = []
    after: list[object] | None = None
    for _ in range(40):  # bounded: the rest is the same step again
        rows, more = _check(loaded, table_id, filters, sort, after, limit)
        seen += rows
        if not more:
            assert seen == everything
            return
        after = layout.cursor_values(sort, rows[-1])
    assert seen == everything[: len(seen)]


@st.composite
def _after(draw: st.DrawFn, layout: TableLayout, sort: list[SortKey]) -> list[object]:
    """Any keyset position: values rows hold, values between them, ±inf (suppressed)."""
    out: list[object] = []
    for key in sort:
        if key.column in layout.levels:
            codes = _codes(layout, key.column)
            out.append(draw(st.one_of(st.sampled_from(codes), st.text(CODE_CHARS, max_size=8))))
            continue
        values = layout.keys[key.column].values
        present = [float(v) for v in values[~np.isnan(values)][:200]] or [0.0]
        out.append(
            draw(
                st.one_of(
                    st.sampled_from(present),
                    st.floats(allow_nan=False),
                    st.sampled_from([math.inf, -math.inf]),
                )
            )
        )
    out.append(draw(st.integers(min_value=0, max_value=layout.height + 2)))
    return out


@_SETTINGS
@given(data=st.data())
def test_any_keyset_position_matches_the_reference(
    loaded: LoadedRelease, data: st.DataObject
) -> None:
    table_id, filters, sort, limit = data.draw(_query(loaded))
    after = data.draw(_after(loaded.layouts[table_id], sort))
    _check(loaded, table_id, filters, sort, after, limit)


@pytest.mark.parametrize("column", ["item_value", "municipality"])
def test_whole_table_sorts_page_by_position(loaded: LoadedRelease, column: str) -> None:
    """One key over the whole table walks its cached order; deep pages agree too."""
    table_id = "sales_municipality_cnae_division_month"
    layout = loaded.layouts[table_id]
    for descending in (False, True):
        sort = [SortKey(column, descending)]
        after: list[object] | None = None
        for _ in range(5):
            rows, more = _check(loaded, table_id, [], sort, after, 97)
            assert more
            after = layout.cursor_values(sort, rows[-1])


def test_parsed_queries_run_through_the_layout(loaded: LoadedRelease) -> None:
    """parse_query → run_query serves the reference's rows and columns."""
    table_id = "sales_municipality_cnae_division_month"
    table, layout = loaded.tables[table_id], loaded.layouts[table_id]
    params = {"cnae_division": "4*", "month": "..2026-01", "sort": "-item_value", "limit": "50"}
    page = run_query(loaded, parse_query(table, {**params, "columns": "month,flag"}, "v"))
    query = parse_query(table, params, "v")
    rows, more = reference_page(layout, table.measures, query.filters, query.sort, None, 50)
    assert page.rows.tolist() == rows and page.has_more == more
    want = layout.frame().with_row_index("_row").filter(pl.col("_row").is_in(rows))
    assert page.frame.columns == ["month", "flag"] and page.frame.height == want.height
