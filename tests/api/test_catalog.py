"""Catalog: summaries, dimensions with labelled code lists, ETag and If-None-Match."""

from __future__ import annotations

from tests.api.conftest import TABLE, Env, this_month


async def test_catalog_lists_tables_with_release_etag(env: Env) -> None:
    r = await env.client.get("/v1/tables", headers=env.auth())
    assert r.status_code == 200
    body = r.json()
    assert r.headers["etag"] == f'"{body["release"]}"'
    (table,) = [t for t in body["tables"] if t["id"] == TABLE]
    assert table["measures"] == ["item_value", "invoice_count"]
    assert "dimensions" not in table  # code lists only in the table description
    assert "min_taxpayers" not in r.text and "parameters" not in r.text


async def test_if_none_match_gives_304_and_a_new_etag_does_not(env: Env) -> None:
    for path in ("/v1/tables", f"/v1/tables/{TABLE}"):
        etag = (await env.client.get(path, headers=env.auth())).headers["etag"]
        r = await env.client.get(path, headers={**env.auth(), "If-None-Match": etag})
        assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
        weak = {**env.auth(), "If-None-Match": f'"other", W/{etag}'}
        assert (await env.client.get(path, headers=weak)).status_code == 304
        stale = {**env.auth(), "If-None-Match": '"20000101T000000Z-deadbeef"'}
        assert (await env.client.get(path, headers=stale)).status_code == 200
    assert await env.meter.count(env.partner_id, this_month()) == 0  # metadata is not billable


async def test_table_has_dimensions_levels_labelled_code_lists_and_markers(env: Env) -> None:
    r = await env.client.get(f"/v1/tables/{TABLE}", headers=env.auth())
    meta = r.json()
    dims = {d["name"]: d for d in meta["dimensions"]}
    assert set(dims) == {"geography", "activity", "time"}
    (muni,) = dims["geography"]["levels"]
    codes = {c["code"]: c["label"] for c in muni["codes"]}
    assert codes["3106200"] == "Belo Horizonte"
    assert "_T" not in codes and all(c.startswith("31") for c in codes)
    (division,) = dims["activity"]["levels"]
    assert all(c["label"] for c in division["codes"])  # CNAE divisions carry their labels
    (month,) = dims["time"]["levels"]
    assert month["codes"][0]["code"] == "2026-01" and month["codes"][0]["label"] is None
    assert meta["markers"]["X"].startswith("suppressed")
    assert meta["total_code"] == "_T"
    assert meta["columns"] == [
        "municipality",
        "cnae_division",
        "month",
        "item_value",
        "invoice_count",
        "flag",
    ]
    kinds = {m["name"]: m["type"] for m in meta["measure_details"]}
    assert kinds == {"item_value": "number", "invoice_count": "integer"}
    assert "min_taxpayers" not in r.text
