"""Every allowed and every forbidden lifecycle transition, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from dataflow.contracts.errors import ForbiddenTransition, InvalidInput, NotPermitted
from dataflow.contracts.lifecycle import EndReason, Event, add_months, next_state
from dataflow.contracts.models import ContractKind, ContractState, PartnerStatus, Plan
from dataflow.contracts.service import ContractsService
from dataflow.contracts.terms import ContractTerms

from .conftest import Clock

S = ContractState
START = date(2026, 3, 1)
END = date(2027, 2, 28)  # 12 months
PAID_TOML = 'kind = "continuous"\nstart = 2026-03-15\nunit_price_ufemg = "0.02"\n'

PAID_PATHS: dict[ContractState, list[Event]] = {
    S.REQUESTED: [],
    S.FEE_PAID: [Event.PAY_FEE],
    S.BUDGET_ISSUED: [Event.PAY_FEE, Event.ISSUE_BUDGET],
    S.ACCEPTED: [Event.PAY_FEE, Event.ISSUE_BUDGET, Event.ACCEPT],
    S.ACTIVE: [Event.PAY_FEE, Event.ISSUE_BUDGET, Event.ACCEPT, Event.ACTIVATE],
    S.SUSPENDED: [Event.PAY_FEE, Event.ISSUE_BUDGET, Event.ACCEPT, Event.ACTIVATE, Event.SUSPEND],
    S.ENDED: [Event.PAY_FEE, Event.ISSUE_BUDGET, Event.ACCEPT, Event.ACTIVATE, Event.END],
    S.CANCELLED: [Event.CANCEL],
}
SANDBOX_PATHS: dict[ContractState, list[Event]] = {
    S.AUTHORIZED: [],
    S.ACTIVE: [Event.ACTIVATE],
    S.EXTENDED: [Event.ACTIVATE, Event.EXTEND],
    S.SUSPENDED: [Event.ACTIVATE, Event.SUSPEND],
    S.ENDED: [Event.ACTIVATE, Event.END],
    S.CANCELLED: [Event.CANCEL],
}


def _new_contract(service: ContractsService, kind: ContractKind) -> int:
    partner = service.register_partner("Acme", Plan.SANDBOX)
    if kind is ContractKind.SANDBOX:
        return service.authorize_sandbox(
            partner.id, start=START, end=END, secrecy_term_accepted=True, monthly_cap=1000
        ).id
    return service.request_supply(partner.id, kind).id


def _fire(service: ContractsService, contract_id: int, event: Event) -> None:
    """Fire an event with the facts that satisfy its guards."""
    if event is Event.MIGRATE:
        service.migrate_to_paid(contract_id, PAID_TOML)
        return
    end = service.contract(contract_id).end_date
    service.transition(
        contract_id,
        event,
        budget_ufemg="1234.5",
        terms_toml='kind = "continuous"\nstart = 2026-04-01\n',
        new_end=(end or START) + timedelta(days=60),
    )


def _cases() -> list[tuple[ContractKind, ContractState]]:
    # on-demand shares the paid table (its own guard is tested below)
    paid = [(ContractKind.CONTINUOUS, s) for s in PAID_PATHS]
    return [*paid, *((ContractKind.SANDBOX, s) for s in SANDBOX_PATHS)]


def _reach(service: ContractsService, kind: ContractKind, state: ContractState) -> int:
    cid = _new_contract(service, kind)
    for step in (SANDBOX_PATHS if kind is ContractKind.SANDBOX else PAID_PATHS)[state]:
        _fire(service, cid, step)
    assert service.contract(cid).state is state
    return cid


@pytest.mark.parametrize(("kind", "state"), _cases(), ids=lambda v: str(v))
def test_every_event_from_every_state(
    service: ContractsService, kind: ContractKind, state: ContractState
) -> None:
    forbidden = [e for e in Event if next_state(kind, state, e) is None]
    allowed = [e for e in Event if e not in forbidden]
    # one contract takes every forbidden event: each must leave it exactly as it was
    cid = _reach(service, kind, state)
    before = service.contract(cid)
    audit_before = service.audit(limit=10_000)
    for event in forbidden:
        with pytest.raises(ForbiddenTransition, match=f"'{event}' is not allowed") as info:
            _fire(service, cid, event)
        assert info.value.state == state.value
        assert service.contract(cid) == before, f"forbidden {event} changed the contract"
    assert service.audit(limit=10_000) == audit_before
    # each allowed event on a fresh contract in that state
    for event in allowed:
        cid = _reach(service, kind, state)
        before = service.contract(cid)
        _fire(service, cid, event)
        after = service.contract(cid)
        target = next_state(kind, state, event)
        expected = before.resume_state if event is Event.RESUME else target
        assert after.state is expected, (kind, state, event)
        entry = service.audit(entity="contract", action=f"contract.{event}", limit=10_000)[-1]
        assert entry.entity_id == str(cid) and entry.before and entry.after
        assert (entry.before["state"], entry.after["state"]) == (state.value, after.state.value)


def test_on_demand_follows_the_paid_path(service: ContractsService) -> None:
    cid = _reach(service, ContractKind.ON_DEMAND, S.ACCEPTED)
    c = service.transition(cid, Event.ACTIVATE)  # a one-time package needs no monthly terms
    assert (c.state, c.start_date) == (S.ACTIVE, date(2026, 3, 2))
    assert service.transition(cid, Event.END).end_reason == "term"


def test_paid_path_records_dates_and_deadline(service: ContractsService, clock: Clock) -> None:
    p = service.register_partner("Acme", Plan.CONTINUOUS, cnpj="11.222.333/0001-81")
    c = service.request_supply(p.id, ContractKind.CONTINUOUS)
    assert service.entitlement(p.id).status is PartnerStatus.PENDING
    c = service.transition(c.id, Event.PAY_FEE)
    assert c.budget_due == date(2026, 3, 2) + timedelta(days=60)  # Art. 13
    od = service.request_supply(p.id, ContractKind.ON_DEMAND)
    od = service.transition(od.id, Event.PAY_FEE)
    assert od.budget_due == date(2026, 4, 1)  # Art. 12: 30 days
    clock.advance(days=31)
    assert [x.id for x in service.overdue_budgets()] == [od.id]
    clock.advance(days=30)
    assert {x.id for x in service.overdue_budgets()} == {od.id, c.id}
    with pytest.raises(NotPermitted, match="positive budget"):
        service.transition(c.id, Event.ISSUE_BUDGET, budget_ufemg="-1")
    c = service.transition(c.id, Event.ISSUE_BUDGET, budget_ufemg="5400")
    assert c.budget_ufemg == "5400" and c.budget_issued_at is not None
    assert [x.id for x in service.overdue_budgets()] == [od.id]
    c = service.transition(c.id, Event.ACCEPT)
    with pytest.raises(NotPermitted, match="needs contract terms"):
        service.transition(c.id, Event.ACTIVATE)
    toml = 'kind = "continuous"\nstart = 2026-05-01\nfranchise_accesses = 100\ncap = 500\n'
    c = service.transition(c.id, Event.ACTIVATE, terms_toml=toml)
    ent = service.entitlement(p.id)
    assert (ent.status, ent.plan, ent.window_start, ent.monthly_cap) == (
        PartnerStatus.ACTIVE,
        Plan.CONTINUOUS,
        date(2026, 5, 1),
        500,
    )
    assert service.partner(p.id).contract_toml == toml  # what billing reads


def test_sandbox_window_is_twelve_months_extendable_to_eighteen(service: ContractsService) -> None:
    p = service.register_partner("Lab", Plan.SANDBOX)
    with pytest.raises(InvalidInput, match="at most 12 months"):
        service.authorize_sandbox(p.id, start=START, end=END + timedelta(days=1))
    c = service.authorize_sandbox(p.id, start=START, end=END, secrecy_term_accepted=True)
    c = service.transition(c.id, Event.ACTIVATE)
    c = service.transition(c.id, Event.EXTEND, new_end=date(2027, 5, 31))
    assert c.state is S.EXTENDED
    limit = add_months(START, 18)
    assert limit == date(2027, 8, 31)
    before = service.contract(c.id)
    for bad, why in ((limit + timedelta(days=1), "beyond 18 months"), (date(2027, 5, 1), "after")):
        with pytest.raises(NotPermitted, match=why):
            service.transition(c.id, Event.EXTEND, new_end=bad)
        assert service.contract(c.id) == before
    c = service.transition(c.id, Event.EXTEND, new_end=limit)
    assert (c.state, c.end_date) == (S.EXTENDED, limit)
    assert service.entitlement(p.id).window_end == limit


def test_sandbox_activation_needs_secrecy_term_and_team(service: ContractsService) -> None:
    p = service.register_partner("Lab", Plan.SANDBOX)
    c = service.authorize_sandbox(p.id, start=START, end=END)
    with pytest.raises(NotPermitted, match="secrecy/LGPD"):
        service.transition(c.id, Event.ACTIVATE)
    c = service.accept_secrecy_term(c.id)
    [rep] = service.members(p.id)
    service.remove_member(rep.id)
    with pytest.raises(NotPermitted, match="authorized team"):
        service.transition(c.id, Event.ACTIVATE)
    assert service.contract(c.id).state is S.AUTHORIZED
    service.add_member(p.id, "Ana", email="ana@lab.example")
    assert service.transition(c.id, Event.ACTIVATE).state is S.ACTIVE


def test_suspend_resumes_to_the_interrupted_state(service: ContractsService) -> None:
    p = service.register_partner("Lab", Plan.SANDBOX)
    c = service.authorize_sandbox(p.id, start=START, end=END, secrecy_term_accepted=True)
    service.transition(c.id, Event.ACTIVATE)
    service.transition(c.id, Event.EXTEND, new_end=date(2027, 6, 30))
    c = service.transition(c.id, Event.SUSPEND)
    assert service.entitlement(p.id).status is PartnerStatus.SUSPENDED
    assert service.transition(c.id, Event.RESUME).state is S.EXTENDED
    assert service.entitlement(p.id).status is PartnerStatus.ACTIVE


def test_expiry_ends_the_sandbox(service: ContractsService, clock: Clock) -> None:
    p = service.register_partner("Lab", Plan.SANDBOX)
    c = service.authorize_sandbox(
        p.id, start=START, end=date(2026, 3, 31), secrecy_term_accepted=True
    )
    service.transition(c.id, Event.ACTIVATE)
    with pytest.raises(NotPermitted, match="not expired"):
        service.transition(c.id, Event.END, reason=EndReason.EXPIRY)
    assert service.sweep() == []
    clock.advance(days=30)  # 2026-04-01
    [ended] = service.sweep()
    assert (ended.state, ended.end_reason) == (S.ENDED, "expiry")
    assert service.entitlement(p.id).status is PartnerStatus.ENDED


def test_end_by_request_closes_the_window_today(service: ContractsService) -> None:
    p = service.register_partner("Lab", Plan.SANDBOX)
    c = service.authorize_sandbox(p.id, start=START, end=END, secrecy_term_accepted=True)
    service.transition(c.id, Event.ACTIVATE)
    c = service.transition(c.id, Event.END, reason=EndReason.REQUEST)
    assert (c.end_reason, c.end_date) == ("request", date(2026, 3, 1))


def test_migration_mid_month_starts_billing_on_the_migration_date(
    service: ContractsService, clock: Clock
) -> None:
    p = service.register_partner("Lab", Plan.SANDBOX)
    c = service.authorize_sandbox(
        p.id,
        start=date(2026, 1, 5),
        end=date(2027, 1, 4),
        secrecy_term_accepted=True,
        monthly_cap=50_000,
        tables=frozenset({"t1"}),
    )
    service.transition(c.id, Event.ACTIVATE)
    clock.advance(days=13)  # 2026-03-15
    before = service.contract(c.id)
    with pytest.raises(NotPermitted, match="inside the sandbox window"):
        service.migrate_to_paid(c.id, PAID_TOML.replace("2026-03-15", "2027-02-01"))
    assert service.contract(c.id) == before
    ended, paid = service.migrate_to_paid(c.id, PAID_TOML)
    assert (ended.state, ended.end_reason, ended.end_date) == (
        S.ENDED,
        "migration",
        date(2026, 3, 14),
    )
    assert ended.successor_id == paid.id
    assert (paid.kind, paid.state, paid.start_date) == (
        ContractKind.CONTINUOUS,
        S.ACTIVE,
        date(2026, 3, 15),
    )
    ent = service.entitlement(p.id)
    assert (ent.plan, ent.status, ent.window_start, ent.contract_id) == (
        Plan.CONTINUOUS,
        PartnerStatus.ACTIVE,
        date(2026, 3, 15),
        paid.id,
    )
    assert ent.tables == frozenset({"t1"})  # the authorized tables carry over
    terms = ContractTerms.from_toml(service.partner(p.id).contract_toml or "")
    assert terms.start == date(2026, 3, 15)  # billing prorates March from the 15th
    assert [e.action for e in service.audit(partner_id=p.id, entity="contract")][-2:] == [
        "contract.migrate",
        "contract.create",
    ]
    with pytest.raises(ForbiddenTransition):
        service.migrate_to_paid(c.id, PAID_TOML)
