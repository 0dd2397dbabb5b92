"""Control-plane value objects."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import msgspec

__all__ = [
    "ApiKeyRecord",
    "AuditEntry",
    "ConsoleUser",
    "Contact",
    "Contract",
    "ContractKind",
    "ContractState",
    "Entitlement",
    "KeyCredential",
    "Member",
    "Partner",
    "PartnerStatus",
    "Plan",
    "Role",
    "Sanction",
    "SanctionKind",
    "StaffCredential",
]


class Plan(StrEnum):
    SANDBOX = "sandbox"
    CONTINUOUS = "continuous"


class PartnerStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ENDED = "ended"
    CANCELLED = "cancelled"
    PENDING = "pending"  # request or authorization not yet in force: no data yet


class ContractKind(StrEnum):
    SANDBOX = "sandbox"  # Art. 18–42: price waived, window ≤ 12 (+6) months
    CONTINUOUS = "continuous"  # Art. 8 II, 13: on-line integration, billed monthly
    ON_DEMAND = "on_demand"  # Art. 8 I, 12: one-time package priced by a budget


class ContractState(StrEnum):
    # paid supply
    REQUESTED = "requested"
    FEE_PAID = "fee_paid"
    BUDGET_ISSUED = "budget_issued"
    ACCEPTED = "accepted"
    # sandbox
    AUTHORIZED = "authorized"
    EXTENDED = "extended"
    # both
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ENDED = "ended"
    CANCELLED = "cancelled"


class SanctionKind(StrEnum):
    WARNING = "warning"
    SUSPENSION = "suspension"
    FINE = "fine"


class Role(StrEnum):
    """Staff roles of the admin/finance API."""

    OPERATOR = "operator"  # STI: partners, contracts, team, keys, sanctions
    FINANCE = "finance"  # SAIF: fees, budgets, acceptance, fines, usage reports
    AUDITOR = "auditor"  # read-only, including the audit log


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
    contract_id: int | None = None


class KeyCredential(msgspec.Struct, frozen=True, kw_only=True):
    """An active key as the API needs it: never the key itself, only its hash."""

    key_id: str
    partner_id: int
    secret_hash: str
    member_id: int | None = None
    tables: frozenset[str] | None = None  # key scope; None: the partner's entitlement decides


class StaffCredential(msgspec.Struct, frozen=True, kw_only=True):
    """An active admin/finance credential (separate from partner keys)."""

    key_id: str
    name: str
    role: Role
    secret_hash: str


class Partner(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    plan: Plan
    monthly_cap: int | None
    contract_toml: str | None
    created_at: datetime
    cnpj: str | None = None


class Contact(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    partner_id: int
    kind: str
    name: str
    email: str | None
    phone: str | None


class Contract(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    partner_id: int
    kind: ContractKind
    state: ContractState
    modality: str
    resume_state: ContractState | None = None
    terms_toml: str | None = None
    sla: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    monthly_cap: int | None = None
    tables: frozenset[str] | None = None
    rate_per_second: int | None = None
    rate_per_minute: int | None = None
    secrecy_term_accepted: bool = False
    secrecy_signed_by: str | None = None
    approved_terms_toml: str | None = None
    requested_at: datetime | None = None
    fee_paid_at: datetime | None = None
    budget_due: date | None = None
    budget_issued_at: datetime | None = None
    budget_ufemg: str | None = None
    accepted_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
    successor_id: int | None = None


class Member(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    partner_id: int
    name: str
    email: str | None
    added_at: datetime
    removed_at: datetime | None = None


class ApiKeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    partner_id: int
    secret_hash: str
    created_at: datetime
    member_id: int | None = None
    tables: frozenset[str] | None = None
    revoked_at: datetime | None = None
    revoke_reason: str | None = None


class Sanction(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    partner_id: int
    kind: SanctionKind
    reason: str
    imposed_at: datetime
    starts_at: datetime
    until: datetime | None
    amount_ufemg: str | None
    lifted_at: datetime | None
    imposed_by: str
    percent: str | None = None  # fines: a percentage of the month's supply instead of an amount
    bill_month: str | None = None  # fines: the first month whose invoice bills it


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    partner_id: int | None
    before: dict[str, object] | None
    after: dict[str, object] | None


class ConsoleUser(msgspec.Struct, frozen=True, kw_only=True):
    """Who a console session belongs to: a staff member (with a role) or a partner's member."""

    kind: str  # staff | member
    name: str
    role: Role | None = None  # staff only
    staff_key_id: str | None = None
    member_id: int | None = None
    partner_id: int | None = None  # member only: the one partner whose data they see

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    @property
    def actor(self) -> str:
        """How the audit log names this person (staff as in the admin API)."""
        if self.is_staff:
            return f"staff:{self.name}({self.role})"
        return f"member:{self.name}#{self.member_id}(partner {self.partner_id})"
