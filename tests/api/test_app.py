"""The API through the ASGI app (real release, real SQLite, embedded meter)."""

from __future__ import annotations

import pytest

from tests.api.conftest import PROBLEM, TABLE, Env, this_month


async def test_no_key_is_401_problem(env: Env) -> None:
    r = await env.client.get(f"/v1/tables/{TABLE}/rows")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["type"].endswith("/unauthenticated") and body["status"] == 401
    r = await env.client.get("/v1/tables", headers=env.auth("df_0123456789abcdef_nope"))
    assert r.status_code == 401 and r.json()["type"].endswith("/invalid-key")


async def test_unknown_table_is_404_problem(env: Env) -> None:
    r = await env.client.get("/v1/tables/nope/rows", headers=env.auth())
    assert r.status_code == 404
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"].endswith("/table-not-found")


@pytest.mark.parametrize(
    "params",
    [
        {"month": ".."},
        {"municipality": "31;DROP TABLE"},
        {"nope": "1"},
        {"limit": "0"},
        {"limit": "x"},
        {"cursor": "garbage"},
        {"columns": "secret"},
    ],
)
async def test_malformed_filter_is_400_problem(env: Env, params: dict[str, str]) -> None:
    r = await env.client.get(f"/v1/tables/{TABLE}/rows", params=params, headers=env.auth())
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"].endswith("/invalid-query")
    assert await env.meter.count(env.partner_id, this_month()) == 0  # a refused query is not billed


async def test_catalog_is_not_billed(env: Env) -> None:
    r = await env.client.get("/v1/tables", headers=env.auth())
    assert r.status_code == 200
    assert TABLE in [t["id"] for t in r.json()["tables"]]
    assert "min_taxpayers" not in r.text  # parameters are confidential
    r = await env.client.get(f"/v1/tables/{TABLE}", headers=env.auth())
    assert r.json()["measures"] == ["item_value", "invoice_count"]
    assert await env.meter.count(env.partner_id, this_month()) == 0


async def test_rows_paging_filters_and_counting(env: Env) -> None:
    seen = []
    cursor = None
    pages = 0
    while True:
        # Small pages: the 60k-item fixture gives Belo Horizonte a few dozen cells.
        params = {"municipality": "3106200", "limit": "20"}
        if cursor:
            params["cursor"] = cursor
        r = await env.client.get(f"/v1/tables/{TABLE}/rows", params=params, headers=env.auth())
        assert r.status_code == 200
        body = r.json()
        pages += 1
        seen.extend(body["rows"])
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        cursor = body["next_cursor"]
    assert pages > 1
    assert all(row["municipality"] == "3106200" for row in seen)
    assert len({(r["cnae_division"], r["month"]) for r in seen}) == len(seen)
    assert await env.meter.count(env.partner_id, this_month()) == pages
    for row in seen:
        if row["flag"] == "X":
            assert row["item_value"] is None and row["invoice_count"] is None
        else:
            assert isinstance(row["item_value"], int | float) and isinstance(
                row["invoice_count"], int
            )


async def test_ranges_prefixes_and_csv(env: Env) -> None:
    r = await env.client.get(
        f"/v1/tables/{TABLE}/rows",
        params={
            "month": "2026-01..2026-01",
            "cnae_division": "4*",
            "columns": "municipality,month,item_value,flag",
        },
        headers=env.auth(),
    )
    rows = r.json()["rows"]
    assert rows and all(x["month"] == "2026-01" for x in rows)
    assert set(rows[0]) == {"municipality", "month", "item_value", "flag"}
    r = await env.client.get(
        f"/v1/tables/{TABLE}/rows",
        params={"limit": "5"},
        headers={**env.auth(), "Accept": "text/csv"},
    )
    assert r.headers["content-type"].startswith("text/csv")
    assert (
        r.text.splitlines()[0] == "municipality,cnae_division,month,item_value,invoice_count,flag"
    )


async def test_cap_gives_429_with_headers(env: Env) -> None:
    url = f"/v1/tables/{TABLE}/rows"
    assert (await env.client.get(url, headers=env.auth(env.capped_key))).status_code == 200
    assert (await env.client.get(url, headers=env.auth(env.capped_key))).status_code == 200
    r = await env.client.get(url, headers=env.auth(env.capped_key))
    assert r.status_code == 429
    assert r.headers["content-type"].startswith(PROBLEM)
    assert int(r.headers["retry-after"]) > 0
    assert "ratelimit-policy" in r.headers and "ratelimit" in r.headers


async def test_outside_window_is_403_with_reason(env: Env) -> None:
    r = await env.client.get(f"/v1/tables/{TABLE}/rows", headers=env.auth(env.expired_key))
    assert r.status_code == 403
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["type"].endswith("/outside-window") and body["reason"] == "after_window"
