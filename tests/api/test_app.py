"""The API through the ASGI app (real release, real SQLite, embedded and Redis meters)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from dataflow.aggregation.release import ReleaseSummary
from dataflow.api.app import create_app
from dataflow.contracts.models import Plan
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.metering.embedded import EmbeddedMeter
from tests.conftest import make_settings

TABLE = "sales_municipality_cnae_division_month"
PROBLEM = "application/problem+json"


class Env:
    def __init__(
        self,
        client: AsyncTestClient,
        key: str,
        meter: EmbeddedMeter,
        partner_id: int,
        capped_key: str,
    ) -> None:
        self.client = client
        self.key = key
        self.meter = meter
        self.partner_id = partner_id
        self.capped_key = capped_key

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


@pytest.fixture
async def env(tmp_path: Path, release: ReleaseSummary) -> AsyncIterator[Env]:
    settings = make_settings(tmp_path, release_dir=release.path)
    contracts = ContractsService(make_engine(settings.database_url))
    partner = contracts.create_partner("P", Plan.CONTINUOUS)
    capped = contracts.create_partner("Sandbox", Plan.SANDBOX, monthly_cap=2)
    meter = EmbeddedMeter()
    app = create_app(settings, meter=meter, contracts=contracts)
    async with AsyncTestClient(app) as client:
        yield Env(
            client,
            contracts.create_key(partner.id),
            meter,
            partner.id,
            contracts.create_key(capped.id),
        )


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
    assert await env.meter.count(env.partner_id, _month()) == 0  # a refused query is not billed


def _month() -> str:
    from datetime import UTC, datetime

    from dataflow.metering.models import billing_month

    return billing_month(datetime.now(UTC))


async def test_catalog_is_not_billed(env: Env) -> None:
    r = await env.client.get("/v1/tables", headers=env.auth())
    assert r.status_code == 200
    assert TABLE in [t["id"] for t in r.json()["tables"]]
    assert "min_taxpayers" not in r.text  # parameters are confidential
    r = await env.client.get(f"/v1/tables/{TABLE}", headers=env.auth())
    assert r.json()["measures"] == ["item_value", "invoice_count"]
    assert await env.meter.count(env.partner_id, _month()) == 0


async def test_rows_paging_filters_and_counting(env: Env) -> None:
    seen = []
    cursor = None
    pages = 0
    while True:
        params = {"municipality": "3106200", "limit": "50"}
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
    assert await env.meter.count(env.partner_id, _month()) == pages
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
