"""The console adds no back door: CSRF on every form, roles and partners kept apart, sessions that
end, every action in the audit log, cookies that scripts and other sites cannot use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient

from dataflow.contracts.actors import Actor
from dataflow.contracts.models import Role
from dataflow.contracts.service import SessionPolicy
from tests.api.console.conftest import PASSWORD, Console


async def test_sign_in_sets_a_strict_http_only_cookie_and_refuses_api_keys(
    console: Console,
) -> None:
    token = await console.csrf()
    r = await console.client.post(
        "/console/entrar",
        data={
            "login": console.paid_login,
            "segredo": console.keys[console.paid],
            "_csrf_token": token,
        },
    )
    assert r.status_code == 401 and "não conferem" in r.text  # the API key is not a console login
    r = await console.client.post(
        "/console/entrar",
        data={"login": console.paid_login, "segredo": PASSWORD, "_csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/conta"
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and "df_console" in v)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http here; over https the cookie is Secure


async def test_the_session_cookie_is_secure_over_https(console: Console) -> None:
    async with AsyncTestClient(console.client.app, base_url="https://testserver.local") as tls:
        page = await tls.get("/console/entrar")
        token = page.text.split('name="_csrf_token" value="')[1].split('"')[0]
        r = await tls.post(
            "/console/entrar",
            data={"login": "", "segredo": console.staff[Role.FINANCE], "_csrf_token": token},
            follow_redirects=False,
        )
        cookie = next(v for k, v in r.headers.multi_items() if "df_console" in v)
        assert r.status_code == 303 and "Secure" in cookie


@pytest.mark.parametrize(
    "path",
    [
        "/console/financeiro/executar",
        "/console/financeiro/faturas/1/emitir",
        "/console/parceiros/1/sancoes",
        "/console/sair",
        "/console/entrar",
    ],
)
async def test_forms_without_the_csrf_token_are_refused_and_change_nothing(
    console: Console, path: str
) -> None:
    await console.as_staff(Role.FINANCE if "financeiro" in path else Role.OPERATOR)
    before = console.contracts.audit(limit=100_000)
    r = await console.client.post(
        path, data={"mes": "2026-11", "tipo": "advertencia", "motivo": "x"}
    )
    assert r.status_code == 403 and "CSRF" in r.text
    forged = await console.client.post(
        path, data={"mes": "2026-11", "_csrf_token": "0" * 128}, follow_redirects=False
    )
    assert forged.status_code == 403
    assert console.contracts.audit(limit=100_000) == before


async def test_a_partner_session_reaches_no_staff_page(console: Console) -> None:
    await console.as_member(console.paid_login)
    for path in (
        "/console/financeiro",
        "/console/parceiros",
        f"/console/parceiros/{console.sandbox}",
        "/console/auditoria",
        "/console/contratos/1",
    ):
        r = await console.client.get(path)
        assert r.status_code == 403, path
        assert "equipe da SEF/MG" in r.text
    r = await console.post(
        "/console/financeiro/executar", {"mes": "2026-11"}, page="/console/conta"
    )
    assert getattr(r, "status_code", 0) == 403


async def test_a_partner_cannot_see_another_partners_invoice_or_records(console: Console) -> None:
    from dataflow.api.console.context import ConsoleState

    state: ConsoleState = console.client.app.state.console
    state.billing.run_month("2026-11", actor=Actor("test"))
    sandbox_invoice = next(
        i for i in state.billing.lifecycle.list_invoices() if i.partner_id == console.sandbox
    )
    state.billing.lifecycle.issue(sandbox_invoice.id, actor=Actor("test"))
    await console.as_member(console.paid_login)
    for path in (
        f"/console/conta/faturas/{sandbox_invoice.id}",
        f"/console/faturas/{sandbox_invoice.id}/dae.pdf",
        f"/console/faturas/{sandbox_invoice.id}/acessos.csv",
    ):
        r = await console.client.get(path)
        assert r.status_code == 404, path  # not even its existence
    # the member's own records come from the session's partner: no parameter names another
    r = await console.client.get(
        f"/console/conta/acessos.csv?mes=2026-11&parceiro={console.sandbox}"
    )
    assert r.status_code == 200 and r.text.splitlines() == [r.text.splitlines()[0]]
    await console.as_member(console.sandbox_login)
    r = await console.client.get(f"/console/faturas/{sandbox_invoice.id}/dae.csv")
    assert r.status_code == 200


async def test_roles_apply_as_in_the_admin_api(console: Console) -> None:
    await console.as_staff(Role.AUDITOR)
    r = await console.post(
        "/console/financeiro/executar", {"mes": "2026-11"}, page="/console/financeiro"
    )
    assert getattr(r, "status_code", 0) == 403
    await console.as_staff(Role.OPERATOR)
    r = await console.post(
        f"/console/parceiros/{console.paid}/multa",
        {"ufemg": "10", "motivo": "x"},
        page=f"/console/parceiros/{console.paid}",
    )
    assert getattr(r, "status_code", 0) == 403  # fines are finance's
    assert not [s for s in console.contracts.sanctions(console.paid) if s.kind == "fine"]
    await console.as_staff(Role.FINANCE)
    r = await console.client.get("/console/auditoria")
    assert r.status_code == 403  # the audit log is the auditor's


async def test_sessions_end_when_idle_when_old_and_on_sign_out(console: Console) -> None:
    await console.as_member(console.paid_login)
    assert (await console.client.get("/console/conta")).status_code == 200
    token = console.client.cookies.get("df_console")
    assert token
    c = console.contracts
    later = datetime.now(UTC) + timedelta(minutes=31)
    c._clock = lambda: later  # the service's clock moves; no sleeping
    try:
        assert c.console_session(token, SessionPolicy(idle_minutes=30)) is None
    finally:
        c._clock = lambda: datetime.now(UTC)
    r = await console.client.get("/console/conta", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/entrar")
    # an ended session stays ended
    assert c.console_session(token, SessionPolicy()) is None
    await console.as_member(console.paid_login)
    token = console.client.cookies.get("df_console")
    assert token
    old = datetime.now(UTC) + timedelta(hours=13)
    c._clock = lambda: old
    try:
        assert c.console_session(token, SessionPolicy(idle_minutes=10_000, max_hours=12)) is None
    finally:
        c._clock = lambda: datetime.now(UTC)
    await console.as_member(console.paid_login)
    r = await console.post("/console/sair", {}, page="/console/conta")
    assert getattr(r, "status_code", 0) == 303
    r = await console.client.get("/console/conta", follow_redirects=False)
    assert r.status_code == 303


async def test_removing_a_member_ends_their_session(console: Console) -> None:
    await console.as_member(console.paid_login)
    assert (await console.client.get("/console/conta")).status_code == 200
    member = next(m for m in console.contracts.members(console.paid) if m.email)
    console.contracts.remove_member(member.id, actor=Actor("test"))
    r = await console.client.get("/console/conta", follow_redirects=False)
    assert r.status_code == 303


async def test_every_console_action_is_in_the_audit_log(console: Console) -> None:
    """Each action, by whom: the person's name and role as the actor."""
    c = console.contracts
    await console.as_staff(Role.OPERATOR)
    pid = console.paid
    page = f"/console/parceiros/{pid}"
    rep = c.members(pid)[0]
    await console.post(
        f"/console/parceiros/{pid}/membros",
        {"nome": "Caio", "email": "caio@acme.example"},
        page=page,
    )
    caio = next(m for m in c.members(pid) if m.name == "Caio")
    await console.post(f"/console/membros/{caio.id}/convite", {}, page=page)
    await console.post(f"/console/parceiros/{pid}/chaves", {"membro": str(rep.id)}, page=page)
    key = next(k for k in c.keys(pid) if k.member_id == rep.id and k.revoked_at is None)
    await console.post(f"/console/chaves/{key.key_id}/rotacionar", {}, page=page)
    fresh = next(k for k in c.keys(pid) if k.member_id == rep.id and k.revoked_at is None)
    await console.post(f"/console/chaves/{fresh.key_id}/revogar", {}, page=page)
    await console.post(
        f"/console/parceiros/{pid}/sancoes", {"tipo": "advertencia", "motivo": "aviso"}, page=page
    )
    await console.post(
        f"/console/parceiros/{pid}/sancoes",
        {"tipo": "suspensao", "dias": "2", "motivo": "s"},
        page=page,
    )
    suspension = next(s for s in c.sanctions(pid) if s.kind == "suspension")
    await console.post(f"/console/sancoes/{suspension.id}/levantar", {}, page=page)
    contract = c.contracts(pid)[0]
    await console.post(
        f"/console/contratos/{contract.id}/eventos", {"evento": "suspend"}, page=page
    )
    await console.post(f"/console/contratos/{contract.id}/eventos", {"evento": "resume"}, page=page)
    await console.post(f"/console/membros/{caio.id}/remover", {}, page=page)
    operator_actions = {
        e.action for e in c.audit(limit=100_000) if e.actor.startswith("staff:Servidor operator")
    }
    assert {
        "console.sign_in",
        "member.add",
        "member.invite",
        "key.create",
        "key.revoke",
        "sanction.warning",
        "sanction.suspension",
        "sanction.lift",
        "contract.suspend",
        "contract.resume",
        "member.remove",
    } <= operator_actions

    await console.as_staff(Role.FINANCE)
    await console.post(
        "/console/financeiro/executar", {"mes": "2026-11"}, page="/console/financeiro"
    )
    state = console.client.app.state.console
    inv = next(
        i for i in state.billing.lifecycle.list_invoices(month="2026-11") if i.partner_id == pid
    )
    ipage = f"/console/financeiro/faturas/{inv.id}"
    await console.post(f"{ipage}/emitir", {}, page=ipage)
    await console.post(f"{ipage}/credito", {"ufemg": "100", "motivo": "acerto"}, page=ipage)
    await console.post(f"{ipage}/pagamento", {"valor": "1,00", "data": "2026-12-01"}, page=ipage)
    await console.post(
        f"/console/parceiros/{pid}/multa", {"ufemg": "10", "motivo": "atraso"}, page=page
    )
    fine = next(s for s in c.sanctions(pid) if s.kind == "fine")
    await console.post(f"/console/sancoes/{fine.id}/levantar", {}, page=page)
    drafts = [
        i for i in state.billing.lifecycle.list_invoices(month="2026-11") if i.status == "draft"
    ]
    await console.post(
        f"/console/financeiro/faturas/{drafts[0].id}/anular", {"motivo": "teste"}, page=ipage
    )
    finance_actions = {e.action for e in c.audit(limit=100_000) if "(finance)" in e.actor}
    assert {
        "billing.run.finish",
        "invoice.issue",
        "credit_note.create",
        "payment.record",
        "sanction.fine",
        "sanction.lift",
        "invoice.void",
    } <= finance_actions

    await console.as_member(console.paid_login)
    own = console.keys[pid]
    key_id = own.split("_")[1]
    await console.post(f"/console/conta/chaves/{key_id}/revogar", {}, page="/console/conta")
    await console.post("/console/sair", {}, page="/console/conta")
    member_actions = {e.action for e in c.audit(limit=100_000) if e.actor.startswith("member:Ana")}
    assert {"console.sign_in", "key.revoke", "console.sign_out"} <= member_actions


async def test_an_invitation_sets_a_password_once(console: Console) -> None:
    c = console.contracts
    m = c.add_member(console.paid, "Duda", email="duda@acme.example")
    token = c.invite_member(m.id, actor=Actor("test"))
    csrf = await console.csrf(f"/console/convite?token={token}")
    r = await console.client.post(
        "/console/convite",
        data={"token": token, "nova": "x" * 14, "confirmacao": "x" * 14, "_csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/conta"
    assert c.authenticate("DUDA@acme.example", "x" * 14) is not None
    r = await console.client.post(
        "/console/convite",
        data={"token": token, "nova": "y" * 14, "confirmacao": "y" * 14, "_csrf_token": csrf},
    )
    assert r.status_code == 422 and "convite" in r.text
