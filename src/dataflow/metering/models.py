"""Meter value objects."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

import msgspec

__all__ = ["Access", "Grant", "Refusal", "billing_month"]

SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def billing_month(at: datetime) -> str:
    """The ``YYYY-MM`` an access is billed in: the month in America/Sao_Paulo."""
    return at.astimezone(SAO_PAULO).strftime("%Y-%m")


class Refusal(StrEnum):
    CAP = "monthly_cap"


class Access(msgspec.Struct, frozen=True, kw_only=True):
    """What is counted: one data request of one partner's key in one billing month."""

    partner_id: int
    key_id: str
    month: str
    table: str
    cap: int | None = None


class Grant(msgspec.Struct, frozen=True, kw_only=True):
    allowed: bool
    count: int  # the partner's accesses this month, including this one when allowed
    cap: int | None
    refusal: Refusal | None = None

    @property
    def remaining(self) -> int | None:
        return None if self.cap is None else max(self.cap - self.count, 0)
