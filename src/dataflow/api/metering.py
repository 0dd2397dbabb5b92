"""Count a data access before serving it, and turn a refusal into the right problem."""

from __future__ import annotations

from datetime import UTC, datetime

from dataflow.api.auth import Caller
from dataflow.api.errors import Problem
from dataflow.metering.models import Access, Grant, Refusal, access_for
from dataflow.metering.protocol import Meter

__all__ = ["count_access"]

_FORBIDDEN = {
    Refusal.SUSPENDED: (
        "partner-suspended",
        "Access suspended",
        "your access is suspended; contact SEF/MG about the sanction or request",
    ),
    Refusal.INACTIVE: (
        "partner-inactive",
        "Access ended",
        "your contract or authorization has ended or was cancelled",
    ),
    Refusal.BEFORE_WINDOW: (
        "outside-window",
        "Outside the authorization window",
        "your authorization window has not started yet",
    ),
    Refusal.AFTER_WINDOW: (
        "outside-window",
        "Outside the authorization window",
        "your authorization window has ended",
    ),
    Refusal.TABLE_NOT_ENTITLED: (
        "table-not-entitled",
        "Table not in your plan",
        "your plan or key does not cover this table",
    ),
}


def _refused(grant: Grant) -> Problem:
    assert grant.refusal is not None
    if grant.refusal in _FORBIDDEN:
        kind, title, detail = _FORBIDDEN[grant.refusal]
        return Problem(403, kind, title, detail, reason=grant.refusal.value)
    if grant.refusal is Refusal.CAP:
        return Problem(
            429,
            "monthly-cap-reached",
            "Monthly access cap reached",
            f"your plan allows {grant.cap:,} data accesses a month and they are used; "
            "the cap resets on the first day of next month",
            headers={
                "Retry-After": "3600",
                "RateLimit-Policy": f'"monthly";q={grant.cap};w=2678400',
                "RateLimit": '"monthly";r=0;t=3600',
            },
            reason=grant.refusal.value,
        )
    return Problem(
        429,
        "rate-limited",
        "Too many requests",
        "slow down and retry shortly",
        headers={"Retry-After": "1"},
        reason=grant.refusal.value,
    )


async def count_access(meter: Meter, caller: Caller, table: str, release: str) -> Access:
    """Check and count one access (before anything is served); raise the problem if refused."""
    access = access_for(
        caller.entitlement,
        key_id=caller.key_id,
        table=table,
        at=datetime.now(UTC),
        member_id=caller.key.member_id,
        release=release,
    )
    scope = caller.key.tables if caller.key.tables is not None else caller.entitlement.tables
    if scope is not None and table not in scope:
        raise _refused(
            Grant(allowed=False, count=0, cap=access.cap, refusal=Refusal.TABLE_NOT_ENTITLED)
        )
    grant = await meter.acquire(access)
    if not grant.allowed:
        raise _refused(grant)
    return access
