"""Who may read what, through the ASGI app (issue 18, items 1, 2 and 6).

Every test runs with the embedded meter and with ``DATAFLOW_METER=off``: switching the count off
must never switch authorization off. The catalog answers the same 403s as the data route, lists
only what the key may read, and stays unbilled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from dataflow.aggregation.release import ReleaseSummary
from dataflow.api.app import create_app
from dataflow.api.state import ApiState
from dataflow.contracts.lifecycle import Event
from dataflow.contracts.models import Plan, Role
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.settings import MeterKind
from tests.api.conftest import PROBLEM, TABLE, this_month
from tests.conftest import make_settings

OTHER = "sales_ncm_heading_month"


@dataclass
class World:
    client: AsyncTestClient[Any]
    api: ApiState
    service: ContractsService
    operator: str  # a staff token with the operator role
    scoped: str  # key of a partner whose contract covers TABLE only
    scoped_partner: int
    suspended: str  # key of a partner under a suspension
    wide: str  # key of a partner whose contract covers every table
    wide_partner: int

    def auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    async def counted(self, partner: int) -> int:
        if self.api.meter is None:
            return 0
        return await self.api.meter.count(partner, this_month())


def _sandbox(service: ContractsService, name: str, tables: frozenset[str]) -> int:
    today = datetime.now(UTC).date()
    p = service.register_partner(name, Plan.SANDBOX)
    c = service.authorize_sandbox(
        p.id,
        start=today - timedelta(days=10),
        end=today + timedelta(days=200),
        tables=tables,
        secrecy_term_accepted=True,
    )
    service.transition(c.id, Event.ACTIVATE)
    return p.id


@pytest.fixture(params=[MeterKind.EMBEDDED, MeterKind.OFF], ids=["meter", "meter-off"])
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, release: ReleaseSummary
) -> AsyncIterator[World]:
    settings = make_settings(
        tmp_path, release_dir=release.path, meter=request.param, settle_interval=0.0
    )
    service = ContractsService(make_engine(settings.database_url))
    scoped = _sandbox(service, "Scoped Lab", frozenset({TABLE}))
    suspended = service.create_partner("Suspended Ltda", Plan.CONTINUOUS)
    service.suspend(suspended.id, "Art. 45 II: deliberation 12/2026", days=30)
    wide = service.create_partner("Wide Ltda", Plan.CONTINUOUS)
    app = create_app(settings, contracts=service)  # the meter the settings say (None when off)
    async with AsyncTestClient(app) as client:
        api: ApiState = app.state.api
        assert (api.meter is None) is (request.param is MeterKind.OFF)
        yield World(
            client=client,
            api=api,
            service=service,
            operator=service.create_staff("Olga Operadora", Role.OPERATOR),
            scoped=service.create_key(scoped),
            scoped_partner=scoped,
            suspended=service.create_key(suspended.id),
            wide=service.create_key(wide.id),
            wide_partner=wide.id,
        )


def _problem(r: Any, status: int, kind: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["type"].endswith(f"/{kind}"), body
    return body


# -- item 2: the data route with the meter off still authorizes ---------------------------------


async def test_a_suspended_partner_reads_no_rows(world: World) -> None:
    r = await world.client.get(f"/v1/tables/{TABLE}/rows", headers=world.auth(world.suspended))
    assert _problem(r, 403, "partner-suspended")["reason"] == "suspended"


async def test_a_table_outside_the_contract_gives_no_rows(world: World) -> None:
    ok = await world.client.get(f"/v1/tables/{TABLE}/rows", headers=world.auth(world.scoped))
    assert ok.status_code == 200
    for _ in range(2):  # the second would come from the response cache
        r = await world.client.get(f"/v1/tables/{OTHER}/rows", headers=world.auth(world.scoped))
        assert _problem(r, 403, "table-not-entitled")["reason"] == "table_not_entitled"
    cached = await world.client.get(f"/v1/tables/{OTHER}/rows", headers=world.auth(world.wide))
    assert cached.status_code == 200  # now in the shared cache: still refused to the scoped key
    r = await world.client.get(f"/v1/tables/{OTHER}/rows", headers=world.auth(world.scoped))
    _problem(r, 403, "table-not-entitled")
    assert await world.counted(world.scoped_partner) == (0 if world.api.meter is None else 1)


# -- item 1: a key narrows its contract, never widens it ---------------------------------------


async def test_creating_a_key_beyond_the_contract_is_a_422_problem(world: World) -> None:
    url = f"/admin/v1/partners/{world.scoped_partner}/keys"
    r = await world.client.post(url, json={"tables": [OTHER]}, headers=world.auth(world.operator))
    body = _problem(r, 422, "invalid-input")
    assert body["field"] == "tables" and OTHER in body["detail"] and TABLE in body["detail"]
    assert len(world.service.keys(world.scoped_partner)) == 1  # only the fixture's key
    r = await world.client.post(url, json={"tables": [TABLE]}, headers=world.auth(world.operator))
    assert r.status_code == 201


async def test_narrowing_the_contract_narrows_its_keys_at_once(world: World) -> None:
    pid = _sandbox(world.service, "Narrowed Lab", frozenset({TABLE, OTHER}))
    key = world.service.create_key(pid, tables=frozenset({OTHER}))
    rows = f"/v1/tables/{OTHER}/rows"
    assert (await world.client.get(rows, headers=world.auth(key))).status_code == 200
    # The contract is replaced by one for TABLE only; the key itself is not touched.
    (old,) = world.service.contracts(pid)
    world.service.transition(old.id, Event.CANCEL)
    narrower = world.service.authorize_sandbox(
        pid,
        start=old.start_date or datetime.now(UTC).date(),
        end=old.end_date or datetime.now(UTC).date(),
        tables=frozenset({TABLE}),
        secrecy_term_accepted=True,
    )
    world.service.transition(narrower.id, Event.ACTIVATE)
    await asyncio.sleep(2.2)  # the workers' KeyRing reloads keys and entitlements every 2 s
    _problem(await world.client.get(rows, headers=world.auth(key)), 403, "table-not-entitled")
    # TABLE is the new contract's, but not the key's: the intersection is empty.
    r = await world.client.get(f"/v1/tables/{TABLE}/rows", headers=world.auth(key))
    _problem(r, 403, "table-not-entitled")
    usage = (await world.client.get("/v1/usage", headers=world.auth(key))).json()
    assert usage["tables"] == []


# -- item 6: the catalog checks status and entitlement -------------------------------------------


async def test_a_suspended_partner_reads_no_catalog(world: World) -> None:
    for path in ("/v1/tables", f"/v1/tables/{TABLE}"):
        r = await world.client.get(path, headers=world.auth(world.suspended))
        body = _problem(r, 403, "partner-suspended")
        assert body["reason"] == "suspended"


async def test_the_catalog_lists_and_describes_only_entitled_tables(world: World) -> None:
    r = await world.client.get("/v1/tables", headers=world.auth(world.scoped))
    assert r.status_code == 200
    assert [t["id"] for t in r.json()["tables"]] == [TABLE]
    everything = await world.client.get("/v1/tables", headers=world.auth(world.wide))
    assert len(everything.json()["tables"]) == len(world.api.release.tables) > 1
    # The list depends on the scope, so its validator does too: one partner's ETag never
    # revalidates another scope's list.
    assert r.headers["etag"] != everything.headers["etag"]
    again = {**world.auth(world.scoped), "If-None-Match": everything.headers["etag"]}
    assert (await world.client.get("/v1/tables", headers=again)).status_code == 200
    again = {**world.auth(world.scoped), "If-None-Match": r.headers["etag"]}
    assert (await world.client.get("/v1/tables", headers=again)).status_code == 304

    r = await world.client.get(f"/v1/tables/{TABLE}", headers=world.auth(world.scoped))
    assert r.status_code == 200
    r = await world.client.get(f"/v1/tables/{OTHER}", headers=world.auth(world.scoped))
    assert _problem(r, 403, "table-not-entitled")["reason"] == "table_not_entitled"
    r = await world.client.get("/v1/tables/no_such_table", headers=world.auth(world.scoped))
    _problem(r, 404, "table-not-found")  # an unknown id is still "not found"
    assert await world.counted(world.scoped_partner) == 0  # the catalog is not billed


async def test_with_the_meter_off_the_app_says_accesses_are_not_counted(
    tmp_path: Path, release: ReleaseSummary, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, release_dir=release.path, meter=MeterKind.OFF)
    with caplog.at_level(logging.WARNING, logger="dataflow.api"):
        create_app(settings)
    assert any("NOT COUNTED" in r.getMessage() for r in caplog.records), caplog.text
