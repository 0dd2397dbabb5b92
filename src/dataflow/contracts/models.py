"""Control-plane value objects."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec

__all__ = ["ApiKeyRecord", "Partner", "Plan"]


class Plan(StrEnum):
    SANDBOX = "sandbox"
    CONTINUOUS = "continuous"


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
