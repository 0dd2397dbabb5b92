"""Invoice lifecycle: every action audited with its actor, fines from sanctions to lines and
credits, overdue invoices, request DAEs that move their request on (Art. 9, 14, 45)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from dataflow.billing.budget import analysis_fee_lines
from dataflow.billing.repository import StoredInvoice
from dataflow.billing.service import BillingService
from dataflow.contracts.actors import Actor
from dataflow.contracts.errors import RoleRequired
from dataflow.contracts.lifecycle import Event
from dataflow.contracts.models import ContractKind, Plan, Role
from dataflow.contracts.service import ContractsService

from .conftest import add_partner, set_usage

CONTINUOUS = (
    'kind = "continuous"\nstart = 2026-01-01\nunit_price_ufemg = "0.02"\n'
    'franchise_accesses = 200000\nsupport_ufemg = "300"\n'
)
ISSUE_TIME = datetime(2026, 4, 10, 12, tzinfo=UTC)  # due 15 days later: 2026-04-25
FIN = Actor("staff:Fin(finance)", Role.FINANCE)
OP = Actor("staff:Op(operator)", Role.OPERATOR)


def _request_dae(
    billing: BillingService, kind: str, contract_id: int, **kw: object
) -> StoredInvoice:
    _, lines = analysis_fee_lines(date(2026, 3, 2), billing.ref.ufemg)
    return billing.lifecycle.create_request_invoice(
        kind=kind,
        payer_name="Beta Ltda",
        payer_cnpj=None,
        lines=lines,
        brl_per_ufemg=billing.ref.ufemg.brl_per_ufemg(2026),
        contract_id=contract_id,
        actor=FIN,
        **kw,  # type: ignore[arg-type]
    )


def _audit(engine: Engine, **where: object) -> list[tuple[str, str]]:
    return [(e.action, e.actor) for e in ContractsService(engine).audit(limit=10_000, **where)]


def test_every_billing_action_is_audited_with_its_actor(
    billing: BillingService, billing_engine: Engine
) -> None:
    p = add_partner(billing_engine, CONTINUOUS)
    set_usage(billing_engine, p, "2026-03", 200_000)
    run = billing.run_month("2026-03", now=ISSUE_TIME, actor=FIN)
    [inv] = billing.lifecycle.issue_due(now=ISSUE_TIME, actor=FIN)
    billing.lifecycle.credit_note(inv.id, Decimal("100"), "goodwill", now=ISSUE_TIME, actor=FIN)
    assert inv.dae_reference is not None
    billing.lifecycle.record_payment(
        inv.dae_reference, Decimal("10"), paid_on=date(2026, 4, 20), now=ISSUE_TIME, actor=FIN
    )
    set_usage(billing_engine, p, "2026-04", 200_000)
    billing.run_month("2026-04", now=ISSUE_TIME, actor=FIN)
    [april] = billing.lifecycle.list_invoices(month="2026-04")
    billing.lifecycle.void(april.id, "duplicate", now=ISSUE_TIME, actor=FIN)
    trail = _audit(billing_engine)
    for action in (
        "billing.run.start",
        "billing.run.finish",
        "invoice.issue",
        "credit_note.create",
        "payment.record",
        "invoice.void",
    ):
        assert (action, "staff:Fin(finance)") in trail, action
    [start] = ContractsService(billing_engine).audit(action="billing.run.start", limit=1)
    assert start.entity_id == str(run.run_id)
    stored, _ = billing.lifecycle.get(april.id)
    assert stored.status == "void"
    # an operator does none of it, and a refusal leaves no trace
    before = _audit(billing_engine)
    for call in (
        lambda: billing.run_month("2026-05", actor=OP),
        lambda: billing.lifecycle.issue(april.id, actor=OP),
        lambda: billing.lifecycle.void(inv.id, "x", actor=OP),
        lambda: billing.lifecycle.credit_note(inv.id, Decimal(1), "x", actor=OP),
        lambda: billing.lifecycle.record_payment("1", Decimal(1), paid_on=date.today(), actor=OP),
    ):
        with pytest.raises(RoleRequired):
            call()
    assert _audit(billing_engine) == before


def test_fines_from_every_door_are_billed_and_credited_when_lifted(
    billing: BillingService, billing_engine: Engine
) -> None:
    """Art. 45 III: a sanction fine (partner fine, admin API) is the invoice line; lifting it
    before issue drops the line, after issue credits it — once."""
    contracts = ContractsService(billing_engine)
    p = add_partner(billing_engine, CONTINUOUS)
    set_usage(billing_engine, p, "2026-03", 200_000)
    kept = contracts.fine(p, "CGMD 1/2026", "100", month="2026-03", actor=FIN)
    dropped = contracts.fine(p, "CGMD 2/2026", percent="10", month="2026-03", actor=FIN)
    billing.run_month("2026-03", now=ISSUE_TIME)
    [draft] = billing.lifecycle.list_invoices(month="2026-03")
    lines = billing.lifecycle.get(draft.id)[1]
    assert {x.sanction_id for x in lines if x.code == "fine"} == {kept.id, dropped.id}
    assert draft.total_ufemg == Decimal("4830")  # 4,300 + 100 + 10% of 4,300
    contracts.lift(dropped.id, actor=FIN)
    billing.run_month("2026-03", now=ISSUE_TIME)
    [inv] = billing.lifecycle.issue_due(now=ISSUE_TIME)
    assert inv.total_ufemg == Decimal("4400")  # the withdrawn fine left the draft
    contracts.lift(kept.id, actor=FIN)  # after issue: the invoice stays, a credit note follows
    run = billing.run_month("2026-04", now=ISSUE_TIME)
    assert run.fine_credits == 1
    [note] = billing.lifecycle.credit_notes(inv.id)
    assert note.amount_ufemg == Decimal("100.0000") and f"sanction {kept.id}" in note.reason
    assert billing.run_month("2026-04", now=ISSUE_TIME).fine_credits == 0  # once
    assert billing.lifecycle.get(inv.id)[0].total_ufemg == Decimal("4400")  # never edited


def test_past_due_invoices_become_overdue_and_only_a_warning_is_proposed(
    billing_engine: Engine, billing: BillingService
) -> None:
    p = add_partner(billing_engine, CONTINUOUS)
    set_usage(billing_engine, p, "2026-03", 200_000)
    billing.run_month("2026-03", now=ISSUE_TIME)
    [inv] = billing.lifecycle.issue_due(now=ISSUE_TIME)
    assert billing.run_month("2026-03", now=ISSUE_TIME).overdue == []  # due 2026-04-25
    service = BillingService(billing_engine, billing.ref, grace_days=3, overdue_warning_days=30)
    late = datetime(2026, 6, 1, 12, tzinfo=UTC)  # 37 days after the due date
    run = service.run_month("2026-05", now=late)
    assert run.overdue == [inv.number]
    [proposal] = run.warning_proposals
    assert f"partner {p}" in proposal and "Art. 45 I warning" in proposal
    assert billing.lifecycle.get(inv.id)[0].status == "overdue"
    contracts = ContractsService(billing_engine)
    assert contracts.sanctions(p) == []  # proposed, never imposed; no suspension either
    assert contracts.entitlement(p).status == "active"
    assert ("invoice.overdue", "system") in _audit(billing_engine)
    with billing_engine.connect() as conn:
        from dataflow.billing.repository import recent_runs

        [last, *_] = recent_runs(conn)
    assert last["overdue"] == 1 and inv.number in (last["detail"] or "")
    # an overdue DAE is still payable
    assert inv.dae_reference is not None
    paid = billing.lifecycle.record_payment(
        inv.dae_reference, inv.total_brl, paid_on=date(2026, 6, 2), now=late
    )
    assert paid.status == "paid"


def test_paying_request_daes_moves_the_request_on(
    billing: BillingService, billing_engine: Engine
) -> None:
    """Art. 9 IV: the fee's payment records pay_fee; Art. 14: the budget's records accept."""
    contracts = ContractsService(billing_engine)
    partner = contracts.register_partner("Beta Ltda", Plan.CONTINUOUS, cnpj="11222333000181")
    c = contracts.request_supply(partner.id, ContractKind.ON_DEMAND)
    fee = _request_dae(billing, "analysis_fee", c.id)
    assert fee.partner_id == partner.id and contracts.contract(c.id).state == "requested"
    assert fee.dae_reference is not None
    billing.lifecycle.record_payment(
        fee.dae_reference, fee.total_brl, paid_on=date(2026, 3, 3), actor=FIN
    )
    assert contracts.contract(c.id).state == "fee_paid"
    budget = _request_dae(billing, "on_demand", c.id, budget_ufemg=Decimal("50"))
    after = contracts.contract(c.id)
    assert (after.state, after.budget_ufemg) == ("budget_issued", "50")
    assert budget.dae_reference is not None
    billing.lifecycle.record_payment(
        budget.dae_reference, budget.total_brl, paid_on=date(2026, 3, 4), actor=FIN
    )
    assert contracts.contract(c.id).state == "accepted"
    moves = [e.action for e in contracts.audit(entity="contract") if e.entity_id == str(c.id)]
    assert moves == [
        "contract.request",
        "contract.pay_fee",
        "contract.issue_budget",
        "contract.accept",
    ]
    # a paper payment recorded by hand first: the DAE's payment then changes nothing more
    d = contracts.request_supply(partner.id, ContractKind.CONTINUOUS)
    paper = _request_dae(billing, "analysis_fee", d.id)
    contracts.transition(d.id, Event.PAY_FEE, actor=FIN)
    assert paper.dae_reference is not None
    billing.lifecycle.record_payment(
        paper.dae_reference, paper.total_brl, paid_on=date(2026, 3, 5), actor=FIN
    )
    assert contracts.contract(d.id).state == "fee_paid"
