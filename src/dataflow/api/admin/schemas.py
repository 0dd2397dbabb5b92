"""Request bodies and parameters of the admin API, validated once, at the edge, by msgspec.

Every field says what it accepts (lengths, ranges, a timezone on instants), so a malformed value
is a 400 problem naming the field — never a 500 from deep inside a service, nor a silent default.
The services check their own rules again (the CLI and the console reach them too).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

import msgspec

from dataflow.contracts.lifecycle import EndReason, Event
from dataflow.contracts.models import ContractKind, Plan, SanctionKind

__all__ = [
    "MAX_ID",
    "AwareDatetime",
    "ContactIn",
    "ContractIn",
    "EventIn",
    "KeyIn",
    "MemberIn",
    "PartnerIn",
    "SanctionIn",
    "TermsIn",
]

MAX_ID = 2**31 - 1  # ids are PostgreSQL integers: a larger one names nothing
MAX_UFEMG = Decimal(10) ** 12  # far above any budget or fine; keeps arithmetic exact and small

Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Short = Annotated[str, msgspec.Meta(max_length=200)]
TableId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Tables = Annotated[list[TableId], msgspec.Meta(max_length=1000)]
Toml = Annotated[str, msgspec.Meta(max_length=65_536)]
Cap = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]
Rate = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]  # requests per second / minute
Days = Annotated[float, msgspec.Meta(gt=0, le=3650)]  # a suspension of up to ten years
Month = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]  # an instant: with its offset


def _amount(name: str, value: Decimal | None, *, most: Decimal = MAX_UFEMG) -> None:
    """Decimals take no numeric constraints in msgspec: checked here, at decoding still."""
    if value is not None and not (value.is_finite() and 0 < value <= most):
        raise ValueError(f"{name}: expected a number greater than 0 and at most {most}")


class PartnerIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    plan: Plan
    cnpj: Short | None = None
    representative: Name | None = None
    email: Email | None = None


class ContactIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: Short  # legal | technical | billing
    name: Name
    email: Email | None = None
    phone: Short | None = None


class ContractIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """kind continuous/on_demand: a paid request; kind sandbox: an authorization (Art. 35)."""

    kind: ContractKind
    sla: Short | None = None
    start: date | None = None
    end: date | None = None
    modality: ContractKind = ContractKind.CONTINUOUS
    monthly_cap: Cap | None = None
    tables: Tables | None = None
    secrecy_term_accepted: bool = False
    rate_per_second: Rate | None = None
    rate_per_minute: Rate | None = None


class EventIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    event: Event
    budget_ufemg: Decimal | None = None
    terms_toml: Toml | None = None
    new_end: date | None = None
    reason: EndReason | None = None

    def __post_init__(self) -> None:
        _amount("budget_ufemg", self.budget_ufemg)


class MemberIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    email: Email | None = None


class KeyIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    member_id: Id | None = None
    tables: Tables | None = None


class SanctionIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: SanctionKind
    reason: Text
    days: Days | None = None
    until: AwareDatetime | None = None
    amount_ufemg: Decimal | None = None
    # fines: a percentage of the month's supply instead of an amount, and the first month billed
    percent: Decimal | None = None
    month: Month | None = None

    def __post_init__(self) -> None:
        _amount("amount_ufemg", self.amount_ufemg)
        _amount("percent", self.percent, most=Decimal(100))


class TermsIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Priced contract terms (the TOML of DESIGN §10) that finance approves on a contract."""

    terms_toml: Toml
