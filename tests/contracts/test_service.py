from __future__ import annotations

from datetime import date

import pytest

from dataflow.contracts.errors import PartnerNotFound
from dataflow.contracts.keys import parse_key, secret_matches
from dataflow.contracts.models import Plan
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService


@pytest.fixture
def service(database_url: str) -> ContractsService:
    return ContractsService(make_engine(database_url))


def test_partner_and_key_lifecycle(service: ContractsService) -> None:
    partner = service.create_partner("Acme", Plan.SANDBOX, monthly_cap=100)
    key = service.create_key(partner.id)
    parsed = parse_key(key)
    assert parsed is not None
    key_id, secret = parsed
    [cred] = service.credentials()
    assert (cred.key_id, cred.partner_id) == (key_id, partner.id)
    assert secret not in cred.secret_hash and secret_matches(secret, cred.secret_hash)
    assert service.entitlements()[partner.id].monthly_cap == 100
    assert service.revoke_key(key_id)
    assert not service.revoke_key(key_id)
    assert service.credentials() == []


def test_entitlement_window_from_contract(service: ContractsService) -> None:
    toml = 'kind = "sandbox"\nstart = 2026-09-01\nend = 2027-08-31\ncap = 5\n'
    p = service.create_partner("Lab", Plan.SANDBOX, monthly_cap=5, contract_toml=toml)
    ent = service.entitlements()[p.id]
    assert (ent.window_start, ent.window_end) == (date(2026, 9, 1), date(2027, 8, 31))


def test_key_for_unknown_partner(service: ContractsService) -> None:
    with pytest.raises(PartnerNotFound, match="999"):
        service.create_key(999)


def test_usage_ledger_is_idempotent(service: ContractsService) -> None:
    p = service.create_partner("Acme", Plan.CONTINUOUS)
    service.record_usage(p.id, "2026-11", 10)
    service.record_usage(p.id, "2026-11", 12)
    service.record_usage(p.id, "2026-11", 12)
    assert service.usage(p.id, "2026-11") == 12
    assert service.usage_for_month("2026-11") == {p.id: 12}
    assert service.usage(p.id, "2026-10") == 0
