"""Schemathesis over every admin operation, with each staff role's credential: never a 5xx.

Generated inputs follow the OpenAPI document (bounded examples per operation and role, to stay
within seconds); half of the cases point their path ids at records that exist, so the checks
behind the 404 are reached too. A failure prints the request that reproduces it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from schemathesis.checks import not_a_server_error

from dataflow.aggregation.release import ReleaseSummary
from dataflow.api.app import create_app
from dataflow.contracts.models import ContractKind, Plan, Role
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.metering.embedded import EmbeddedMeter
from tests.conftest import make_settings

EXAMPLES = 12  # per operation and role: 23 operations x 3 roles in well under a minute


@pytest.fixture
def staff_app(
    tmp_path: Path, release: ReleaseSummary
) -> Iterator[tuple[Litestar, dict[Role, str], dict[str, list[object]]]]:
    settings = make_settings(tmp_path, release_dir=release.path)
    contracts = ContractsService(make_engine(settings.database_url))
    partner = contracts.create_partner("Fuzz", Plan.CONTINUOUS)
    sandbox = contracts.create_partner("Sandbox", Plan.SANDBOX, monthly_cap=10)
    request = contracts.request_supply(partner.id, ContractKind.CONTINUOUS)
    member = contracts.add_member(partner.id, "Member")
    key = contracts.create_key(partner.id, member_id=member.id)
    fine = contracts.fine(sandbox.id, "fuzz", "10")
    existing: dict[str, list[object]] = {
        "partner_id": [partner.id, sandbox.id],
        "contract_id": [request.id, *(c.id for c in contracts.contracts(sandbox.id))],
        "member_id": [member.id],
        "key_id": [key.split("_")[1]],
        "sanction_id": [fine.id],
    }
    staff = {role: contracts.create_staff(f"{role}-fuzz", role) for role in Role}
    app = create_app(settings, meter=EmbeddedMeter(), contracts=contracts)
    yield app, staff, existing


def test_no_admin_operation_answers_5xx_to_any_staff_role(
    staff_app: tuple[Litestar, dict[Role, str], dict[str, list[object]]],
) -> None:
    app, staff, existing = staff_app
    schema = schemathesis.openapi.from_asgi("/docs/openapi.json", app)
    operations = [
        op for op in (r.ok() for r in schema.get_all_operations()) if op.path.startswith("/admin/")
    ]
    assert len(operations) >= 20, [op.path for op in operations]
    for operation in operations:
        for token in staff.values():
            _fuzz(operation, token, existing)


def _fuzz(operation: Any, token: str, existing: dict[str, list[object]]) -> None:
    @given(case=operation.as_strategy(), real=st.booleans(), pick=st.integers(0, 7))
    @settings(max_examples=EXAMPLES, database=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case, real: bool, pick: int) -> None:
        if real and case.path_parameters:
            for name in case.path_parameters:
                if name in existing:
                    choices = existing[name]
                    case.path_parameters[name] = choices[pick % len(choices)]
        case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error]
        )

    check()
