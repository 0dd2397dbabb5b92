"""The release read model: filters, sort and keyset pages over a real release."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflow.aggregation.catalog import LoadedRelease, load_release
from dataflow.aggregation.query import CursorMismatch, QueryError, parse_query, run_query
from dataflow.aggregation.release import ReleaseSummary
from dataflow.invoices.reference import ReferenceData

TABLE = "sales_municipality_cnae_division_month"


@pytest.fixture(scope="module")
def loaded(release: ReleaseSummary, reference: ReferenceData) -> LoadedRelease:
    return load_release(release.path, reference)


def _pages(loaded: LoadedRelease, params: dict[str, str]) -> list[pl.DataFrame]:
    table = loaded.table(TABLE)
    pages, cursor = [], None
    while True:
        q = parse_query(table, {**params, **({"cursor": cursor} if cursor else {})}, loaded.version)
        page = run_query(loaded, q)
        pages.append(page.frame)
        if not page.has_more:
            return pages
        cursor = page.next_cursor


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    sort=st.lists(
        st.sampled_from(
            [
                "municipality",
                "-municipality",
                "item_value",
                "-item_value",
                "-invoice_count",
                "month",
                "-cnae_division",
            ]
        ),
        max_size=3,
    ),
    limit=st.integers(min_value=7, max_value=900),
    division=st.sampled_from([None, "4*", "_T", "47,46"]),
)
def test_keyset_pages_partition_the_sorted_result(
    loaded: LoadedRelease, sort: list[str], limit: int, division: str | None
) -> None:
    params = {"limit": str(limit)}
    if sort:
        params["sort"] = ",".join(sort)
    if division:
        params["cnae_division"] = division
    pages = _pages(loaded, params)
    got = pl.concat(pages)
    frame = loaded.layouts[TABLE].frame()
    if division == "4*":
        frame = frame.filter(pl.col("cnae_division").str.starts_with("4"))
    elif division:
        frame = frame.filter(pl.col("cnae_division").is_in(division.split(",")))
    keys = ["municipality", "cnae_division", "month"]
    assert got.height == frame.height
    assert got.select(keys).unique().height == got.height  # no row twice
    assert all(p.height == limit for p in pages[:-1])


def test_range_excludes_margins_and_equality_selects_them(loaded: LoadedRelease) -> None:
    table = loaded.table(TABLE)
    months = run_query(loaded, parse_query(table, {"month": "2026-01..", "limit": "5000"}, "x"))
    assert "_T" not in months.frame["month"].to_list()
    totals = run_query(loaded, parse_query(table, {"month": "_T", "limit": "5000"}, "x"))
    assert set(totals.frame["month"].to_list()) == {"_T"}


def test_cursor_is_bound_to_release_and_query(loaded: LoadedRelease) -> None:
    table = loaded.table(TABLE)
    page = run_query(loaded, parse_query(table, {"limit": "3"}, loaded.version))
    assert page.next_cursor
    with pytest.raises(CursorMismatch):
        parse_query(table, {"cursor": page.next_cursor}, "another-release")
    with pytest.raises(CursorMismatch):
        parse_query(table, {"cursor": page.next_cursor, "sort": "month"}, loaded.version)
    with pytest.raises(QueryError):
        parse_query(table, {"cursor": page.next_cursor[:-3]}, loaded.version)


def test_unknown_reference_levels_are_served_without_labels(
    release: ReleaseSummary, reference: ReferenceData
) -> None:
    class Partial(ReferenceData):
        def labels(self, level: str) -> dict[str, str]:
            raise KeyError(level)  # e.g. a level the reference data does not know yet

    partial = Partial(reference.municipalities, reference.cnae, reference.ncm, reference.cfop)
    loaded = load_release(release.path, partial)
    level = loaded.table(TABLE).dimensions[0].levels[0]
    assert level.codes and all(c.label is None for c in level.codes)
