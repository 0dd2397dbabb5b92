"""Guards and effects of lifecycle events: what must hold, and which columns change.

``apply_event`` is pure: it reads a contract and the facts it needs and returns the column values to
write, or raises (ForbiddenTransition / NotPermitted) before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from dataflow.contracts.errors import ForbiddenTransition, NotPermitted
from dataflow.contracts.lifecycle import (
    BUDGET_DAYS,
    SANDBOX_MAX_MONTHS,
    SANDBOX_MONTHS,
    EndReason,
    Event,
    add_months,
    allowed_events,
    is_sandbox,
    next_state,
)
from dataflow.contracts.models import Contract, ContractKind, ContractState
from dataflow.contracts.terms import ContractTerms

__all__ = ["EventFacts", "apply_event", "parse_terms"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFacts:
    """Everything an event may need besides the contract itself."""

    now: datetime
    today: date
    team_size: int = 0
    budget_ufemg: str | None = None
    terms_toml: str | None = None
    new_end: date | None = None
    reason: EndReason | None = None
    migration_date: date | None = None


def parse_terms(toml: str, source: str) -> tuple[date, date | None, int | None]:
    """Validate terms; (start, end, cap)."""
    terms = ContractTerms.from_toml(toml, source=source)
    return terms.start, terms.end, terms.cap


def _refuse(c: Contract, event: Event, reason: str) -> NotPermitted:
    return NotPermitted(c.id, event.value, reason)


def _budget(c: Contract, facts: EventFacts) -> dict[str, Any]:
    raw = facts.budget_ufemg
    try:
        amount = Decimal(raw) if raw is not None else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount <= 0:
        raise _refuse(c, Event.ISSUE_BUDGET, f"a positive budget in UFEMG is required, got {raw!r}")
    return {"budget_issued_at": facts.now, "budget_ufemg": str(amount)}


def _activate_paid(c: Contract, facts: EventFacts) -> dict[str, Any]:
    toml = facts.terms_toml or c.terms_toml
    if c.kind is ContractKind.CONTINUOUS:
        if toml is None:
            raise _refuse(c, Event.ACTIVATE, "continuous supply needs contract terms (TOML)")
        start, end, cap = parse_terms(toml, f"contract {c.id}")
        return {"terms_toml": toml, "start_date": start, "end_date": end, "monthly_cap": cap}
    return {"terms_toml": toml, "start_date": c.start_date or facts.today}


def _activate_sandbox(c: Contract, facts: EventFacts) -> dict[str, Any]:
    if not c.secrecy_term_accepted:
        raise _refuse(
            c, Event.ACTIVATE, "the secrecy/LGPD commitment (Art. 35 I f) is not accepted"
        )
    if facts.team_size < 1:
        raise _refuse(c, Event.ACTIVATE, "the authorized team (Art. 35 I e) has no member")
    if c.start_date is None or c.end_date is None:
        raise _refuse(c, Event.ACTIVATE, "the authorization needs start and end dates")
    return {}


def _extend(c: Contract, facts: EventFacts) -> dict[str, Any]:
    assert c.start_date is not None and c.end_date is not None  # set at authorization
    limit = add_months(c.start_date, SANDBOX_MAX_MONTHS)
    if facts.new_end is None or facts.new_end <= c.end_date:
        raise _refuse(c, Event.EXTEND, f"the new end must be after the current end {c.end_date}")
    if facts.new_end > limit:
        raise _refuse(
            c,
            Event.EXTEND,
            f"{facts.new_end} is beyond {SANDBOX_MAX_MONTHS} months from {c.start_date} "
            f"(last allowed day {limit}, Art. 36)",
        )
    return {"end_date": facts.new_end}


def _end(c: Contract, facts: EventFacts) -> dict[str, Any]:
    reason = facts.reason or (EndReason.REQUEST if is_sandbox(c.kind) else EndReason.TERM)
    allowed = (EndReason.EXPIRY, EndReason.REQUEST) if is_sandbox(c.kind) else (EndReason.TERM,)
    if reason not in allowed:
        raise _refuse(c, Event.END, f"reason {reason} does not apply (use {', '.join(allowed)})")
    values: dict[str, Any] = {"ended_at": facts.now, "end_reason": reason.value}
    if reason is EndReason.EXPIRY:
        if c.end_date is None or facts.today <= c.end_date:
            raise _refuse(c, Event.END, f"the window runs until {c.end_date}: not expired")
    elif c.end_date is None or c.end_date >= facts.today:
        values["end_date"] = facts.today - timedelta(days=1)  # no data from today on
    return values


def _migrate(c: Contract, facts: EventFacts) -> dict[str, Any]:
    on = facts.migration_date
    if on is None or facts.terms_toml is None:
        raise _refuse(c, Event.MIGRATE, "migration needs the paid contract's terms (TOML)")
    assert c.start_date is not None and c.end_date is not None
    if not c.start_date < on <= c.end_date + timedelta(days=1):
        raise _refuse(
            c,
            Event.MIGRATE,
            f"paid supply must start inside the sandbox window ({c.start_date}..{c.end_date}), "
            f"got {on}",
        )
    return {
        "ended_at": facts.now,
        "end_reason": EndReason.MIGRATION.value,
        "end_date": on - timedelta(days=1),
    }


def apply_event(c: Contract, event: Event, facts: EventFacts) -> dict[str, Any]:
    """Column values after ``event`` (state included), or an error; nothing is written here."""
    target = next_state(c.kind, c.state, event)
    if target is None:
        allowed = [e.value for e in allowed_events(c.kind, c.state)]
        raise ForbiddenTransition(c.id, c.state.value, event.value, allowed)
    values: dict[str, Any] = {"state": target.value, "updated_at": facts.now}
    if event is Event.PAY_FEE:
        values["fee_paid_at"] = facts.now
        values["budget_due"] = facts.today + timedelta(days=BUDGET_DAYS[c.kind])
    elif event is Event.ISSUE_BUDGET:
        values.update(_budget(c, facts))
    elif event is Event.ACCEPT:
        values["accepted_at"] = facts.now
    elif event is Event.ACTIVATE:
        values.update(
            _activate_sandbox(c, facts) if is_sandbox(c.kind) else _activate_paid(c, facts)
        )
    elif event is Event.EXTEND:
        values.update(_extend(c, facts))
    elif event is Event.SUSPEND:
        values["resume_state"] = c.state.value
    elif event is Event.RESUME:
        values["state"] = (c.resume_state or ContractState.ACTIVE).value
        values["resume_state"] = None
    elif event is Event.END:
        values.update(_end(c, facts))
    elif event is Event.MIGRATE:
        values.update(_migrate(c, facts))
    elif event is Event.CANCEL:
        values.update({"ended_at": facts.now, "end_reason": "cancelled", "resume_state": None})
    return values


def sandbox_window_error(start: date, end: date) -> str | None:
    """Why an authorization window is not acceptable (Art. 36), or None."""
    if end < start:
        return f"end {end} is before start {start}"
    limit = add_months(start, SANDBOX_MONTHS)
    if end > limit:
        return f"at most {SANDBOX_MONTHS} months: the last allowed day is {limit} (Art. 36)"
    return None
