"""Operators (STI): partners, their contracts' lifecycle, team, keys and sanctions; the audit log.

Lifecycle buttons come from the same state machine the service enforces (``allowed_events``)
and the same role table as the admin API (``EVENT_ROLES``): what is not allowed is not shown,
and if it were posted anyway the service would refuse it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from dataflow.api.console.charts import Bar, bar_chart
from dataflow.api.console.context import ConsoleState, console_state
from dataflow.api.console.errors import DomainError, explain
from dataflow.api.console.render import act, form, page, pt, query_url, see_other
from dataflow.api.console.session import Forbidden, Viewer, flash, staff
from dataflow.api.console.views import contract_terms, month_param, today
from dataflow.billing.compute import month_bounds
from dataflow.contracts.actors import EVENT_ROLES
from dataflow.contracts.errors import ContractInvalid, PartnerNotFound
from dataflow.contracts.lifecycle import EndReason, Event, allowed_events
from dataflow.contracts.models import Contract, Role, SanctionKind
from dataflow.contracts.service import current_contract
from dataflow.ptbr import mes_curto

__all__ = ["OPERATOR_HANDLERS", "usage_chart"]

OP = (Role.OPERATOR,)
STAFF = (Role.FINANCE, Role.OPERATOR, Role.AUDITOR)
PER_PAGE = 50

# Who may impose and lift each sanction, as ``SanctionsOps`` requires (fines are finance's): the
# buttons follow it, the service enforces it.
SANCTION_ROLES = {
    SanctionKind.FINE: (Role.FINANCE,),
    SanctionKind.WARNING: (Role.OPERATOR,),
    SanctionKind.SUSPENSION: (Role.OPERATOR,),
}
EVENT_NAMES = {
    Event.PAY_FEE: "Registrar taxa de análise paga (Art. 9º)",
    Event.ISSUE_BUDGET: "Emitir orçamento",
    Event.ACCEPT: "Registrar aceite (Art. 14)",
    Event.ACTIVATE: "Ativar",
    Event.EXTEND: "Prorrogar janela",
    Event.SUSPEND: "Suspender contrato",
    Event.RESUME: "Retomar contrato",
    Event.END: "Encerrar",
    Event.MIGRATE: "Migrar para fornecimento pago",
    Event.CANCEL: "Cancelar",
}


@get("/parceiros")
async def partners_page(request: Request[Any, Any, Any], state: State) -> Template:
    console = console_state(state)
    seen = await staff(request, console, *STAFF)
    q = (request.query_params.get("q") or "").strip()
    raw_page = request.query_params.get("pagina", "1")
    page_no = max(1, int(raw_page)) if raw_page.isdigit() else 1

    def load() -> tuple[list[Any], int]:
        everyone = console.contracts.partners()
        needle = q.lower()
        digits = "".join(ch for ch in q if ch.isalnum()).upper()
        found = [
            p
            for p in everyone
            if not q
            or needle in p.name.lower()
            or (digits and p.cnpj and digits in p.cnpj)
            or q == str(p.id)
        ]
        shown = found[(page_no - 1) * PER_PAGE : page_no * PER_PAGE]
        ents = console.contracts.entitlements([p.id for p in shown]) if shown else {}
        return [(p, ents.get(p.id)) for p in shown], len(found)

    rows, total = await asyncio.to_thread(load)
    return page(
        "parceiros.html",
        seen,
        rows=rows,
        total=total,
        q=q,
        page_no=page_no,
        pages=max(1, -(-total // PER_PAGE)),
    )


def usage_chart(
    usage: dict[str, int], contract: Contract | None, franchise: int | None
) -> tuple[Any, list[tuple[str, int, bool]]]:
    """The last 12 months of settled accesses, cap and franchise lines, months outside the
    authorization window dimmed."""
    months: list[str] = []
    day = today().replace(day=1)
    for _ in range(12):
        months.append(f"{day:%Y-%m}")
        day = date(day.year - (day.month == 1), (day.month - 2) % 12 + 1, 1)
    months.reverse()
    rows = []
    for m in months:
        first, last, _ = month_bounds(m)
        inside = contract is None or (
            (contract.start_date is None or contract.start_date <= last)
            and (contract.end_date is None or contract.end_date >= first)
        )
        rows.append((m, usage.get(m, 0), inside))
    lines: list[tuple[str, int]] = []
    if contract is not None and contract.monthly_cap:
        lines.append(("limite", contract.monthly_cap))
    if franchise:
        lines.append(("franquia", franchise))
    chart = bar_chart(
        "Acessos por mês (liquidados), com limite, franquia e janela de autorização",
        [Bar(mes_curto(m), [n], dim=not inside) for m, n, inside in rows],
        ["acessos"],
        lines=lines,
    )
    return chart, rows


def _events(contract: Contract, seen: Viewer) -> list[tuple[Event, str, bool]]:
    """(event, label, whether this person may do it) for every event the state allows."""
    return [
        (e, EVENT_NAMES[e], seen.role in EVENT_ROLES[e])
        for e in allowed_events(contract.kind, contract.state)
    ]


@get("/parceiros/{partner_id:int}")
async def partner_page(
    request: Request[Any, Any, Any], state: State, partner_id: FromPath[int]
) -> Template:
    console = console_state(state)
    seen = await staff(request, console, *STAFF)
    c = console.contracts

    def load() -> dict[str, Any]:
        try:
            partner = c.partner(partner_id)
        except PartnerNotFound:
            raise NotFoundException(f"parceiro {partner_id}") from None
        contracts = c.contracts(partner_id)
        current = current_contract(contracts)
        franchise = None
        if current is not None:
            try:
                terms = contract_terms(current)
                franchise = terms.franchise_accesses if terms and terms.franchise_accesses else None
            except ContractInvalid:
                franchise = None
        chart, usage_rows = usage_chart(c.usage_by_month(partner_id), current, franchise)
        return {
            "partner": partner,
            "entitlement": c.entitlement(partner_id),
            "contracts": [(k, _events(k, seen)) for k in reversed(contracts)],
            "current": current,
            "members": c.members(partner_id, include_removed=True),
            "keys": c.keys(partner_id) if seen.role in (Role.OPERATOR, Role.AUDITOR) else None,
            "sanctions": list(reversed(c.sanctions(partner_id))),
            "chart": chart,
            "usage_rows": usage_rows,
            "franchise": franchise,
            "invoices": console.reports.invoices(today=today(), partner_id=partner_id, per_page=12),
        }

    view = await asyncio.to_thread(load)
    return page(
        "parceiro.html",
        seen,
        now=datetime.now(UTC),
        is_op=seen.can(*OP),
        is_fin=seen.can(Role.FINANCE),
        sanction_roles=SANCTION_ROLES,
        end_reasons=[EndReason.EXPIRY, EndReason.REQUEST],
        **view,
    )


@post("/contratos/{contract_id:int}/eventos")
async def contract_event(
    request: Request[Any, Any, Any], state: State, contract_id: FromPath[int]
) -> Redirect:
    console = console_state(state)
    seen = await staff(request, console, *STAFF)
    f = await form(request)
    try:
        event = Event(f.get("evento", ""))
    except ValueError:
        raise Forbidden(f"Evento desconhecido: {f.get('evento', '')[:40]!r}.") from None
    if seen.role not in EVENT_ROLES[event]:
        raise Forbidden("Este evento do contrato cabe a outro perfil.")
    contract = await asyncio.to_thread(console.contracts.contract, contract_id)
    new_end = date.fromisoformat(f["novo_fim"]) if f.get("novo_fim") else None
    reason = EndReason(f["motivo"]) if f.get("motivo") in set(EndReason) else None
    return await act(
        console,
        seen,
        f"/console/parceiros/{contract.partner_id}",
        lambda: console.contracts.transition(
            contract_id,
            event,
            actor=seen.actor,
            budget_ufemg=f.get("orcamento") or None,
            terms_toml=f.get("termos") or None,
            new_end=new_end,
            reason=reason,
        ),
        lambda k: f"Contrato {k.id}: {EVENT_NAMES[event].lower()} — agora “{pt(k.state)}”.",
    )


@post("/parceiros/{partner_id:int}/membros")
async def add_member(
    request: Request[Any, Any, Any], state: State, partner_id: FromPath[int]
) -> Redirect:
    console = console_state(state)
    seen = await staff(request, console, *OP)
    f = await form(request)
    return await act(
        console,
        seen,
        f"/console/parceiros/{partner_id}",
        lambda: console.contracts.add_member(
            partner_id, f.get("nome", ""), email=f.get("email") or None, actor=seen.actor
        ),
        lambda m: f"{m.name} entrou na equipe autorizada (membro {m.id}).",
    )


@post("/membros/{member_id:int}/remover")
async def remove_member(
    request: Request[Any, Any, Any], state: State, member_id: FromPath[int]
) -> Redirect:
    console = console_state(state)
    seen = await staff(request, console, *OP)
    m = await asyncio.to_thread(console.contracts.member, member_id)
    return await act(
        console,
        seen,
        f"/console/parceiros/{m.partner_id}",
        lambda: console.contracts.remove_member(member_id, actor=seen.actor),
        lambda revoked: f"{m.name} saiu da equipe; {len(revoked)} chave(s) revogada(s).",
    )


async def _shown_once(
    console: ConsoleState,
    seen: Viewer,
    back: str,
    title: str,
    what: str,
    action: Any,
    link: bool = False,
) -> Template | Redirect:
    """A secret (key, invitation) is shown on the response page itself, never in a redirect."""
    try:
        secret = await asyncio.to_thread(action)
    except DomainError as e:
        await flash(console, seen, explain(e), ok=False)
        return see_other(back)
    return page("segredo.html", seen, title=title, what=what, secret=secret, back=back, link=link)


@post("/membros/{member_id:int}/convite")
async def invite_member(
    request: Request[Any, Any, Any], state: State, member_id: FromPath[int]
) -> Template | Redirect:
    console = console_state(state)
    seen = await staff(request, console, *OP)
    m = await asyncio.to_thread(console.contracts.member, member_id)
    return await _shown_once(
        console,
        seen,
        f"/console/parceiros/{m.partner_id}",
        f"Convite de {m.name}",
        "Envie este endereço a quem foi convidado: vale por 7 dias, uma vez, para definir a "
        "senha do console (o login é o e-mail). Ele não será mostrado de novo.",
        lambda: query_url(
            str(request.base_url).rstrip("/") + "/console/convite",
            token=console.contracts.invite_member(member_id, actor=seen.actor),
        ),
        link=True,
    )


@post("/parceiros/{partner_id:int}/chaves")
async def create_key(
    request: Request[Any, Any, Any], state: State, partner_id: FromPath[int]
) -> Template | Redirect:
    console = console_state(state)
    seen = await staff(request, console, *OP)
    f = await form(request)
    member_id = int(f["membro"]) if f.get("membro", "").isdigit() else None
    return await _shown_once(
        console,
        seen,
        f"/console/parceiros/{partner_id}",
        "Nova chave de API",
        "Copie a chave agora: só o seu hash fica guardado, ela não será mostrada de novo.",
        lambda: console.contracts.create_key(partner_id, member_id=member_id, actor=seen.actor),
    )


@post("/chaves/{key_id:str}/revogar")
async def revoke_key(
    request: Request[Any, Any, Any], state: State, key_id: FromPath[str]
) -> Redirect:
    console = console_state(state)
    seen = await staff(request, console, *OP)
    key = await asyncio.to_thread(console.contracts.key, key_id)
    return await act(
        console,
        seen,
        f"/console/parceiros/{key.partner_id}",
        lambda: console.contracts.revoke_key(
            key_id, reason="revogada no console", actor=seen.actor
        ),
        lambda ok: f"Chave {key_id} revogada." if ok else f"A chave {key_id} já estava revogada.",
    )


@post("/chaves/{key_id:str}/rotacionar")
async def rotate_key(
    request: Request[Any, Any, Any], state: State, key_id: FromPath[str]
) -> Template | Redirect:
    console = console_state(state)
    seen = await staff(request, console, *OP)
    key = await asyncio.to_thread(console.contracts.key, key_id)
    return await _shown_once(
        console,
        seen,
        f"/console/parceiros/{key.partner_id}",
        "Chave rotacionada",
        f"A chave {key_id} deixou de valer. Copie a nova agora: ela não será mostrada de novo.",
        lambda: console.contracts.rotate_key(key_id, actor=seen.actor),
    )


@post("/parceiros/{partner_id:int}/sancoes")
async def impose_sanction(
    request: Request[Any, Any, Any], state: State, partner_id: FromPath[int]
) -> Redirect:
    """Art. 45 I–II: warning or suspension (fines are finance's: ``/multa``)."""
    console = console_state(state)
    seen = await staff(request, console, *OP)
    f = await form(request)
    reason, kind = f.get("motivo", ""), f.get("tipo", "")
    c = console.contracts
    if kind == "suspensao":
        days = float(f["dias"].replace(",", ".")) if f.get("dias") else None

        def call() -> Any:
            return c.suspend(partner_id, reason, days=days, actor=seen.actor)
    else:

        def call() -> Any:
            return c.warn(partner_id, reason, actor=seen.actor)

    return await act(
        console,
        seen,
        f"/console/parceiros/{partner_id}",
        call,
        lambda s: (
            f"Sanção {s.id} aplicada ({'suspensão' if kind == 'suspensao' else 'advertência'})."
        ),
    )


@post("/sancoes/{sanction_id:int}/levantar")
async def lift_sanction(
    request: Request[Any, Any, Any], state: State, sanction_id: FromPath[int]
) -> Redirect:
    console = console_state(state)
    await staff(request, console, *STAFF)
    sanction = await asyncio.to_thread(console.contracts.sanction, sanction_id)
    seen = await staff(request, console, *SANCTION_ROLES[sanction.kind])
    return await act(
        console,
        seen,
        f"/console/parceiros/{sanction.partner_id}",
        lambda: console.contracts.lift(sanction_id, actor=seen.actor),
        lambda s: f"Sanção {s.id} levantada.",
    )


@get("/auditoria")
async def audit_page(request: Request[Any, Any, Any], state: State) -> Template:
    console = console_state(state)
    seen = await staff(request, console, Role.AUDITOR)
    q = request.query_params
    partner = int(q["parceiro"]) if q.get("parceiro", "").isdigit() else None
    before = int(q["antes"]) if q.get("antes", "").isdigit() else None
    since_day = month_param(q.get("desde", "")[:7]) and q.get("desde")
    since = None
    if since_day:
        try:
            since = datetime.fromisoformat(since_day).replace(tzinfo=UTC)
        except ValueError:
            since = None
    entries = await asyncio.to_thread(
        console.contracts.audit,
        partner_id=partner,
        entity=q.get("entidade") or None,
        action=q.get("acao") or None,
        since=since,
        before_id=before,
        newest_first=True,
        limit=100,
    )
    filters = {
        "parceiro": q.get("parceiro", ""),
        "entidade": q.get("entidade", ""),
        "acao": q.get("acao", ""),
        "desde": q.get("desde", ""),
    }
    older = (
        query_url("/console/auditoria", antes=entries[-1].id, **filters)
        if len(entries) == 100
        else None
    )
    return page("auditoria.html", seen, entries=entries, filters=filters, older=older)


OPERATOR_HANDLERS = [
    partners_page,
    partner_page,
    contract_event,
    add_member,
    remove_member,
    invite_member,
    create_key,
    revoke_key,
    rotate_key,
    impose_sanction,
    lift_sanction,
    audit_page,
]
