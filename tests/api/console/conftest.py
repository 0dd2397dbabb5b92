"""Console fixtures: the real app (release, SQLite control plane, embedded meter), staff of each
role, a paid partner and a sandbox participant whose members have console passwords."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from dataflow.aggregation.release import ReleaseSummary
from dataflow.api.app import create_app
from dataflow.contracts.models import Plan, Role
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.metering.embedded import EmbeddedMeter
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parents[3]
PASSWORD = "senha-longa-de-teste-1"
CONTRACT = (REPO / "examples" / "contract-continuous.toml").read_text(encoding="utf-8")
_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


@dataclass
class Console:
    client: AsyncTestClient[Litestar]
    contracts: ContractsService
    meter: EmbeddedMeter
    staff: dict[Role, str]  # role → dfa_ token
    paid: int  # partner ids
    sandbox: int
    paid_login: str = "ana@acme.example"
    sandbox_login: str = "bia@beta.example"
    keys: dict[int, str] = field(default_factory=dict)

    async def csrf(self, path: str = "/console/entrar") -> str:
        """The CSRF token a form on ``path`` carries (and the cookie it comes with)."""
        page = await self.client.get(path)
        found = _CSRF.search(page.text)
        assert found, f"no CSRF token on {path}: {page.status_code} {page.text[:300]}"
        return found.group(1)

    async def post(self, path: str, data: dict[str, str], *, page: str | None = None) -> object:
        token = await self.csrf(page or path)
        return await self.client.post(
            path, data={**data, "_csrf_token": token}, follow_redirects=False
        )

    async def sign_in(self, login: str, secret: str) -> None:
        self.client.cookies.clear()
        r = await self.post("/console/entrar", {"login": login, "segredo": secret})
        assert getattr(r, "status_code", 0) == 303, getattr(r, "text", "")[:500]

    async def as_staff(self, role: Role) -> None:
        await self.sign_in("", self.staff[role])

    async def as_member(self, login: str) -> None:
        await self.sign_in(login, PASSWORD)


def sandbox_terms(cap: int = 50) -> str:
    """A sandbox window around today (12 months from the first day of last month), capped."""
    first = (date.today().replace(day=1) - timedelta(days=1)).replace(day=1)
    end = first.replace(year=first.year + 1) - timedelta(days=1)
    return f'kind = "sandbox"\nstart = {first}\nend = {end}\ncap = {cap}\n'


@pytest.fixture
async def console(tmp_path: Path, release: ReleaseSummary) -> AsyncIterator[Console]:
    settings = make_settings(tmp_path, release_dir=release.path)
    contracts = ContractsService(make_engine(settings.database_url))
    staff = {role: contracts.create_staff(f"Servidor {role.value}", role) for role in Role}
    paid = contracts.create_partner("Acme Ltda", Plan.CONTINUOUS, contract_toml=CONTRACT)
    sandbox = contracts.create_partner(
        "Beta Startup",
        Plan.SANDBOX,
        contract_toml=sandbox_terms(),
    )
    logins = {}
    for p, email, name in ((paid, "ana@acme.example", "Ana"), (sandbox, "bia@beta.example", "Bia")):
        m = contracts.add_member(p.id, name, email=email)
        contracts.set_member_password(m.id, PASSWORD)
        logins[p.id] = m.id
    keys = {p.id: contracts.create_key(p.id, member_id=logins[p.id]) for p in (paid, sandbox)}
    meter = EmbeddedMeter()
    app = create_app(settings, meter=meter, contracts=contracts)
    async with AsyncTestClient(app, base_url="http://testserver.local") as client:
        yield Console(
            client=client,
            contracts=contracts,
            meter=meter,
            staff=staff,
            paid=paid.id,
            sandbox=sandbox.id,
            keys=keys,
        )
