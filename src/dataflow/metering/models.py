"""Meter value objects."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import msgspec

from dataflow.contracts.models import Entitlement, PartnerStatus

__all__ = [
    "Access",
    "EntryKind",
    "Grant",
    "Outcome",
    "Refusal",
    "StreamEntry",
    "access_for",
    "billing_month",
    "entitlement_refusal",
    "stream_order",
]

SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def billing_month(at: datetime) -> str:
    """The ``YYYY-MM`` an access is billed in: the month in America/Sao_Paulo."""
    return at.astimezone(SAO_PAULO).strftime("%Y-%m")


class Refusal(StrEnum):
    CAP = "monthly_cap"  # 429
    RATE = "rate_limit"  # 429 (per key, per second or per minute)
    BEFORE_WINDOW = "before_window"  # 403
    AFTER_WINDOW = "after_window"  # 403
    SUSPENDED = "suspended"  # 403
    INACTIVE = "inactive"  # 403: ended or cancelled
    TABLE_NOT_ENTITLED = "table_not_entitled"  # 403


class Outcome(msgspec.Struct, frozen=True, array_like=True):
    """What a response served: known at count time when the response was ready before it was
    counted (a cached page), so the access record is complete when it is written."""

    status: int
    bytes: int
    latency_ms: float


class Access(msgspec.Struct, frozen=True, kw_only=True):
    """One data request of one partner's key, with the entitlement it is checked against."""

    partner_id: int
    key_id: str
    month: str  # billing month, YYYY-MM (America/Sao_Paulo)
    day: date  # America/Sao_Paulo calendar day, for the authorization window
    table: str
    member_id: int | None = None
    release: str = ""
    cap: int | None = None
    window_start: date | None = None
    window_end: date | None = None
    status: PartnerStatus = PartnerStatus.ACTIVE
    rate_per_second: int | None = None
    rate_per_minute: int | None = None
    record_id: str = ""  # the access record's id in the meter's stream, once counted
    outcome: Outcome | None = None  # what is served, when the response is ready before counting


@lru_cache(maxsize=8)
def _local_month_day(minute: int) -> tuple[str, date]:
    # America/Sao_Paulo's offsets are whole hours: one UTC minute is one local calendar day.
    local = datetime.fromtimestamp(minute * 60, UTC).astimezone(SAO_PAULO)
    return local.strftime("%Y-%m"), local.date()


def access_for(
    entitlement: Entitlement,
    *,
    key_id: str,
    table: str,
    at: datetime,
    member_id: int | None = None,
    release: str = "",
    outcome: Outcome | None = None,
) -> Access:
    # Per request: the billing month and day come from a per-minute cache, not a tz conversion.
    month, day = _local_month_day(int(at.timestamp()) // 60)
    return Access(
        partner_id=entitlement.partner_id,
        key_id=key_id,
        member_id=member_id,
        month=month,
        day=day,
        table=table,
        release=release,
        cap=entitlement.monthly_cap,
        window_start=entitlement.window_start,
        window_end=entitlement.window_end,
        status=entitlement.status,
        rate_per_second=entitlement.rate_per_second,
        rate_per_minute=entitlement.rate_per_minute,
        outcome=outcome,
    )


def entitlement_refusal(access: Access) -> Refusal | None:
    """Refusals that need no counter: status and authorization window."""
    if access.status is PartnerStatus.SUSPENDED:
        return Refusal.SUSPENDED
    if access.status is not PartnerStatus.ACTIVE:
        return Refusal.INACTIVE
    if access.window_start is not None and access.day < access.window_start:
        return Refusal.BEFORE_WINDOW
    if access.window_end is not None and access.day > access.window_end:
        return Refusal.AFTER_WINDOW
    return None


class Grant(msgspec.Struct, frozen=True, kw_only=True):
    allowed: bool
    count: int  # the partner's accesses this month, including this one when allowed
    cap: int | None
    refusal: Refusal | None = None
    record_id: str = ""  # the access record written with the count (allowed only)
    retry_after: int | None = None  # seconds until a refused request may succeed (429)
    limit: int | None = None  # the quota that refused it (rate limits), for RateLimit headers
    window: int | None = None  # that quota's window in seconds

    @property
    def remaining(self) -> int | None:
        return None if self.cap is None else max(self.cap - self.count, 0)


class EntryKind(StrEnum):
    """What a stream entry says: an access was counted, given back, or completed."""

    ACCESS = "a"  # written atomically with the count (with its outcome, when known then)
    RELEASE = "x"  # the response failed with 5xx: the count was given back
    COMPLETE = "c"  # the response went out: status, bytes, latency


class StreamEntry(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One entry of a partner's access stream, as the settler reads it (scalars only, so not
    tracked by the garbage collector: a settler holds thousands at once)."""

    id: str  # the record's id: unique per partner, what releases and completions refer to
    partner_id: int
    kind: EntryKind
    stream_id: str = ""  # the stream entry it came in ("<ms>-<seq>"): the settlement watermark
    month: str = ""
    key_id: str = ""
    table: str = ""
    release: str = ""
    member_id: int | None = None
    at_ms: int = 0
    ref: str = ""  # the access entry a release or completion refers to
    status: int | None = None
    bytes: int | None = None
    latency_ms: float | None = None

    @property
    def order(self) -> tuple[int, int]:
        return stream_order(self.stream_id or self.id)


def stream_order(entry_id: str) -> tuple[int, int]:
    """Stream ids compare as (milliseconds, sequence)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
