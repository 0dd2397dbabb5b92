"""Check and count a data access before serving it, and turn a refusal into the right problem.

The checks that need no counter (status, authorization window, the key's tables within the
contract's) run here, in the API, whatever the meter: ``DATAFLOW_METER=off`` switches off the
count (and with it the cap and the rate limits, which are counters), never authorization.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

import msgspec

from dataflow.api.auth import Caller
from dataflow.api.errors import Problem
from dataflow.metering.errors import MeterUnavailable
from dataflow.metering.models import (
    SAO_PAULO,
    Access,
    Grant,
    Outcome,
    Refusal,
    access_for,
    entitlement_refusal,
)
from dataflow.metering.protocol import Meter

__all__ = ["authorize", "count_access", "finish_access", "throttle"]

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


def _seconds_to_next_month(now: datetime) -> int:
    local = now.astimezone(SAO_PAULO)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    first = datetime(year, month, 1, tzinfo=SAO_PAULO)
    return max(1, int((first - now).total_seconds()))


def _refused(grant: Grant, now: datetime) -> Problem:
    assert grant.refusal is not None
    if grant.refusal in _FORBIDDEN:
        kind, title, detail = _FORBIDDEN[grant.refusal]
        return Problem(403, kind, title, detail, reason=grant.refusal.value)
    if grant.refusal is Refusal.CAP:
        reset = _seconds_to_next_month(now)
        local = now.astimezone(SAO_PAULO)
        month_seconds = calendar.monthrange(local.year, local.month)[1] * 86_400
        # RateLimit headers per draft-ietf-httpapi-ratelimit-headers: the policy names the
        # quota (q) and its window (w); RateLimit says what remains (r) and when it resets (t).
        return Problem(
            429,
            "monthly-cap-reached",
            "Monthly access cap reached",
            f"your plan allows {grant.cap:,} data accesses a month and they are used; "
            "the cap resets on the first day of next month (America/Sao_Paulo)",
            headers={
                "Retry-After": str(reset),
                "RateLimit-Policy": f'"monthly";q={grant.cap};w={month_seconds}',
                "RateLimit": f'"monthly";r=0;t={reset}',
            },
            reason=grant.refusal.value,
            cap=grant.cap,
            used=grant.count,
        )
    retry = grant.retry_after or 1
    window = grant.window or 1
    name = "per-second" if window == 1 else "per-minute"
    return Problem(
        429,
        "rate-limited",
        "Too many requests",
        f"your key may make {grant.limit} data requests {name.replace('-', ' ')}; "
        f"retry in {retry} s",
        headers={
            "Retry-After": str(retry),
            "RateLimit-Policy": f'"{name}";q={grant.limit};w={window}',
            "RateLimit": f'"{name}";r=0;t={retry}',
        },
        reason=grant.refusal.value,
    )


def _unavailable(error: MeterUnavailable) -> Problem:
    return Problem(
        503,
        "meter-unavailable",
        "Access meter unavailable",
        "data is only served once the access is counted, and the meter cannot count right "
        "now; nothing was served or billed — retry shortly",
        headers={"Retry-After": str(error.retry_after)},
    )


def _check(caller: Caller, access: Access, table: str | None, now: datetime) -> None:
    refusal = entitlement_refusal(access)
    if refusal is None and table is not None and not caller.may_read(table):
        refusal = Refusal.TABLE_NOT_ENTITLED
    if refusal is not None:
        raise _refused(Grant(allowed=False, count=0, cap=access.cap, refusal=refusal), now)


def authorize(caller: Caller, table: str | None = None) -> None:
    """Every check but the count — status, authorization window and, given a table, the key's
    scope within the contract — raising the 403 problem. The catalog's checks (unbilled)."""
    now = datetime.now(UTC)
    access = access_for(caller.entitlement, key_id=caller.key_id, table=table or "", at=now)
    _check(caller, access, table, now)


async def count_access(
    meter: Meter | None,
    caller: Caller,
    table: str,
    release: str,
    *,
    outcome: Outcome | None = None,
) -> Access:
    """Check and count one access (before anything is served); raise the problem if refused.

    ``outcome``: what will be served, when the response is ready before it is counted; the
    access record then says it, and there is nothing to finish afterwards. Without a meter
    (``DATAFLOW_METER=off``, benchmarks) every check but the count still runs."""
    now = datetime.now(UTC)
    access = access_for(
        caller.entitlement,
        key_id=caller.key_id,
        table=table,
        at=now,
        member_id=caller.key.member_id,
        release=release,
        outcome=outcome,
    )
    _check(caller, access, table, now)
    if meter is None:
        return access
    try:
        grant = await meter.acquire(access)
    except MeterUnavailable as e:
        raise _unavailable(e) from e
    if not grant.allowed:
        raise _refused(grant, now)
    return msgspec.structs.replace(access, record_id=grant.record_id)


async def finish_access(
    meter: Meter | None, access: Access, *, status: int, nbytes: int, latency_ms: float
) -> None:
    """After the response: a 5xx gives its count back; anything else amends the record."""
    if meter is None:
        return
    if status >= 500:
        try:
            await meter.release(access)
        except Exception:  # the meter is down: the count stays (over-, never under-billing)
            return
    meter.complete(access, status=status, nbytes=nbytes, latency_ms=latency_ms)


async def throttle(meter: Meter | None, caller: Caller) -> None:
    """Take one request from the key's rate limits for an unbilled route that costs the server
    (the usage chart): the 429 problem when a window is full, 503 when the meter cannot answer.
    Counts no access and checks no status (a suspended partner still reads its account).
    Without a meter there are no rate limits (they are counters), as for data requests."""
    if meter is None:
        return
    now = datetime.now(UTC)
    access = access_for(caller.entitlement, key_id=caller.key_id, table="", at=now)
    try:
        grant = await meter.throttle(access)
    except MeterUnavailable as e:
        raise _unavailable(e) from e
    if not grant.allowed:
        raise _refused(grant, now)
