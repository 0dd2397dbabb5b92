"""Request bodies of the admin API (decoded once, at the edge, by msgspec)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import msgspec

from dataflow.contracts.lifecycle import EndReason, Event
from dataflow.contracts.models import ContractKind, Plan, SanctionKind

__all__ = [
    "ContactIn",
    "ContractIn",
    "EventIn",
    "KeyIn",
    "MemberIn",
    "PartnerIn",
    "SanctionIn",
    "TermsIn",
]


class PartnerIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    plan: Plan
    cnpj: str | None = None
    representative: str | None = None
    email: str | None = None


class ContactIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: str  # legal | technical | billing
    name: str
    email: str | None = None
    phone: str | None = None


class ContractIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """kind continuous/on_demand: a paid request; kind sandbox: an authorization (Art. 35)."""

    kind: ContractKind
    sla: str | None = None
    start: date | None = None
    end: date | None = None
    modality: ContractKind = ContractKind.CONTINUOUS
    monthly_cap: int | None = None
    tables: list[str] | None = None
    secrecy_term_accepted: bool = False
    rate_per_second: int | None = None
    rate_per_minute: int | None = None


class EventIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    event: Event
    budget_ufemg: Decimal | None = None
    terms_toml: str | None = None
    new_end: date | None = None
    reason: EndReason | None = None


class MemberIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    email: str | None = None


class KeyIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    member_id: int | None = None
    tables: list[str] | None = None


class SanctionIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: SanctionKind
    reason: str
    days: float | None = None
    until: datetime | None = None
    amount_ufemg: Decimal | None = None
    # fines: a percentage of the month's supply instead of an amount, and the first month billed
    percent: Decimal | None = None
    month: str | None = None


class TermsIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Priced contract terms (the TOML of DESIGN §10) that finance approves on a contract."""

    terms_toml: str
