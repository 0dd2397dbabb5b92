"""Bad admin input is a 4xx problem naming what is wrong: never a 500, never a silent default.

Staff are authenticated before anything they sent is decoded, and a request body is limited in
size however it is sent (with a Content-Length or chunked).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from dataflow.aggregation.release import ReleaseSummary
from dataflow.api.app import create_app
from dataflow.api.observe import MAX_BODY_BYTES
from dataflow.contracts.models import Plan, Role
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.metering.embedded import EmbeddedMeter
from tests.conftest import make_settings

PROBLEM = "application/problem+json"


@dataclass
class Admin:
    client: AsyncTestClient[Any]
    service: ContractsService
    staff: dict[Role, dict[str, str]]
    partner: int
    app: Litestar


@pytest.fixture
async def admin(tmp_path: Path, release: ReleaseSummary) -> AsyncIterator[Admin]:
    settings = make_settings(tmp_path, release_dir=release.path)
    service = ContractsService(make_engine(settings.database_url))
    partner = service.create_partner("Alpha", Plan.CONTINUOUS)
    staff = {
        role: {"Authorization": f"Bearer {service.create_staff(f'{role}-v', role)}"}
        for role in Role
    }
    app = create_app(settings, meter=EmbeddedMeter(), contracts=service)
    async with AsyncTestClient(app) as client:
        yield Admin(client, service, staff, partner.id, app)


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("partner_id=abc", "partner_id"),
        ("partner_id=99999999999999999999", "partner_id"),
        ("since=notadate", "since"),
        ("since=2026-01-01T00:00:00", "since"),  # an instant needs its offset
        ("limit=x", "limit"),
        ("limit=-1", "limit"),  # used to return the whole log
        ("limit=0", "limit"),
        ("limit=10001", "limit"),
    ],
)
async def test_audit_query_parameters_are_validated(
    admin: Admin, query: str, parameter: str
) -> None:
    r = await admin.client.get(f"/admin/v1/audit?{query}", headers=admin.staff[Role.AUDITOR])
    body = _problem(r, 400)
    assert body["type"].endswith("/invalid-request") and body["parameter"] == parameter, body


async def test_audit_with_valid_parameters_filters_and_limits(admin: Admin) -> None:
    for n in range(3):
        admin.service.warn(admin.partner, f"w{n}")
    aud = admin.staff[Role.AUDITOR]
    r = await admin.client.get(
        "/admin/v1/audit",
        params={"partner_id": admin.partner, "since": "2000-01-01T00:00:00-03:00", "limit": 2},
        headers=aud,
    )
    assert r.status_code == 200 and len(r.json()) == 2
    assert {e["partner_id"] for e in r.json()} == {admin.partner}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "suspension", "reason": "r", "until": "2099-01-01T00:00:00"}, "until"),
        ({"kind": "suspension", "reason": "r", "days": 1e300}, "days"),
        ({"kind": "suspension", "reason": "r", "days": -1}, "days"),
        ({"kind": "suspension", "reason": "", "days": 1}, "reason"),
        ({"kind": "warning", "reason": "x" * 5000}, "reason"),
    ],
)
async def test_bad_suspensions_are_400_and_change_nothing(
    admin: Admin, body: dict[str, Any], field: str
) -> None:
    before = admin.service.audit(limit=10_000)
    r = await admin.client.post(
        f"/admin/v1/partners/{admin.partner}/sanctions",
        json=body,
        headers=admin.staff[Role.OPERATOR],
    )
    problem = _problem(r, 400)
    assert field in problem["detail"], problem
    assert admin.service.audit(limit=10_000) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "fine", "reason": "r", "amount_ufemg": "NaN"}, "amount_ufemg"),
        ({"kind": "fine", "reason": "r", "amount_ufemg": "-5"}, "amount_ufemg"),
        ({"kind": "fine", "reason": "r", "percent": "101"}, "percent"),
        ({"kind": "fine", "reason": "r", "amount_ufemg": "5", "month": "2026-13"}, "month"),
    ],
)
async def test_bad_fines_are_400(admin: Admin, body: dict[str, Any], field: str) -> None:
    r = await admin.client.post(
        f"/admin/v1/partners/{admin.partner}/sanctions",
        json=body,
        headers=admin.staff[Role.FINANCE],
    )
    assert field in _problem(r, 400)["detail"]


@pytest.mark.parametrize(
    "extra",
    [
        {"rate_per_second": -5},
        {"rate_per_second": 0},
        {"rate_per_minute": -1},
        {"monthly_cap": -1},
        {"tables": [""]},
    ],
)
async def test_contract_limits_must_be_positive(admin: Admin, extra: dict[str, Any]) -> None:
    r = await admin.client.post(
        f"/admin/v1/partners/{admin.partner}/contracts",
        json={"kind": "sandbox", "start": "2026-01-01", "end": "2026-06-30", **extra},
        headers=admin.staff[Role.OPERATOR],
    )
    assert next(iter(extra)) in _problem(r, 400)["detail"]
    assert len(admin.service.contracts(admin.partner)) == 1  # only the one it was created with


def test_services_refuse_the_same_values_from_other_doors(admin: Admin) -> None:
    """The CLI and the console call the services directly: they check the same rules."""
    from datetime import date, datetime

    from dataflow.contracts.errors import InvalidInput

    with pytest.raises(InvalidInput, match="rate_per_second"):
        admin.service.authorize_sandbox(
            admin.partner, start=date(2026, 1, 1), end=date(2026, 6, 30), rate_per_second=-5
        )
    with pytest.raises(InvalidInput, match="days"):
        admin.service.suspend(admin.partner, "r", days=1e300)
    with pytest.raises(InvalidInput, match="until"):
        admin.service.suspend(admin.partner, "r", until=datetime(2099, 1, 1))


@pytest.mark.parametrize(
    "path",
    [
        "/admin/v1/partners/0",
        "/admin/v1/partners/99999999999999999999",
        "/admin/v1/contracts/2147483648",
    ],
)
async def test_path_ids_out_of_range_are_400(admin: Admin, path: str) -> None:
    r = await admin.client.get(path, headers=admin.staff[Role.OPERATOR])
    assert _problem(r, 400)["parameter"] in {"partner_id", "contract_id"}


async def test_staff_are_authenticated_before_the_body_is_decoded(admin: Admin) -> None:
    path = f"/admin/v1/partners/{admin.partner}/sanctions"
    for headers in ({}, {"Authorization": "Bearer df_0123456789abcdef_nope"}):
        r = await admin.client.post(path, content=b"{not json", headers=headers)
        _problem(r, 401)
    r = await admin.client.post(
        "/admin/v1/partners", content=b"[1,2", headers=admin.staff[Role.AUDITOR]
    )
    _problem(r, 403)  # a role the route does not admit: refused before decoding too
    r = await admin.client.post(path, content=b"{not json", headers=admin.staff[Role.OPERATOR])
    _problem(r, 400)


async def _raw_post(app: Litestar, path: str, token: str, chunks: list[bytes]) -> tuple[int, bytes]:
    """POST a body in several ASGI messages and no Content-Length, as a server hands a chunked
    request to the app (the test client always sends one message)."""
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def test_chunked_bodies_are_limited_too(admin: Admin) -> None:
    token = admin.staff[Role.OPERATOR]["Authorization"].split()[1]
    chunk = b" " * 65_536
    big = [
        b'{"name": "big", "plan": "sandbox"',
        *[chunk] * (MAX_BODY_BYTES // len(chunk) + 2),
        b"}",
    ]
    status, body = await _raw_post(admin.app, "/admin/v1/partners", token, big)
    assert status == 413 and b"/content-too-large" in body, body
    assert [p.name for p in admin.service.partners()] == ["Alpha"]
    small = [b'{"name": "small", ', b'"plan": "sandbox"}']
    status, body = await _raw_post(admin.app, "/admin/v1/partners", token, small)
    assert status == 201, body
