"""The partner's own area: this month against cap or franchise, the projected invoice, past
invoices and their DAEs, the access records that add up to them, team and keys.

The partner is the session's, never a parameter: a member cannot name another partner.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect, Template

from dataflow.api.console.context import ConsoleState, console_state
from dataflow.api.console.operators import usage_chart
from dataflow.api.console.render import act, page
from dataflow.api.console.session import Forbidden, member
from dataflow.api.console.views import (
    contract_terms,
    invoice_view,
    month_param,
    projected_invoice,
    today,
)
from dataflow.api.state import ApiState
from dataflow.billing.compute import month_bounds
from dataflow.contracts.errors import ContractInvalid
from dataflow.contracts.service import current_contract
from dataflow.metering.models import billing_month
from dataflow.metering.records import count_records

__all__ = ["PARTNER_HANDLERS"]


async def _this_month_count(api: ApiState, console: ConsoleState, pid: int, month: str) -> int:
    """The meter's count (what the cap is checked against), else the settled ledger."""
    if api.meter is not None:
        return await api.meter.count(pid, month)
    return await asyncio.to_thread(console.contracts.usage, pid, month)


@get("/conta")
async def account_page(request: Request[Any, Any, Any], state: State) -> Template:
    console = console_state(state)
    api: ApiState = state.api
    seen = await member(request, console)
    pid = seen.partner_id
    month = billing_month(datetime.now(UTC))
    used = await _this_month_count(api, console, pid, month)
    c = console.contracts

    def load() -> dict[str, Any]:
        contracts = c.contracts(pid)
        current = current_contract(contracts)
        terms, franchise = None, None
        if current is not None:
            try:
                terms = contract_terms(current)
            except ContractInvalid:
                terms = None
        if terms is not None and terms.franchise_accesses:
            franchise = terms.franchise_accesses
        first, _, days = month_bounds(month)
        elapsed = max((today() - first).days + 1, 1)
        projected = round(used * days / elapsed)
        preview, why = (
            projected_invoice(console, terms, month, projected) if terms else (None, None)
        )
        chart, rows = usage_chart(c.usage_by_month(pid), current, franchise)
        return {
            "partner": c.partner(pid),
            "entitlement": c.entitlement(pid),
            "current": current,
            "franchise": franchise,
            "projected": projected,
            "preview": preview,
            "preview_why": why,
            "days_left": (current.end_date - today()).days
            if current is not None and current.end_date
            else None,
            "members": c.members(pid),
            "keys": c.keys(pid),
            "invoices": console.reports.invoices(today=today(), partner_id=pid, per_page=24),
            "chart": chart,
            "usage_rows": rows,
        }

    view = await asyncio.to_thread(load)
    return page("conta.html", seen, month=month, used=used, **view)


@get("/conta/faturas/{invoice_id:int}")
async def account_invoice(
    request: Request[Any, Any, Any], state: State, invoice_id: FromPath[int]
) -> Template:
    console = console_state(state)
    seen = await member(request, console)
    view = await asyncio.to_thread(invoice_view, console, invoice_id, partner_id=seen.partner_id)
    return page("fatura.html", seen, can_act=False, today=today(), **view)


@get("/conta/acessos")
async def access_records_page(request: Request[Any, Any, Any], state: State) -> Template:
    console = console_state(state)
    seen = await member(request, console)
    month = month_param(request.query_params.get("mes")) or billing_month(datetime.now(UTC))
    pid = seen.partner_id

    def load() -> dict[str, Any]:
        with console.contracts.engine.connect() as conn:
            records = count_records(conn, pid, month)
        invoices = console.reports.invoices(today=today(), partner_id=pid, month=month)
        return {"records": records, "invoices": invoices.rows}

    view = await asyncio.to_thread(load)
    return page("acessos.html", seen, month=month, **view)


@post("/conta/chaves/{key_id:str}/revogar")
async def revoke_own_key(
    request: Request[Any, Any, Any], state: State, key_id: FromPath[str]
) -> Redirect:
    """A member may revoke their own keys (a leaked key should not wait for an operator)."""
    console = console_state(state)
    seen = await member(request, console)
    key = await asyncio.to_thread(console.contracts.key, key_id)
    if key.partner_id != seen.partner_id or key.member_id != seen.user.member_id:
        raise Forbidden("Só é possível revogar as suas próprias chaves.")
    return await act(
        console,
        seen,
        "/console/conta",
        lambda: console.contracts.revoke_key(
            key_id, reason="revogada pelo titular no console", actor=seen.actor
        ),
        lambda ok: f"Chave {key_id} revogada." if ok else f"A chave {key_id} já estava revogada.",
    )


PARTNER_HANDLERS = [account_page, account_invoice, access_records_page, revoke_own_key]
