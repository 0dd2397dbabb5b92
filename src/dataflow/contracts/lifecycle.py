"""Lifecycle state machines: which event may move a contract from which state to which.

Paid supply (Art. 8–16): requested → fee_paid (Art. 9) → budget_issued (Art. 12/13) →
accepted (Art. 14) → active → ended; suspension (Art. 45 II) and cancellation on the way.
Sandbox (Art. 35–41): authorized → active (≤ 12 months) → extended (≤ 18 in total) → ended by
expiry, request or migration to paid supply (Art. 40) | suspended | cancelled (Art. 41).

The table is pure data; guards that need more than the state (dates, the team, the secrecy term)
live with the service, which checks both before it writes anything.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum

from dataflow.contracts.models import Contract, ContractKind, ContractState, PartnerStatus

__all__ = [
    "BUDGET_DAYS",
    "SANDBOX_MAX_MONTHS",
    "SANDBOX_MONTHS",
    "EndReason",
    "Event",
    "add_months",
    "allowed_events",
    "current_contract",
    "is_sandbox",
    "next_state",
    "partner_status",
]

SANDBOX_MONTHS = 12  # Art. 36
SANDBOX_MAX_MONTHS = 18  # Art. 36, with CGMD-SEF's extension
# Art. 12/13: days SEF has to issue the budget once the analysis fee is paid.
BUDGET_DAYS = {ContractKind.ON_DEMAND: 30, ContractKind.CONTINUOUS: 60}


class Event(StrEnum):
    PAY_FEE = "pay_fee"
    ISSUE_BUDGET = "issue_budget"
    ACCEPT = "accept"
    ACTIVATE = "activate"
    EXTEND = "extend"
    SUSPEND = "suspend"
    RESUME = "resume"
    END = "end"
    MIGRATE = "migrate"
    CANCEL = "cancel"


class EndReason(StrEnum):
    EXPIRY = "expiry"  # Art. 40 I
    REQUEST = "request"  # Art. 40 II
    MIGRATION = "migration"  # Art. 40 III
    TERM = "term"  # a paid contract reached its end


S = ContractState
_PAID: dict[tuple[ContractState, Event], ContractState] = {
    (S.REQUESTED, Event.PAY_FEE): S.FEE_PAID,
    (S.FEE_PAID, Event.ISSUE_BUDGET): S.BUDGET_ISSUED,
    (S.BUDGET_ISSUED, Event.ACCEPT): S.ACCEPTED,
    (S.ACCEPTED, Event.ACTIVATE): S.ACTIVE,
    (S.ACTIVE, Event.SUSPEND): S.SUSPENDED,
    (S.SUSPENDED, Event.RESUME): S.ACTIVE,
    (S.ACTIVE, Event.END): S.ENDED,
    (S.SUSPENDED, Event.END): S.ENDED,
    **{
        (s, Event.CANCEL): S.CANCELLED
        for s in (S.REQUESTED, S.FEE_PAID, S.BUDGET_ISSUED, S.ACCEPTED, S.ACTIVE, S.SUSPENDED)
    },
}
_SANDBOX: dict[tuple[ContractState, Event], ContractState] = {
    (S.AUTHORIZED, Event.ACTIVATE): S.ACTIVE,
    (S.ACTIVE, Event.EXTEND): S.EXTENDED,
    (S.EXTENDED, Event.EXTEND): S.EXTENDED,
    (S.ACTIVE, Event.SUSPEND): S.SUSPENDED,
    (S.EXTENDED, Event.SUSPEND): S.SUSPENDED,
    # RESUME returns to the state the suspension interrupted (resume_state); ACTIVE stands for it
    (S.SUSPENDED, Event.RESUME): S.ACTIVE,
    (S.ACTIVE, Event.END): S.ENDED,
    (S.EXTENDED, Event.END): S.ENDED,
    (S.SUSPENDED, Event.END): S.ENDED,
    (S.ACTIVE, Event.MIGRATE): S.ENDED,
    (S.EXTENDED, Event.MIGRATE): S.ENDED,
    **{(s, Event.CANCEL): S.CANCELLED for s in (S.AUTHORIZED, S.ACTIVE, S.EXTENDED, S.SUSPENDED)},
}


def is_sandbox(kind: ContractKind) -> bool:
    return kind is ContractKind.SANDBOX


def _table(kind: ContractKind) -> dict[tuple[ContractState, Event], ContractState]:
    return _SANDBOX if is_sandbox(kind) else _PAID


def next_state(kind: ContractKind, state: ContractState, event: Event) -> ContractState | None:
    """The state ``event`` leads to, or None when it is forbidden from ``state``."""
    return _table(kind).get((state, event))


def allowed_events(kind: ContractKind, state: ContractState) -> list[Event]:
    return [e for (s, e) in _table(kind) if s is state]


def add_months(start: date, months: int) -> date:
    """The last day of a period of ``months`` months that begins on ``start`` (inclusive)."""
    y, m = divmod(start.month - 1 + months, 12)
    year, month = start.year + y, m + 1
    try:  # the same day of the month `months` later, minus one day
        return date(year, month, start.day) - timedelta(days=1)
    except ValueError:  # that month is shorter: the period runs to its last day
        return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


_STATUS = {
    S.ACTIVE: PartnerStatus.ACTIVE,
    S.EXTENDED: PartnerStatus.ACTIVE,
    S.SUSPENDED: PartnerStatus.SUSPENDED,
    S.ENDED: PartnerStatus.ENDED,
    S.CANCELLED: PartnerStatus.CANCELLED,
}


def partner_status(state: ContractState) -> PartnerStatus:
    """What a contract state means for data access (requests not yet in force: pending)."""
    return _STATUS.get(state, PartnerStatus.PENDING)


_CLOSED_STATES = (ContractState.ENDED, ContractState.CANCELLED)
_IN_FORCE_STATES = (ContractState.ACTIVE, ContractState.EXTENDED, ContractState.SUSPENDED)


def current_contract(contracts_of_partner: list[Contract]) -> Contract | None:
    """The contract that governs access: the newest one in force, else the newest still open
    (a pending request), else the newest closed one."""
    in_force = [c for c in contracts_of_partner if c.state in _IN_FORCE_STATES]
    open_ = [c for c in contracts_of_partner if c.state not in _CLOSED_STATES]
    pool = in_force or open_ or contracts_of_partner
    return max(pool, key=lambda c: c.id) if pool else None
