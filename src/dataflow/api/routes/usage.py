"""The caller's own usage this month, and the terms it is metered against."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import msgspec
from litestar import Request, get
from litestar.datastructures import State

from dataflow.api.routes.common import api_state, authenticate, problems
from dataflow.metering.models import billing_month

__all__ = ["Usage", "usage"]


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    partner_id: int
    key_id: str
    plan: str
    status: str
    month: str  # billing month, America/Sao_Paulo
    accesses: int | None  # data accesses counted this month (null when metering is off)
    monthly_cap: int | None
    remaining: int | None  # before the cap; null without a cap
    franchise_accesses: int | None  # minimum monthly accesses billed (continuous contracts)
    window_start: date | None
    window_end: date | None
    tables: list[str] | None  # tables this key may query; null: every table


@get(
    "/v1/usage",
    summary="Your usage this month: accesses, cap, franchise, authorization window, plan",
    description="Not billable. Counts come from the meter (the same counts that are billed).",
    tags=["usage"],
    security=[{"bearer": []}],
    responses=problems(401),
)
async def usage(request: Request[Any, Any, Any], state: State) -> Usage:
    api = api_state(state)
    caller = await authenticate(request, api)
    ent = caller.entitlement
    month = billing_month(datetime.now(UTC))
    count = await api.meter.count(caller.partner_id, month) if api.meter is not None else None
    scope = caller.tables
    # Entitlement may carry the franchise (contracts' business); read it only if it is there.
    franchise = getattr(ent, "franchise_accesses", None)
    return Usage(
        partner_id=caller.partner_id,
        key_id=caller.key_id,
        plan=str(ent.plan),
        status=str(ent.status),
        month=month,
        accesses=count,
        monthly_cap=ent.monthly_cap,
        remaining=None
        if ent.monthly_cap is None or count is None
        else max(ent.monthly_cap - count, 0),
        franchise_accesses=franchise if isinstance(franchise, int) else None,
        window_start=ent.window_start,
        window_end=ent.window_end,
        tables=sorted(scope) if scope is not None else None,
    )
