"""What the API and meter enforce for a partner, derived from its contract and sanctions."""

from __future__ import annotations

from datetime import datetime

from dataflow.contracts.lifecycle import partner_status
from dataflow.contracts.models import (
    Contract,
    Entitlement,
    Partner,
    PartnerStatus,
    Sanction,
    SanctionKind,
)
from dataflow.contracts.service.agreements import plan_of


def _active_suspension(sanctions: list[Sanction], now: datetime) -> Sanction | None:
    for s in sanctions:
        if (
            s.kind is SanctionKind.SUSPENSION
            and s.lifted_at is None
            and s.starts_at <= now
            and (s.until is None or now < s.until)
        ):
            return s
    return None


def derive_entitlement(
    partner: Partner, contract: Contract | None, sanctions: list[Sanction], now: datetime
) -> Entitlement:
    """What the API and meter enforce for a partner right now."""
    if contract is None:
        return Entitlement(
            partner_id=partner.id,
            plan=partner.plan,
            status=PartnerStatus.PENDING,
            status_reason="no contract or authorization yet",
            monthly_cap=partner.monthly_cap,
        )
    status = partner_status(contract.state)
    reason: str | None = None
    if status is PartnerStatus.PENDING:
        reason = f"contract {contract.id} is {contract.state} (not yet in force)"
    elif status is not PartnerStatus.ACTIVE:
        reason = f"contract {contract.id} is {contract.state}"
        if contract.end_reason:
            reason += f" ({contract.end_reason})"
    suspension = _active_suspension(sanctions, now)
    if suspension is not None and status in (PartnerStatus.ACTIVE, PartnerStatus.SUSPENDED):
        status = PartnerStatus.SUSPENDED
        until = f" until {suspension.until.isoformat()}" if suspension.until else ""
        reason = f"suspended by sanction {suspension.id}{until}: {suspension.reason}"
    return Entitlement(
        partner_id=partner.id,
        plan=plan_of(contract.kind),
        status=status,
        status_reason=reason,
        monthly_cap=contract.monthly_cap,
        window_start=contract.start_date,
        window_end=contract.end_date,
        tables=contract.tables,
        rate_per_second=contract.rate_per_second,
        rate_per_minute=contract.rate_per_minute,
        contract_id=contract.id,
    )
