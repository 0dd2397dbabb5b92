"""``/v1/account``: a partner's own contract, team, sanctions and monitoring report (Art. 38–39).

The partner is always the caller's (from its key): there is no partner id to ask for, so no way
to read another partner's data. What it shows is an allow-list (``PartnerContract``,
``PartnerSanction``), never the control plane's records as they are: partners see SEF/MG's
decisions, not which staff member recorded them (``imposed_by`` and any actor stay internal, in
the audit log and the admin API).
"""

from __future__ import annotations

import asyncio
import os
from datetime import date, datetime
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response, Router, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Stream

from dataflow.api.access_records import csv_chunks, json_body, parquet_body, parse_month
from dataflow.api.admin.errors import contracts_exception_handlers
from dataflow.api.encode import PARQUET
from dataflow.api.metering import throttle
from dataflow.api.routes.common import document_problems
from dataflow.api.state import ApiState
from dataflow.billing.repository import StoredInvoice, overdue_invoices
from dataflow.contracts.reports import UsageRow, usage_csv, usage_report
from dataflow.contracts.service import current_contract

__all__ = ["PartnerContract", "PartnerSanction", "account_router"]


class PartnerSanction(msgspec.Struct, frozen=True, kw_only=True):
    """A sanction as its partner sees it (Art. 45): the decision and its dates, not its author."""

    id: int
    kind: str
    reason: str
    imposed_at: datetime
    starts_at: datetime
    until: datetime | None
    amount_ufemg: str | None
    lifted_at: datetime | None
    percent: str | None = None  # fines: a percentage of the month's supply instead of an amount
    bill_month: str | None = None  # fines: the first month whose invoice bills it


class PartnerContract(msgspec.Struct, frozen=True, kw_only=True):
    """The contract in force as its partner sees it: terms, window, scope and dates."""

    id: int
    kind: str
    state: str
    modality: str
    terms_toml: str | None = None
    sla: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    monthly_cap: int | None = None
    tables: list[str] | None = None
    rate_per_second: int | None = None
    rate_per_minute: int | None = None
    secrecy_term_accepted: bool = False
    requested_at: datetime | None = None
    fee_paid_at: datetime | None = None
    budget_due: date | None = None
    budget_issued_at: datetime | None = None
    budget_ufemg: str | None = None
    accepted_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
    successor_id: int | None = None


V = TypeVar("V", PartnerContract, PartnerSanction)


def _partner_view(record: msgspec.Struct | None, view: type[V]) -> V | None:
    """Only the view's fields of ``record`` (anything added to the record stays internal)."""
    return None if record is None else msgspec.convert(msgspec.to_builtins(record), view)


@get(
    "/",
    responses={
        200: ResponseSpec(
            data_container=dict[str, Any],
            media_type="application/json",
            description="Your partner record, entitlement, contract in force, team, key, sanctions",
        )
    },
)
async def account(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    api: ApiState = state.api
    caller = await api.keys.authenticate(request)
    pid = caller.partner_id

    def load() -> dict[str, Any]:
        partner = api.contracts.partner(pid)
        return {
            "partner": {"id": partner.id, "name": partner.name, "cnpj": partner.cnpj},
            "entitlement": caller.entitlement,
            "contract": _partner_view(
                current_contract(api.contracts.contracts(pid)), PartnerContract
            ),
            "team": [{"id": m.id, "name": m.name} for m in api.contracts.members(pid)],
            "key": {"key_id": caller.key_id, "member_id": caller.key.member_id},
            "sanctions": [_partner_view(s, PartnerSanction) for s in api.contracts.sanctions(pid)],
            # Art. 14–16: DAEs past their due date and unpaid (the decision on them is SEF's)
            "overdue_invoices": [
                {
                    "number": i.number,
                    "dae_reference": i.dae_reference,
                    "month": i.month,
                    "due_date": i.due_date,
                    "total_brl": i.total_brl,
                }
                for i in _overdue(api, pid)
            ],
        }

    body = await asyncio.to_thread(load)
    # which worker answered, and so whose snapshot of the entitlement this is (ops, e2e tests)
    return Response(
        msgspec.json.encode(body),
        media_type="application/json",
        headers={"X-Dataflow-Worker": str(os.getpid())},
    )


@get(
    "/usage.csv",
    media_type="text/csv",
    responses={200: ResponseSpec(data_container=str, media_type="text/csv", description="CSV")},
)
async def account_usage_csv(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    api: ApiState = state.api
    caller = await api.keys.authenticate(request)
    rows = await asyncio.to_thread(usage_report, api.contracts, caller.partner_id)
    return Response(usage_csv(rows).encode(), media_type="text/csv")


@get(
    "/usage.png",
    media_type="image/png",
    responses={200: ResponseSpec(data_container=bytes, media_type="image/png", description="PNG")},
)
async def account_usage_png(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    api: ApiState = state.api
    caller = await api.keys.authenticate(request)
    await throttle(api.meter, caller)  # the key's rate limits, cached chart or not
    pid = caller.partner_id

    async def rows() -> list[UsageRow]:
        return await asyncio.to_thread(usage_report, api.contracts, pid)

    day = api.contracts.today()  # America/Sao_Paulo: the chart is kept for the day
    png = await api.charts.partner_chart(pid, day, rows, "Your monthly data accesses")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})


def _overdue(api: ApiState, partner_id: int) -> list[StoredInvoice]:
    with api.contracts.engine.connect() as conn:
        return overdue_invoices(conn, api.contracts.today(), partner_id=partner_id)


_RECORD_FORMATS = ["application/json", "text/csv", PARQUET]


@get(
    "/accesses",
    summary="Your counted accesses of a month, one record each (not billable)",
    description=(
        "`month=YYYY-MM` (default: this month, America/Sao_Paulo). One record per counted "
        "access — exactly what the month's invoice prices, so the count of records is the "
        "invoice's accesses. JSON by default, CSV with `Accept: text/csv`, Parquet with "
        f"`Accept: {PARQUET}`."
    ),
    responses={
        200: ResponseSpec(
            data_container=dict[str, Any],
            media_type="application/json",
            description="count, fields and records (CSV and Parquet by Accept)",
        )
    },
)
async def account_accesses(
    request: Request[Any, Any, Any], state: State
) -> Response[bytes] | Stream:
    api: ApiState = state.api
    caller = await api.keys.authenticate(request)
    month = parse_month(request.query_params.get("month"))
    accept = request.headers.get("accept", "")
    best = request.accept.best_match(_RECORD_FORMATS) if accept.strip() else None
    engine, pid = api.contracts.engine, caller.partner_id
    name = f"acessos-{pid}-{month}"
    if best == "text/csv":
        return Stream(
            csv_chunks(engine, pid, month),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if best == PARQUET:
        body = await asyncio.to_thread(parquet_body, engine, pid, month)
        return Response(
            body,
            media_type=PARQUET,
            headers={"Content-Disposition": f'attachment; filename="{name}.parquet"'},
        )
    return Response(
        await asyncio.to_thread(json_body, engine, pid, month), media_type="application/json"
    )


account_router = Router(
    path="/v1/account",
    route_handlers=document_problems(
        [account, account_usage_csv, account_usage_png, account_accesses], 400, 401, 403, 404
    ),
    exception_handlers=contracts_exception_handlers,
)
