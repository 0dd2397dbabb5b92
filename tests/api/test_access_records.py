"""``GET /v1/account/accesses``: one record per counted access, so they add up to the bill."""

from __future__ import annotations

import csv
import io

import pyarrow.parquet as pq

from dataflow.metering.repository import SettlementRepository
from dataflow.metering.settlement import settle
from tests.api.conftest import PROBLEM, ROWS, Env, this_month


async def test_a_month_of_records_as_json_csv_and_parquet(env: Env) -> None:
    month = this_month()
    for limit in (1, 2, 3, 4):
        r = await env.client.get(ROWS, params={"limit": str(limit)}, headers=env.auth())
        assert r.status_code == 200
    refused = await env.client.get(ROWS, params={"limit": "0"}, headers=env.auth())
    assert refused.status_code == 400  # refused before counting: no record
    await settle(env.meter, SettlementRepository(env.api.contracts.engine))
    billed = env.api.contracts.usage(env.partner_id, month)
    assert billed == 4

    body = (await env.client.get("/v1/account/accesses", headers=env.auth())).json()
    assert body["month"] == month and body["count"] == billed == len(body["records"])
    first = body["records"][0]
    assert first["table_id"] == ROWS.split("/")[3] and first["status"] == 200
    assert first["accessed_at"].endswith("Z") and first["month"] == month

    r = await env.client.get(
        "/v1/account/accesses",
        params={"month": month},
        headers={**env.auth(), "Accept": "text/csv"},
    )
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["record_id"] for x in rows] == [x["record_id"] for x in body["records"]]

    r = await env.client.get(
        "/v1/account/accesses",
        headers={**env.auth(), "Accept": "application/vnd.apache.parquet"},
    )
    table = pq.read_table(io.BytesIO(r.content))
    assert table.num_rows == billed and table.column_names[0] == "record_id"

    # another partner's key sees its own month: none of these
    other = await env.client.get("/v1/account/accesses", headers=env.auth(env.capped_key))
    assert other.json()["count"] == 0


async def test_a_bad_month_is_a_problem(env: Env) -> None:
    r = await env.client.get(
        "/v1/account/accesses", params={"month": "2026-13"}, headers=env.auth()
    )
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    assert r.json()["parameter"] == "month"
    assert (await env.client.get("/v1/account/accesses")).status_code == 401
