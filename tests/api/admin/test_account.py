"""What a partner sees of itself: SEF/MG's decisions, never which staff member recorded them
(issue 18, item 7). Every partner-facing GET route of the app is read after staff acted on the
partner through the admin API, and none may carry a staff name, role or actor field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.routes import ASGIRoute
from litestar.testing import AsyncTestClient

from dataflow.aggregation.release import ReleaseSummary
from dataflow.api.app import create_app
from dataflow.contracts.models import Plan, Role
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.metering.embedded import EmbeddedMeter
from tests.api.conftest import TABLE
from tests.conftest import make_settings

OPERATOR, FINANCE = "Olga Operadora", "Fabio Financeiro"
LEAKS = (OPERATOR, FINANCE, "imposed_by", "staff:", "cli:", "(operator)", "(finance)")


def _partner_paths(app: Litestar) -> list[str]:
    """Every GET route under /v1 (partner-facing), with its path parameters filled in (raw ASGI
    routes, as the rows route, declare no methods: they are read with GET too)."""
    paths = [
        route.path.replace("{table_id:str}", TABLE)
        for route in app.routes
        if route.path.startswith("/v1/")
        and ("GET" in getattr(route, "methods", ()) or isinstance(route, ASGIRoute))
    ]
    assert not [p for p in paths if "{" in p], paths  # a new parameter: teach this test
    return paths


async def _read_all(client: AsyncTestClient[Any], app: Litestar, key: str) -> dict[str, Any]:
    seen = {}
    for path in _partner_paths(app):
        r = await client.get(path, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code in (200, 403), (path, r.status_code, r.text)
        if not r.headers["content-type"].startswith("image/"):
            for leak in LEAKS:
                assert leak not in r.text, (path, leak, r.text)
        seen[path] = r
    return seen


async def test_partner_facing_routes_show_decisions_not_staff(
    tmp_path: Path, release: ReleaseSummary
) -> None:
    settings = make_settings(tmp_path, release_dir=release.path)
    service = ContractsService(make_engine(settings.database_url))
    partner = service.create_partner("Parceira Ltda", Plan.CONTINUOUS)
    op = {"Authorization": f"Bearer {service.create_staff(OPERATOR, Role.OPERATOR)}"}
    fin = {"Authorization": f"Bearer {service.create_staff(FINANCE, Role.FINANCE)}"}
    app = create_app(settings, meter=EmbeddedMeter(), contracts=service)
    async with AsyncTestClient(app) as client:
        base = f"/admin/v1/partners/{partner.id}"
        r = await client.post(f"{base}/keys", json={}, headers=op)
        key = r.json()["key"]
        sanctions = [
            ({"kind": "warning", "reason": "late monitoring report"}, op),
            ({"kind": "fine", "reason": "Art. 45 III breach", "amount_ufemg": "100"}, fin),
        ]
        for body, who in sanctions:
            r = await client.post(f"{base}/sanctions", json=body, headers=who)
            assert r.status_code == 201
        # The staff names are on record internally (admin API, audit log)...
        internal = await client.get(f"/admin/v1/partners/{partner.id}", headers=op)
        assert OPERATOR in internal.text and FINANCE in internal.text
        # ...and never on the partner's side.
        seen = await _read_all(client, app, key)
        assert {"/v1/account", "/v1/usage", "/v1/tables", f"/v1/tables/{TABLE}/rows"} <= set(seen)
        account = seen["/v1/account"].json()
        assert [(s["kind"], s["reason"]) for s in account["sanctions"]] == [
            ("warning", "late monitoring report"),
            ("fine", "Art. 45 III breach"),
        ]
        assert account["sanctions"][1]["amount_ufemg"] == "100.0000"
        assert account["contract"]["state"] == "active"

        body = {"kind": "suspension", "reason": "Art. 45 II: deliberation 7/2026", "days": 5}
        assert (await client.post(f"{base}/sanctions", json=body, headers=op)).status_code == 201
        await _read_all(client, app, key)  # suspended: problems and status reasons, same rule
