from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from dataflow.contracts.actors import Actor
from dataflow.contracts.errors import (
    InvalidInput,
    KeyNotFound,
    MemberNotFound,
    PartnerNotFound,
    RoleRequired,
)
from dataflow.contracts.keys import parse_key, secret_matches
from dataflow.contracts.models import ContractKind, PartnerStatus, Plan, Role, SanctionKind
from dataflow.contracts.service import ContractsService

from .conftest import Clock

OPERATOR = Actor("staff:Op(operator)", Role.OPERATOR)
FINANCE = Actor("staff:Fin(finance)", Role.FINANCE)
AUDITOR = Actor("staff:Aud(auditor)", Role.AUDITOR)
CONTINUOUS_TERMS = 'kind = "continuous"\nstart = 2026-01-01\nunit_price_ufemg = "0.02"\n'


def _key_id(key: str) -> str:
    parsed = parse_key(key)
    assert parsed is not None
    return parsed[0]


def test_partner_and_key_lifecycle(service: ContractsService) -> None:
    partner = service.create_partner("Acme", Plan.SANDBOX, monthly_cap=100)
    key = service.create_key(partner.id)
    parsed = parse_key(key)
    assert parsed is not None
    key_id, secret = parsed
    [cred] = service.credentials()
    assert (cred.key_id, cred.partner_id) == (key_id, partner.id)
    assert cred.member_id == service.members(partner.id)[0].id
    assert secret not in cred.secret_hash and secret_matches(secret, cred.secret_hash)
    assert service.entitlements()[partner.id].monthly_cap == 100
    assert service.revoke_key(key_id)
    assert not service.revoke_key(key_id)
    assert service.credentials() == []
    entries = service.audit(entity="key")
    assert [e.action for e in entries] == ["key.create", "key.revoke"]
    assert all("secret_hash" not in (e.after or {}) for e in entries)


def test_entitlement_window_from_contract(service: ContractsService) -> None:
    toml = 'kind = "sandbox"\nstart = 2026-09-01\nend = 2027-08-31\ncap = 5\n'
    p = service.create_partner("Lab", Plan.SANDBOX, monthly_cap=5, contract_toml=toml)
    ent = service.entitlements()[p.id]
    assert (ent.window_start, ent.window_end) == (date(2026, 9, 1), date(2027, 8, 31))


def test_key_for_unknown_partner(service: ContractsService) -> None:
    with pytest.raises(PartnerNotFound, match="999"):
        service.create_key(999)


def test_cnpj_numeric_and_alphanumeric(service: ContractsService) -> None:
    assert service.create_partner("A", Plan.SANDBOX, cnpj="11.222.333/0001-81").cnpj == (
        "11222333000181"
    )
    assert service.register_partner("B", Plan.SANDBOX, cnpj="12.ABC.345/01DE-35").cnpj == (
        "12ABC34501DE35"
    )
    for bad in ("11.222.333/0001-82", "12.ABC.345/01DE-36", "123"):
        with pytest.raises(InvalidInput, match="not a valid CNPJ"):
            service.register_partner("C", Plan.SANDBOX, cnpj=bad)
    with pytest.raises(InvalidInput, match="already registered"):
        service.register_partner("D", Plan.SANDBOX, cnpj="11222333000181")
    assert len(service.partners()) == 2


def test_only_team_members_hold_keys(service: ContractsService) -> None:
    p = service.create_partner("Acme", Plan.CONTINUOUS)
    other = service.create_partner("Other", Plan.CONTINUOUS)
    ana = service.add_member(p.id, "Ana")
    with pytest.raises(InvalidInput, match="2 team members"):
        service.create_key(p.id)
    with pytest.raises(MemberNotFound):  # a member of another partner
        service.create_key(p.id, member_id=service.members(other.id)[0].id)
    k1 = service.create_key(p.id, member_id=ana.id, tables=frozenset({"t1"}))
    k2 = service.create_key(p.id, member_id=ana.id)
    rep_key = service.create_key(p.id, member_id=service.members(p.id)[0].id)
    creds = {c.key_id: c for c in service.credentials()}
    assert creds[_key_id(k1)].tables == frozenset({"t1"})
    revoked = service.remove_member(ana.id, actor=OPERATOR)
    assert sorted(revoked) == sorted([_key_id(k1), _key_id(k2)])
    assert {c.key_id for c in service.credentials()} == {_key_id(rep_key)}
    with pytest.raises(MemberNotFound):
        service.create_key(p.id, member_id=ana.id)
    with pytest.raises(MemberNotFound):
        service.remove_member(ana.id)
    reasons = {k.key_id: k.revoke_reason for k in service.keys(p.id)}
    assert reasons[_key_id(k1)] == "member removed from the authorized team"


def test_rotate_replaces_the_key(service: ContractsService) -> None:
    p = service.create_partner("Acme", Plan.CONTINUOUS)
    old = service.create_key(p.id, tables=frozenset({"t"}))
    new = service.rotate_key(_key_id(old))
    [cred] = service.credentials()
    assert cred.key_id == _key_id(new) and cred.tables == frozenset({"t"})
    with pytest.raises(KeyNotFound):
        service.rotate_key(_key_id(old))


def test_sanctions(service: ContractsService, clock: Clock) -> None:
    p = service.create_partner("Acme", Plan.CONTINUOUS)
    w = service.warn(p.id, "late monitoring report")
    assert service.entitlement(p.id).status is PartnerStatus.ACTIVE  # a warning blocks nothing
    f = service.fine(p.id, "breach", "1234.5")
    assert (f.kind, f.amount_ufemg) == (SanctionKind.FINE, "1234.5000")
    assert Decimal(f.amount_ufemg or "") == Decimal("1234.5")
    for bad in ("0", "-3", "abc", "NaN"):
        with pytest.raises(InvalidInput):
            service.fine(p.id, "breach", bad)
    s = service.suspend(p.id, "CGMD-SEF deliberation 7/2026", days=2)
    ent = service.entitlement(p.id)
    assert ent.status is PartnerStatus.SUSPENDED and "sanction" in (ent.status_reason or "")
    clock.advance(days=1, hours=23)
    assert service.entitlement(p.id).status is PartnerStatus.SUSPENDED
    clock.advance(hours=1)  # the period is over: access resumes by itself
    assert service.entitlement(p.id).status is PartnerStatus.ACTIVE
    s2 = service.suspend(p.id, "again")  # open-ended until lifted
    assert service.entitlement(p.id).status is PartnerStatus.SUSPENDED
    service.lift(s2.id, actor=OPERATOR)
    assert service.entitlement(p.id).status is PartnerStatus.ACTIVE
    with pytest.raises(InvalidInput):
        service.suspend(p.id, "past", until=clock.now - timedelta(days=1))
    actions = [e.action for e in service.audit(entity="sanction")]
    assert actions == [
        "sanction.warning",
        "sanction.fine",
        "sanction.suspension",
        "sanction.suspension",
        "sanction.lift",
    ]
    assert {x.id for x in service.sanctions(p.id)} == {w.id, f.id, s.id, s2.id}


def test_a_pending_partner_gets_no_data(service: ContractsService) -> None:
    p = service.register_partner("New", Plan.SANDBOX)
    ent = service.entitlement(p.id)
    assert ent.status is PartnerStatus.PENDING
    service.suspend(p.id, "pre-emptive")
    assert service.entitlement(p.id).status is PartnerStatus.PENDING


def test_usage_ledger_is_idempotent(service: ContractsService) -> None:
    p = service.create_partner("Acme", Plan.CONTINUOUS)
    service.record_usage(p.id, "2026-11", 10)
    service.record_usage(p.id, "2026-11", 12)
    service.record_usage(p.id, "2026-11", 12)
    assert service.usage(p.id, "2026-11") == 12
    assert service.usage_for_month("2026-11") == {p.id: 12}
    assert service.usage(p.id, "2026-10") == 0


def test_fines_are_finance_s_to_impose_and_lift(service: ContractsService, clock: Clock) -> None:
    """Art. 45 III fines: finance imposes and lifts them; an operator can do neither."""
    p = service.create_partner("Acme", Plan.CONTINUOUS)
    with pytest.raises(RoleRequired, match="needs the finance role"):
        service.fine(p.id, "breach", "500", actor=OPERATOR)
    f1 = service.fine(p.id, "breach", "500", actor=FINANCE)
    assert (f1.bill_month, f1.imposed_by) == ("2026-03", "staff:Fin(finance)")
    pct = service.fine(p.id, "late report", percent="5", month="2026-05", actor=FINANCE)
    assert (pct.percent, pct.amount_ufemg, pct.bill_month) == ("5", None, "2026-05")
    for bad in ({"amount_ufemg": "1", "percent": "2"}, {}, {"percent": "150"}):
        with pytest.raises(InvalidInput):
            service.fine(p.id, "x", actor=FINANCE, **bad)  # type: ignore[arg-type]
    with pytest.raises(RoleRequired, match="lifting a fine"):
        service.lift(f1.id, actor=OPERATOR)  # it used to silently leave billing
    assert service.lift(f1.id, actor=FINANCE).lifted_at is not None
    s = service.suspend(p.id, "CGMD 1/2026", actor=OPERATOR)
    with pytest.raises(RoleRequired):
        service.lift(s.id, actor=AUDITOR)
    service.lift(s.id, actor=OPERATOR)
    clock.advance(days=31)
    assert service.fine(p.id, "next month", "7", actor=FINANCE).bill_month == "2026-04"
    actors = {(e.action, e.actor) for e in service.audit(entity="sanction")}
    assert ("sanction.lift", "staff:Fin(finance)") in actors


def test_paid_request_carries_scope_and_rates(service: ContractsService) -> None:
    p = service.register_partner("Acme", Plan.CONTINUOUS)
    c = service.request_supply(
        p.id, ContractKind.CONTINUOUS, tables=frozenset({"t"}), rate_per_second=5
    )
    assert (c.tables, c.rate_per_second, c.rate_per_minute) == (frozenset({"t"}), 5, None)


def test_partner_create_sandbox_takes_the_authorization_guards(
    service: ContractsService, clock: Clock
) -> None:
    """Art. 35–36: the short path is the long one — a window ≤ 12 months from today by default,
    the secrecy term signed by the representative and audited, a team member, then swept."""
    p = service.create_partner("Lab", Plan.SANDBOX, monthly_cap=10, representative="Rita Souza")
    [c] = service.contracts(p.id)
    assert (c.state, c.start_date, c.end_date) == ("active", date(2026, 3, 2), date(2027, 3, 1))
    assert (c.secrecy_term_accepted, c.secrecy_signed_by) == (True, "Rita Souza")
    assert [m.name for m in service.members(p.id)] == ["Rita Souza"]
    actions = [e.action for e in service.audit(partner_id=p.id, entity="contract")]
    assert actions == ["contract.authorize", "contract.secrecy", "contract.activate"]
    secrecy = next(e for e in service.audit(partner_id=p.id) if e.action == "contract.secrecy")
    assert secrecy.after is not None and secrecy.after["secrecy_signed_by"] == "Rita Souza"
    for start, end in ((date(2026, 1, 1), date(2029, 1, 1)), (date(2026, 5, 1), date(2026, 4, 1))):
        with pytest.raises(InvalidInput, match="window"):
            service.create_partner("Too long", Plan.SANDBOX, start=start, end=end)
    open_ended = 'kind = "sandbox"\nstart = 2026-04-01\n'  # no end: 12 months from its start
    q = service.create_partner("Terms", Plan.SANDBOX, contract_toml=open_ended)
    assert service.contracts(q.id)[0].end_date == date(2027, 3, 31)
    with pytest.raises(InvalidInput, match="contradicts"):
        service.create_partner("X", Plan.CONTINUOUS, contract_toml=open_ended)
    with pytest.raises(InvalidInput, match="contradicts"):
        service.create_partner("Y", Plan.SANDBOX, contract_toml=CONTINUOUS_TERMS)
    assert {x.name for x in service.partners()} == {"Lab", "Terms"}  # refusals left nothing
    clock.advance(days=366)
    assert {x.partner_id for x in service.sweep()} == {p.id}  # expired: ended by the sweep
    assert service.entitlement(p.id).status is PartnerStatus.ENDED


def test_priced_terms_at_creation_need_finance(service: ContractsService) -> None:
    with pytest.raises(RoleRequired):
        service.create_partner(
            "Acme", Plan.CONTINUOUS, contract_toml=CONTINUOUS_TERMS, actor=OPERATOR
        )
    p = service.create_partner(
        "Acme", Plan.CONTINUOUS, contract_toml=CONTINUOUS_TERMS, actor=FINANCE
    )
    assert service.partner(p.id).contract_toml == CONTINUOUS_TERMS
