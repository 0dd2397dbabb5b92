"""API fixtures: a real release, a real SQLite control plane, the embedded meter, the ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from dataflow.aggregation.release import ReleaseSummary
from dataflow.api.app import create_app
from dataflow.api.state import ApiState
from dataflow.contracts.models import Plan
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.metering.embedded import EmbeddedMeter
from dataflow.metering.models import billing_month
from tests.conftest import make_settings

TABLE = "sales_municipality_cnae_division_month"
ROWS = f"/v1/tables/{TABLE}/rows"
PROBLEM = "application/problem+json"


def this_month() -> str:
    return billing_month(datetime.now(UTC))


class Env:
    def __init__(
        self,
        client: AsyncTestClient,
        key: str,
        meter: EmbeddedMeter,
        partner_id: int,
        capped_key: str,
    ) -> None:
        self.client = client
        self.key = key
        self.meter = meter
        self.partner_id = partner_id
        self.capped_key = capped_key
        self.expired_key = ""
        self.app: Litestar | None = None

    @property
    def api(self) -> ApiState:
        assert self.app is not None
        state: ApiState = self.app.state.api
        return state

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


@pytest.fixture
async def env(tmp_path: Path, release: ReleaseSummary) -> AsyncIterator[Env]:
    settings = make_settings(tmp_path, release_dir=release.path)
    contracts = ContractsService(make_engine(settings.database_url))
    partner = contracts.create_partner("P", Plan.CONTINUOUS)
    capped = contracts.create_partner("Sandbox", Plan.SANDBOX, monthly_cap=2)
    expired = contracts.create_partner(
        "Old",
        Plan.SANDBOX,
        contract_toml='kind = "sandbox"\nstart = 2024-01-01\nend = 2024-12-31\n',
    )
    env_expired_key = contracts.create_key(expired.id)
    meter = EmbeddedMeter()
    app = create_app(settings, meter=meter, contracts=contracts)
    async with AsyncTestClient(app) as client:
        env = Env(
            client,
            contracts.create_key(partner.id),
            meter,
            partner.id,
            contracts.create_key(capped.id),
        )
        env.expired_key = env_expired_key
        env.app = app
        yield env
