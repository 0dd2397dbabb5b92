"""Control-plane value objects."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import msgspec

__all__ = ["ApiKeyRecord", "Entitlement", "KeyCredential", "Partner", "PartnerStatus", "Plan"]


class Plan(StrEnum):
    SANDBOX = "sandbox"
    CONTINUOUS = "continuous"


class PartnerStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ENDED = "ended"
    CANCELLED = "cancelled"


class Entitlement(msgspec.Struct, frozen=True, kw_only=True):
    """What a partner may do now, derived from its contract: what the API and meter enforce."""

    partner_id: int
    plan: Plan
    status: PartnerStatus = PartnerStatus.ACTIVE
    status_reason: str | None = None
    monthly_cap: int | None = None
    window_start: date | None = None  # authorization window (inclusive), America/Sao_Paulo days
    window_end: date | None = None
    tables: frozenset[str] | None = None  # None: every table of the release
    rate_per_second: int | None = None
    rate_per_minute: int | None = None


class KeyCredential(msgspec.Struct, frozen=True, kw_only=True):
    """An active key as the API needs it: never the key itself, only its hash."""

    key_id: str
    partner_id: int
    secret_hash: str
    member_id: int | None = None
    tables: frozenset[str] | None = None  # key scope; None: the partner's entitlement decides


class Partner(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    plan: Plan
    monthly_cap: int | None
    contract_toml: str | None
    created_at: datetime


class ApiKeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    partner_id: int
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
