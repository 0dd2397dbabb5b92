"""Rows: formats, sorting, keyset pages, pagination headers, caching, and what is billed."""

from __future__ import annotations

import io

import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from tests.api.conftest import PROBLEM, ROWS, Env, this_month

ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"


async def _all_pages(env: Env, params: dict[str, str]) -> tuple[list[dict[str, object]], int]:
    rows: list[dict[str, object]] = []
    pages = 0
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await env.client.get(ROWS, params=query, headers=env.auth())
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        rows.extend(body["rows"])
        assert r.headers["dataflow-has-more"] == str(body["has_more"]).lower()
        if not body["has_more"]:
            assert body["next_cursor"] is None and "dataflow-next-cursor" not in r.headers
            return rows, pages
        assert r.headers["dataflow-next-cursor"] == body["next_cursor"]
        assert 'rel="next"' in r.headers["link"]
        cursor = body["next_cursor"]


def _frame(env: Env) -> pl.DataFrame:
    return env.api.release.layouts["sales_municipality_cnae_division_month"].frame()


async def test_sorted_keyset_pages_cover_the_result_exactly_once(env: Env) -> None:
    params = {"month": "2026-01", "cnae_division": "4*", "sort": "-item_value,municipality"}
    rows, pages = await _all_pages(env, {**params, "limit": "29"})
    expected = (
        _frame(env)
        .filter((pl.col("month") == "2026-01") & pl.col("cnae_division").str.starts_with("4"))
        .height
    )
    assert pages > 2 and len(rows) == expected
    keys = [(r["municipality"], r["cnae_division"], r["month"]) for r in rows]
    assert len(set(keys)) == len(keys)
    values = [r["item_value"] for r in rows]
    published = [v for v in values if v is not None]
    assert published == sorted(published, reverse=True)
    first_null = values.index(None) if None in values else len(values)
    assert all(v is None for v in values[first_null:])  # suppressed cells sort last
    assert await env.meter.count(env.partner_id, this_month()) == pages


async def test_lists_ranges_margins_and_prefixes(env: Env) -> None:
    two = sorted(set(_frame(env)["municipality"].to_list()) - {"_T"})[:2]
    r = await env.client.get(
        ROWS,
        params={"municipality": ",".join(two), "cnae_division": "_T", "month": "..2026-01"},
        headers=env.auth(),
    )
    rows = r.json()["rows"]
    assert {x["municipality"] for x in rows} == set(two)
    assert all(x["cnae_division"] == "_T" and x["month"] == "2026-01" for x in rows)
    r = await env.client.get(
        ROWS, params={"municipality": "_T", "cnae_division": "_T"}, headers=env.auth()
    )
    totals = r.json()["rows"]
    assert {x["month"] for x in totals} == {"2026-01", "2026-02", "_T"}
    grand = next(x for x in totals if x["month"] == "_T")
    assert isinstance(grand["item_value"], float) and isinstance(grand["invoice_count"], int)


@pytest.mark.parametrize("how", ["accept", "format"])
async def test_arrow_and_parquet_match_json(env: Env, how: str) -> None:
    params = {"municipality": "3106200", "sort": "cnae_division,month", "limit": "40"}
    json_rows = (await env.client.get(ROWS, params=params, headers=env.auth())).json()["rows"]
    for media, fmt, read in (
        (ARROW, "arrow", lambda b: ipc.open_stream(b).read_all()),
        (PARQUET, "parquet", lambda b: pq.read_table(io.BytesIO(b))),
    ):
        if how == "accept":
            r = await env.client.get(ROWS, params=params, headers={**env.auth(), "Accept": media})
        else:
            r = await env.client.get(ROWS, params={**params, "format": fmt}, headers=env.auth())
        assert r.status_code == 200 and r.headers["content-type"].startswith(media)
        table: pa.Table = read(r.content)
        assert table.schema.metadata[b"dataflow.has_more"] == b"true"
        assert (
            table.schema.metadata[b"dataflow.next_cursor"].decode()
            == (r.headers["dataflow-next-cursor"])
        )
        got = pl.from_arrow(table)
        assert isinstance(got, pl.DataFrame)
        assert got["municipality"].to_list() == [x["municipality"] for x in json_rows]
        assert [None if v is None else float(v) for v in got["item_value"].to_list()] == [
            x["item_value"] for x in json_rows
        ]


async def test_csv_has_header_empty_suppressed_and_pagination_headers(env: Env) -> None:
    r = await env.client.get(
        ROWS,
        params={"limit": "500", "columns": "municipality,item_value,flag"},
        headers={**env.auth(), "Accept": "text/csv"},
    )
    lines = r.text.splitlines()
    assert lines[0] == "municipality,item_value,flag" and len(lines) == 501
    assert any(line.endswith(",,X") for line in lines[1:])
    assert r.headers["dataflow-has-more"] == "true"


async def test_binary_formats_allow_bigger_pages_text_formats_do_not(env: Env) -> None:
    big = {"limit": "50000"}
    r = await env.client.get(ROWS, params={**big, "format": "arrow"}, headers=env.auth())
    assert r.status_code == 200
    assert ipc.open_stream(r.content).read_all().num_rows == _frame(env).height
    r = await env.client.get(ROWS, params=big, headers=env.auth())
    assert r.status_code == 400 and r.json()["parameter"] == "limit"


async def test_cached_responses_are_still_counted(env: Env) -> None:
    params = {"municipality": "3106200", "limit": "10"}
    first = await env.client.get(ROWS, params=params, headers=env.auth())
    second = await env.client.get(ROWS, params=params, headers=env.auth(env.capped_key))
    assert first.content == second.content  # shared across partners
    assert len(env.api.runner.cache) >= 1
    assert await env.meter.count(env.partner_id, this_month()) == 1
    third = await env.client.get(ROWS, params=params, headers=env.auth())
    assert third.content == first.content
    assert await env.meter.count(env.partner_id, this_month()) == 2


async def test_cursor_of_another_query_or_release_is_422(env: Env) -> None:
    r = await env.client.get(ROWS, params={"limit": "5"}, headers=env.auth())
    cursor = r.json()["next_cursor"]
    r = await env.client.get(
        ROWS, params={"limit": "5", "month": "2026-01", "cursor": cursor}, headers=env.auth()
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"].endswith("/cursor-mismatch")
    # same query, other columns and limit: the cursor still fits (it binds filters and sort)
    r = await env.client.get(
        ROWS, params={"limit": "7", "columns": "flag", "cursor": cursor}, headers=env.auth()
    )
    assert r.status_code == 200 and set(r.json()["rows"][0]) == {"flag"}
