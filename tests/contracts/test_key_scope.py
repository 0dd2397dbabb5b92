"""A key's tables narrow its contract's, never widen them (issue 18, item 1)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataflow.contracts.errors import InvalidInput
from dataflow.contracts.keys import key_scope, parse_key
from dataflow.contracts.lifecycle import Event
from dataflow.contracts.models import Plan
from dataflow.contracts.service import ContractsService

T_A, T_B = frozenset({"t_a"}), frozenset({"t_b"})


def _key_id(key: str) -> str:
    parsed = parse_key(key)
    assert parsed is not None
    return parsed[0]


def _sandbox(service: ContractsService, tables: frozenset[str] | None, name: str = "Lab") -> int:
    p = service.register_partner(name, Plan.SANDBOX)
    c = service.authorize_sandbox(
        p.id,
        start=date(2026, 3, 1),
        end=date(2026, 12, 31),
        tables=tables,
        secrecy_term_accepted=True,
    )
    service.transition(c.id, Event.ACTIVATE)
    return p.id


def test_a_key_cannot_name_tables_outside_its_contract(service: ContractsService) -> None:
    pid = _sandbox(service, T_A)
    for bad in (T_B, T_A | T_B):
        outside = r"t_b not covered by contract \d+ \(its tables: t_a\)"
        with pytest.raises(InvalidInput, match=outside):
            service.create_key(pid, tables=bad)
    with pytest.raises(InvalidInput, match="empty list"):
        service.create_key(pid, tables=frozenset())
    assert service.keys(pid) == []  # nothing was created, nothing audited
    assert service.audit(entity="key") == []
    key = service.create_key(pid, tables=T_A)  # narrowing (here: equal) is fine
    assert service.credentials()[0].key_id == _key_id(key)
    assert service.create_key(pid)  # no tables: the key follows the contract


def test_a_key_without_a_contract_cannot_have_tables(service: ContractsService) -> None:
    p = service.register_partner("Pending", Plan.CONTINUOUS)
    with pytest.raises(InvalidInput, match="no contract yet"):
        service.create_key(p.id, tables=T_A)
    assert service.create_key(p.id)


def test_rotating_a_key_the_contract_no_longer_covers_is_refused(
    service: ContractsService,
) -> None:
    pid = _sandbox(service, T_A | T_B)
    key = service.create_key(pid, tables=T_B)
    # The contract is replaced by a narrower one (cancelled, a new authorization for t_a only).
    (first,) = service.contracts(pid)
    service.transition(first.id, Event.CANCEL)
    service.authorize_sandbox(
        pid, start=date(2026, 3, 1), end=date(2026, 12, 31), tables=T_A, secrecy_term_accepted=True
    )
    with pytest.raises(InvalidInput, match=r"key \w+'s scope: t_b not covered .* revoke this one"):
        service.rotate_key(_key_id(key))
    assert [k.revoked_at for k in service.keys(pid)] == [None]  # the old key is untouched
    assert service.entitlement(pid).tables == T_A


scopes = st.none() | st.frozensets(st.sampled_from(["a", "b", "c", "d"]))


@given(key=scopes, contract=scopes)
def test_key_scope_is_never_wider_than_either_side(
    key: frozenset[str] | None, contract: frozenset[str] | None
) -> None:
    scope = key_scope(key, contract)
    for side in (key, contract):
        if side is not None:
            assert scope is not None and scope <= side
    if key is None and contract is None:
        assert scope is None
