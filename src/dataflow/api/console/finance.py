"""Finance (SAIF): the month's close, invoices and their actions, fines, contract prices.

Every action is one call to billing's or the control plane's services with the person as the
actor, so it is refused, numbered and audited exactly as from the CLI.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect, Template

from dataflow.api.console.charts import Bar, bar_chart
from dataflow.api.console.context import ConsoleState, console_state
from dataflow.api.console.render import act, form, page, query_url
from dataflow.api.console.session import staff
from dataflow.api.console.views import contract_view, invoice_view, month_param, today
from dataflow.billing.reading.reports import STATUSES
from dataflow.contracts.actors import Actor
from dataflow.contracts.models import Role
from dataflow.ptbr import mes_curto

__all__ = ["FINANCE_HANDLERS"]

FIN = (Role.FINANCE,)
STAFF = (Role.FINANCE, Role.OPERATOR, Role.AUDITOR)


def _previous_month() -> str:
    first = today().replace(day=1)
    return f"{first - timedelta(days=1):%Y-%m}"


def _decimal(raw: str, what: str) -> Decimal:
    try:
        value = Decimal(raw.replace(".", "").replace(",", ".") if "," in raw else raw)
    except InvalidOperation:
        raise ValueError(f"{what} {raw!r} não é um número (use 1234,56)") from None
    if not value.is_finite():
        raise ValueError(f"{what} {raw!r} não é um número")
    return value


@get("/financeiro")
async def month_close(request: Request[Any, Any, Any], state: State) -> Template:
    console = console_state(state)
    seen = await staff(request, console, *STAFF)
    q = request.query_params
    month = month_param(q.get("mes")) or _previous_month()
    status = q.get("status") if q.get("status") in STATUSES else None
    page_no = int(q.get("pagina", "1")) if q.get("pagina", "1").isdigit() else 1
    day = today()

    def load() -> dict[str, Any]:
        revenue = console.reports.revenue_by_month(12)
        return {
            "close": console.reports.month_close(month, day),
            "revenue": revenue,
            "invoices": console.reports.invoices(
                today=day, month=month, status=status, page=page_no
            ),
        }

    data = await asyncio.to_thread(load)
    chart = bar_chart(
        "Receita faturada e recebida por mês (R$)",
        [Bar(mes_curto(r.month), [r.billed_brl, r.paid_brl]) for r in data["revenue"]],
        ["faturado", "pago"],
        money=True,
    )
    return page(
        "financeiro.html",
        seen,
        month=month,
        status_filter=status,
        chart=chart,
        statuses=STATUSES,
        can_act=seen.can(*FIN),
        **data,
    )


@post("/financeiro/executar")
async def run_month(request: Request[Any, Any, Any], state: State) -> Redirect:
    console = console_state(state)
    seen = await staff(request, console, *FIN)
    month = month_param((await form(request)).get("mes")) or _previous_month()

    def done(summary: Any) -> str:
        return (
            f"Faturamento de {mes_curto(month)} executado: {summary.created} fatura(s) criada(s), "
            f"{summary.updated} atualizada(s), {summary.unchanged} sem mudança, "
            f"{len(summary.skipped)} com problema."
        )

    return await act(
        console,
        seen,
        query_url("/console/financeiro", mes=month),
        lambda: console.billing.run_month(month, trigger="console", actor=seen.actor),
        done,
    )


@post("/financeiro/emitir")
async def issue_month(request: Request[Any, Any, Any], state: State) -> Redirect:
    """Issue every draft of the month now (before its grace period ends, on finance's word)."""
    console = console_state(state)
    seen = await staff(request, console, *FIN)
    month = month_param((await form(request)).get("mes")) or _previous_month()

    def issue() -> int:
        life = console.billing.lifecycle
        drafts = [i.id for i in life.list_invoices(month=month, status="draft")]
        return len(life.issue_many(drafts, actor=seen.actor))

    return await act(
        console,
        seen,
        query_url("/console/financeiro", mes=month),
        issue,
        lambda n: f"{n} fatura(s) de {mes_curto(month)} emitida(s), numeradas e com DAE.",
    )


@get("/financeiro/faturas/{invoice_id:int}")
async def invoice_page(
    request: Request[Any, Any, Any], state: State, invoice_id: FromPath[int]
) -> Template:
    console = console_state(state)
    seen = await staff(request, console, *STAFF)
    view = await asyncio.to_thread(invoice_view, console, invoice_id)
    return page("fatura.html", seen, can_act=seen.can(*FIN), today=today(), **view)


def _invoice_action(
    path: str, action: Any
) -> Any:  # a POST handler on one invoice: check, parse, call, say
    async def handler(
        request: Request[Any, Any, Any], state: State, invoice_id: FromPath[int]
    ) -> Redirect:
        console = console_state(state)
        seen = await staff(request, console, *FIN)
        fields = await form(request)
        call, done = action(console, seen.actor, invoice_id, fields)
        return await act(console, seen, f"/console/financeiro/faturas/{invoice_id}", call, done)

    handler.__name__ = f"invoice_{path}"
    return post(f"/financeiro/faturas/{{invoice_id:int}}/{path}", name=f"invoice-{path}")(handler)


def _issue(console: ConsoleState, actor: Actor, invoice_id: int, f: dict[str, str]) -> Any:
    return (
        lambda: console.billing.lifecycle.issue(invoice_id, actor=actor),
        lambda inv: f"Fatura {inv.number} emitida; DAE {inv.dae_reference}.",
    )


def _void(console: ConsoleState, actor: Actor, invoice_id: int, f: dict[str, str]) -> Any:
    return (
        lambda: console.billing.lifecycle.void(invoice_id, f.get("motivo", ""), actor=actor),
        lambda inv: "Fatura anulada (o número, se havia, continua usado).",
    )


def _credit(console: ConsoleState, actor: Actor, invoice_id: int, f: dict[str, str]) -> Any:
    def call() -> Any:
        amount = _decimal(f.get("ufemg", ""), "valor em UFEMG")
        return console.billing.lifecycle.credit_note(
            invoice_id, amount, f.get("motivo", "") or "nota de crédito", actor=actor
        )

    return call, lambda note: f"Nota de crédito {note.number} registrada."


def _payment(console: ConsoleState, actor: Actor, invoice_id: int, f: dict[str, str]) -> Any:
    def call() -> Any:
        inv, _ = console.billing.lifecycle.get(invoice_id)
        amount = _decimal(f.get("valor", ""), "valor em R$")
        paid_on = date.fromisoformat(f.get("data") or today().isoformat())
        return console.billing.lifecycle.record_payment(
            inv.dae_reference or "",
            amount,
            paid_on=paid_on,
            note=f.get("nota") or None,
            actor=actor,
        )

    def done(inv: Any) -> str:
        paid = "a fatura está paga" if inv.status == "paid" else "ainda falta pagar parte"
        return f"Pagamento registrado: {paid}."

    return call, done


@post("/parceiros/{partner_id:int}/multa")
async def impose_fine(
    request: Request[Any, Any, Any], state: State, partner_id: FromPath[int]
) -> Redirect:
    """Art. 45 III: a fine in UFEMG (the control plane's sanction; billing bills it)."""
    console = console_state(state)
    seen = await staff(request, console, *FIN)
    f = await form(request)
    return await act(
        console,
        seen,
        f"/console/parceiros/{partner_id}",
        lambda: console.contracts.fine(
            partner_id,
            f.get("motivo", ""),
            _decimal(f["ufemg"], "valor em UFEMG") if f.get("ufemg") else None,
            percent=_decimal(f["percentual"], "percentual") if f.get("percentual") else None,
            month=month_param(f.get("mes")),
            actor=seen.actor,
        ),
        lambda s: f"Multa {s.id} aplicada.",
    )


@get("/contratos/{contract_id:int}")
async def contract_page(
    request: Request[Any, Any, Any], state: State, contract_id: FromPath[int]
) -> Template:
    """A contract's price schedule and a preview of next month's invoice."""
    console = console_state(state)
    seen = await staff(request, console, *STAFF)
    raw = request.query_params.get("acessos", "")
    accesses = int(raw) if raw.isdigit() else None
    view = await asyncio.to_thread(contract_view, console, contract_id, accesses)
    return page("contrato.html", seen, **view)


FINANCE_HANDLERS = [
    month_close,
    run_month,
    issue_month,
    invoice_page,
    _invoice_action("emitir", _issue),
    _invoice_action("anular", _void),
    _invoice_action("credito", _credit),
    _invoice_action("pagamento", _payment),
    impose_fine,
    contract_page,
]
