"""Authorization matrix: every admin endpoint × every role (and partner keys) → allow or deny.

Runs through the ASGI app on SQLite and PostgreSQL. Denied calls must change nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from dataflow.aggregation.release import ReleaseSummary
from dataflow.api.app import create_app
from dataflow.contracts.keys import parse_key
from dataflow.contracts.lifecycle import Event
from dataflow.contracts.models import ContractKind, Plan, Role
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.metering.embedded import EmbeddedMeter
from tests.conftest import make_settings

OP, FIN, AUD = Role.OPERATOR, Role.FINANCE, Role.AUDITOR
ALL = frozenset({OP, FIN, AUD})


@dataclass
class World:
    client: AsyncTestClient[Any]
    service: ContractsService
    staff: dict[Role, str]
    a: int  # partner A (the one whose key makes requests)
    b: int  # partner B (another partner)
    key_a: str
    key_b: str

    def auth(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture
async def world(tmp_path: Path, release: ReleaseSummary, database_url: str) -> AsyncIterator[World]:
    settings = make_settings(tmp_path, release_dir=release.path, database_url=database_url)
    service = ContractsService(make_engine(database_url))
    a = service.create_partner("Alpha Dados", Plan.CONTINUOUS, cnpj="11.222.333/0001-81")
    b = service.create_partner("Beta Secret Analytics", Plan.SANDBOX, monthly_cap=77)
    service.record_usage(b.id, "2026-10", 424242)
    staff = {role: service.create_staff(f"{role}-person", role) for role in Role}
    app = create_app(settings, meter=EmbeddedMeter(), contracts=service)
    async with AsyncTestClient(app) as client:
        yield World(
            client, service, staff, a.id, b.id, service.create_key(a.id), service.create_key(b.id)
        )


Target = Callable[[World], tuple[str, dict[str, Any] | None]]


def _fixed(path: str, body: dict[str, Any] | None = None) -> Target:
    return lambda w: (path.format(a=w.a, b=w.b), body)


def _fresh_contract(event: Event) -> Target:
    def make(w: World) -> tuple[str, dict[str, Any] | None]:
        c = w.service.request_supply(w.b, ContractKind.CONTINUOUS)
        if event is Event.SUSPEND:
            for e in (Event.PAY_FEE, Event.ISSUE_BUDGET, Event.ACCEPT):
                w.service.transition(c.id, e, budget_ufemg="100")
            w.service.transition(
                c.id, Event.ACTIVATE, terms_toml='kind = "continuous"\nstart = 2026-01-01\n'
            )
        return f"/admin/v1/contracts/{c.id}/events", {"event": event.value}

    return make


def _fresh_key(action: str) -> Target:
    def make(w: World) -> tuple[str, dict[str, Any] | None]:
        rep = w.service.members(w.b)[0]
        parsed = parse_key(w.service.create_key(w.b, member_id=rep.id))
        assert parsed is not None
        return f"/admin/v1/keys/{parsed[0]}/{action}", None

    return make


def _fresh_member(w: World) -> tuple[str, dict[str, Any] | None]:
    return f"/admin/v1/members/{w.service.add_member(w.b, 'Temp').id}", None


def _fresh_sandbox(w: World) -> tuple[str, dict[str, Any] | None]:
    c = w.service.authorize_sandbox(w.b, start=date(2026, 1, 1), end=date(2026, 12, 31))
    return f"/admin/v1/contracts/{c.id}/secrecy", None


def _fresh_suspension(w: World) -> tuple[str, dict[str, Any] | None]:
    s = w.service.suspend(w.b, "matrix", days=1)
    return f"/admin/v1/sanctions/{s.id}/lift", None


def _fresh_fine(w: World) -> tuple[str, dict[str, Any] | None]:
    s = w.service.fine(w.b, "matrix", "10")
    return f"/admin/v1/sanctions/{s.id}/lift", None


TERMS = 'kind = "continuous"\nstart = 2026-01-01\nunit_price_ufemg = "0.02"\n'


def _fresh_request(w: World) -> tuple[str, dict[str, Any] | None]:
    c = w.service.request_supply(w.b, ContractKind.CONTINUOUS)
    return f"/admin/v1/contracts/{c.id}/approved-terms", {"terms_toml": TERMS}


# (handler, case, method, target, roles allowed)
MATRIX: list[tuple[str, str, str, Target, frozenset[Role]]] = [
    ("list_partners", "list partners", "GET", _fixed("/admin/v1/partners"), ALL),
    (
        "create_partner",
        "register partner",
        "POST",
        _fixed("/admin/v1/partners", {"name": "N", "plan": "sandbox"}),
        frozenset({OP}),
    ),
    ("show_partner", "show partner", "GET", _fixed("/admin/v1/partners/{b}"), ALL),
    (
        "add_contact",
        "add contact",
        "POST",
        _fixed("/admin/v1/partners/{b}/contacts", {"kind": "technical", "name": "T"}),
        frozenset({OP}),
    ),
    (
        "partner_contracts",
        "partner contracts",
        "GET",
        _fixed("/admin/v1/partners/{b}/contracts"),
        ALL,
    ),
    (
        "create_contract",
        "request supply",
        "POST",
        _fixed("/admin/v1/partners/{b}/contracts", {"kind": "continuous"}),
        frozenset({OP}),
    ),
    (
        "create_contract",
        "authorize sandbox",
        "POST",
        _fixed(
            "/admin/v1/partners/{b}/contracts",
            {"kind": "sandbox", "start": "2026-01-01", "end": "2026-12-31"},
        ),
        frozenset({OP}),
    ),
    (
        "show_contract",
        "show contract",
        "GET",
        lambda w: (f"/admin/v1/contracts/{w.service.contracts(w.b)[0].id}", None),
        ALL,
    ),
    ("contract_event", "event pay_fee", "POST", _fresh_contract(Event.PAY_FEE), frozenset({FIN})),
    ("contract_event", "event suspend", "POST", _fresh_contract(Event.SUSPEND), frozenset({OP})),
    ("contract_secrecy", "secrecy term", "POST", _fresh_sandbox, frozenset({OP})),
    (
        "overdue_budgets",
        "overdue budgets",
        "GET",
        _fixed("/admin/v1/budgets/overdue"),
        frozenset({OP, FIN}),
    ),
    (
        "add_member",
        "add member",
        "POST",
        _fixed("/admin/v1/partners/{b}/members", {"name": "M"}),
        frozenset({OP}),
    ),
    ("remove_member", "remove member", "DELETE", _fresh_member, frozenset({OP})),
    ("list_keys", "list keys", "GET", _fixed("/admin/v1/partners/{b}/keys"), frozenset({OP, AUD})),
    (
        "create_key",
        "create key",
        "POST",
        _fixed("/admin/v1/partners/{a}/keys", {}),
        frozenset({OP}),
    ),
    ("revoke_key", "revoke key", "POST", _fresh_key("revoke"), frozenset({OP})),
    ("rotate_key", "rotate key", "POST", _fresh_key("rotate"), frozenset({OP})),
    ("list_sanctions", "list sanctions", "GET", _fixed("/admin/v1/sanctions"), ALL),
    (
        "impose_sanction",
        "warn",
        "POST",
        _fixed("/admin/v1/partners/{b}/sanctions", {"kind": "warning", "reason": "late report"}),
        frozenset({OP}),
    ),
    (
        "impose_sanction",
        "suspend",
        "POST",
        _fixed(
            "/admin/v1/partners/{b}/sanctions",
            {"kind": "suspension", "reason": "breach", "days": 1},
        ),
        frozenset({OP}),
    ),
    (
        "impose_sanction",
        "fine",
        "POST",
        _fixed(
            "/admin/v1/partners/{b}/sanctions",
            {"kind": "fine", "reason": "breach", "amount_ufemg": "500"},
        ),
        frozenset({FIN}),
    ),
    ("lift_sanction", "lift suspension", "POST", _fresh_suspension, frozenset({OP})),
    ("lift_sanction", "lift fine", "POST", _fresh_fine, frozenset({FIN})),
    ("approve_terms", "approve priced terms", "POST", _fresh_request, frozenset({FIN})),
    ("audit_log", "audit log", "GET", _fixed("/admin/v1/audit?partner_id={b}"), frozenset({AUD})),
    ("usage_report_csv", "usage csv", "GET", _fixed("/admin/v1/partners/{b}/usage.csv"), ALL),
    ("usage_report_png", "usage png", "GET", _fixed("/admin/v1/partners/{b}/usage.png"), ALL),
]


async def test_authorization_matrix(world: World) -> None:
    """One app per database, every row of the matrix against it (denials first, so a denied
    call can be shown to change nothing before an allowed one changes something)."""
    for _handler, name, method, target, allowed in MATRIX:
        principals: list[tuple[str, str | None, bool]] = [
            *((role.value, world.staff[role], role in allowed) for role in Role),
            ("partner key (its own or another's data)", world.key_a, False),
            ("no credential", None, False),
        ]
        for who, token, expect_allowed in sorted(principals, key=lambda p: p[2]):
            path, body = target(world)
            audit_before = world.service.audit(limit=100_000)
            r = await world.client.request(method, path, json=body, headers=world.auth(token))
            if expect_allowed:
                assert r.status_code in (200, 201), (name, who, r.status_code, r.text)
                continue
            expected = 403 if token and token.startswith("dfa_") else 401
            assert r.status_code == expected, (name, who, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert world.service.audit(limit=100_000) == audit_before, f"denied {name} changed"


def test_every_admin_route_is_in_the_matrix() -> None:
    from dataflow.api.admin.routes import admin_router

    handlers = {
        h.handler_name
        for route in admin_router.routes
        for h in getattr(route, "route_handlers", [])
        if h.handler_name != "options_handler"
    }
    assert handlers == {m[0] for m in MATRIX}


def test_every_admin_route_declares_the_roles_its_guard_admits() -> None:
    """The guard checks the roles before anything is decoded; a route without them admits
    nobody (fail closed), so each must declare them, and the matrix's roles are within them."""
    from dataflow.api.admin.auth import ROLES_OPT
    from dataflow.api.admin.routes import admin_router

    declared = {
        h.handler_name: set(h.opt.get(ROLES_OPT, ()))
        for route in admin_router.routes
        for h in getattr(route, "route_handlers", [])
        if h.handler_name != "options_handler"
    }
    for handler, case, _method, _target, allowed in MATRIX:
        assert declared[handler], handler
        assert allowed <= declared[handler], (handler, case)


async def test_partner_sees_only_its_own_account(world: World) -> None:
    r = await world.client.get("/v1/account", headers=world.auth(world.key_a))
    assert r.status_code == 200
    body = r.json()
    assert body["partner"]["id"] == world.a and body["entitlement"]["partner_id"] == world.a
    assert "Beta" not in r.text and str(world.b) not in {str(body["partner"]["id"])}
    csv_a = await world.client.get("/v1/account/usage.csv", headers=world.auth(world.key_a))
    csv_b = await world.client.get("/v1/account/usage.csv", headers=world.auth(world.key_b))
    assert "424242" not in csv_a.text and "424242" in csv_b.text
    png = await world.client.get("/v1/account/usage.png", headers=world.auth(world.key_b))
    assert png.content.startswith(b"\x89PNG")
    # a partner key is no admin credential, and a staff credential is no partner key
    for path in (f"/admin/v1/partners/{world.b}", f"/admin/v1/partners/{world.b}/usage.csv"):
        assert (await world.client.get(path, headers=world.auth(world.key_a))).status_code == 401
    staff = world.auth(world.staff[Role.OPERATOR])
    assert (await world.client.get("/v1/account", headers=staff)).status_code == 401


async def test_domain_errors_are_problems(world: World) -> None:
    op, fin = world.auth(world.staff[Role.OPERATOR]), world.auth(world.staff[Role.FINANCE])
    c = world.service.request_supply(world.b, ContractKind.CONTINUOUS)
    r = await world.client.post(
        f"/admin/v1/contracts/{c.id}/events", json={"event": "activate"}, headers=op
    )
    assert r.status_code == 409 and r.json()["allowed"] == ["pay_fee", "cancel"]
    r = await world.client.post(
        "/admin/v1/partners", json={"name": "X", "plan": "sandbox", "cnpj": "1"}, headers=op
    )
    assert r.status_code == 422 and r.json()["field"] == "cnpj"
    r = await world.client.get("/admin/v1/partners/999", headers=fin)
    assert r.status_code == 404
    r = await world.client.post("/admin/v1/partners", json={"nome": "X"}, headers=op)
    assert r.status_code == 400


async def test_priced_terms_need_finance(world: World) -> None:
    """An operator puts in force only the terms finance approved on the contract (Art. 11, 13)."""
    op, fin = world.auth(world.staff[Role.OPERATOR]), world.auth(world.staff[Role.FINANCE])
    c = world.service.request_supply(world.b, ContractKind.CONTINUOUS)
    for e in (Event.PAY_FEE, Event.ISSUE_BUDGET, Event.ACCEPT):
        world.service.transition(c.id, e, budget_ufemg="100")
    events = f"/admin/v1/contracts/{c.id}/events"
    r = await world.client.post(events, json={"event": "activate", "terms_toml": TERMS}, headers=op)
    assert r.status_code == 403 and "finance" in r.json()["detail"]
    assert world.service.contract(c.id).state == "accepted"  # nothing changed
    r = await world.client.post(
        f"/admin/v1/contracts/{c.id}/approved-terms", json={"terms_toml": TERMS}, headers=fin
    )
    assert r.status_code == 200
    cheaper = TERMS.replace("0.02", "0.01")
    r = await world.client.post(
        events, json={"event": "activate", "terms_toml": cheaper}, headers=op
    )
    assert r.status_code == 403  # not the approved terms
    r = await world.client.post(events, json={"event": "activate"}, headers=op)
    assert r.status_code == 200 and r.json()["terms_toml"] == TERMS  # the approved ones
    actions = [e.action for e in world.service.audit(entity="contract") if e.entity_id == str(c.id)]
    assert actions[-2:] == ["contract.approve_terms", "contract.activate"]


async def test_overdue_invoices_show_on_the_account_and_in_metrics(world: World) -> None:
    """Art. 14–16: an unpaid DAE past its due date is on the partner's account and in metrics."""
    from dataflow.billing.budget import analysis_fee_lines
    from dataflow.billing.reference import BillingReference
    from dataflow.billing.service import BillingService

    billing = BillingService(
        world.service.engine, BillingReference.load(Path(__file__).parents[3] / "datasets")
    )
    rate, lines = analysis_fee_lines(date(2026, 1, 5), billing.ref.ufemg)
    inv = billing.lifecycle.create_request_invoice(
        kind="analysis_fee",
        payer_name="Alpha Dados",
        payer_cnpj=None,
        lines=lines,
        brl_per_ufemg=rate,
        partner_id=world.a,
        now=datetime(2026, 1, 5, 12, tzinfo=UTC),  # due 2026-01-20: long past
    )
    r = await world.client.get("/v1/account", headers=world.auth(world.key_a))
    [late] = r.json()["overdue_invoices"]
    assert late["number"] == inv.number and late["due_date"] == "2026-01-20"
    other = await world.client.get("/v1/account", headers=world.auth(world.key_b))
    assert other.json()["overdue_invoices"] == []
    metrics = (await world.client.get("/metrics")).text
    assert "dataflow_billing_overdue_invoices 1.0" in metrics
    assert f"dataflow_billing_overdue_brl {float(inv.total_brl)}" in metrics
