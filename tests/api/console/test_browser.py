"""Every console user's main journey, in headless Chromium against a running ``dataflow serve``.

Debian's ``chromium`` (``make test`` installs it when missing; browsers cannot be downloaded
here), driven by Playwright for Python through ``executable_path``. Each journey saves
screenshots under ``var/screenshots/console/`` (the path is printed): look at them.
With CI=true a missing browser fails the run.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dataflow.aggregation.release import ReleaseSummary
from dataflow.billing.reference import BillingReference
from dataflow.billing.service import BillingService
from dataflow.contracts.actors import Actor
from dataflow.contracts.models import Plan, Role
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.metering.models import billing_month
from dataflow.ptbr import mes
from tests.api.console.conftest import CONTRACT, PASSWORD, REPO, sandbox_terms
from tests.conftest import IN_CI
from tests.e2e.conftest import serve

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e-server")]

CHROMIUM = Path(os.environ.get("DATAFLOW_TEST_CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = REPO / "var" / "screenshots" / "console"
TABLE = "sales_municipality_cnae_division_month"


class World:
    def __init__(self, base: str, contracts: ContractsService, data_dir: Path) -> None:
        self.base = base
        self.contracts = contracts
        self.data_dir = data_dir
        self.staff: dict[Role, str] = {}
        self.paid = self.sandbox = 0
        self.keys: dict[int, str] = {}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, release: ReleaseSummary) -> Iterator[World]:
    data = tmp_path_factory.mktemp("console-e2e")
    env = {
        **os.environ,
        "DATAFLOW_DATA_DIR": str(data),
        "DATAFLOW_METER": "embedded",
        "DATAFLOW_SETTLE_INTERVAL": "0.5",
    }
    env.pop("DATAFLOW_REDIS_URL", None)
    env.pop("DATAFLOW_DATABASE_URL", None)
    contracts = ContractsService(make_engine(f"sqlite:///{data / 'dataflow.db'}"))
    staff = {role: contracts.create_staff(f"Servidora {role.value}", role) for role in Role}
    paid = contracts.create_partner(
        "Acme Dados Ltda", Plan.CONTINUOUS, contract_toml=CONTRACT, cnpj="11222333000181"
    )
    sandbox = contracts.create_partner("Beta Startup", Plan.SANDBOX, contract_toml=sandbox_terms())
    keys = {}
    for p, email, name in ((paid, "ana@acme.example", "Ana"), (sandbox, "bia@beta.example", "Bia")):
        m = contracts.add_member(p.id, name, email=email)
        contracts.set_member_password(m.id, PASSWORD)
        keys[p.id] = contracts.create_key(p.id, member_id=m.id)
    # last month's settled usage, for finance to close
    contracts.record_usage(paid.id, _last_month(), 150_000)
    with serve(env, release.path, workers=1) as (base, _pid):
        w = World(base, contracts, data)
        w.staff, w.paid, w.sandbox, w.keys = staff, paid.id, sandbox.id, keys
        yield w


def _last_month() -> str:
    first = datetime.now(UTC).date().replace(day=1)
    return f"{first - timedelta(days=1):%Y-%m}"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        message = f"headless Chromium not found at {CHROMIUM}: `apt-get install chromium`"
        if IN_CI:
            pytest.fail(message + " (required under CI=true; `make test` installs it)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw.chromium


@pytest.fixture
def browser(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``open(viewport)`` → a page in a fresh profile (its own --user-data-dir)."""
    contexts = []

    def open_page(width: int = 1280, height: int = 900) -> Any:
        ctx = chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="chromium-"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": width, "height": height},
            accept_downloads=True,
            locale="pt-BR",
        )
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(20_000)
        return page

    yield open_page
    for ctx in contexts:
        ctx.close()


def shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def sign_in(page: Any, base: str, login: str, secret: str) -> None:
    """With the keyboard only: type, Tab, type, Enter."""
    page.goto(f"{base}/console/entrar")
    page.get_by_label(re.compile("^E-mail")).fill(login)
    page.keyboard.press("Tab")
    page.keyboard.type(secret)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/console/(?!entrar)"))


def eventually(check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_finance_issues_a_month_and_records_a_payment(world: World, browser: Any) -> None:
    month = _last_month()
    page = browser()
    sign_in(page, world.base, "", world.staff[Role.FINANCE])
    page.goto(f"{world.base}/console/financeiro?mes={month}")
    page.get_by_role("button", name=re.compile("Executar faturamento")).click()
    page.get_by_text(re.compile("Faturamento de .* executado: 2 fatura")).wait_for()
    shot(page, "finance-1-run")
    page.get_by_role("button", name=re.compile("Emitir os 2 rascunho")).click()
    page.get_by_text("2 fatura(s)", exact=False).first.wait_for()
    page.get_by_role("row", name=re.compile("Acme Dados")).get_by_role("link").click()
    page.get_by_role("heading", name=re.compile("Fatura .* emitida")).wait_for()
    # 150,000 accesses → franchise 200,000 × 0.02 = 4,000 + 300 support = 4,300 UFEMG
    assert page.get_by_text("4.300,0000").first.is_visible()
    assert page.get_by_text("Acessos: 150.000 × 0,02 UFEMG").is_visible()
    assert page.get_by_text("Suporte técnico mensal (Art. 10, IV)").is_visible()
    with page.expect_download() as dl:
        page.get_by_role("link", name="DAE em PDF").click()
    assert Path(dl.value.path()).read_bytes()[:5] == b"%PDF-"
    shot(page, "finance-2-invoice")
    page.get_by_role("button", name="Registrar pagamento").click()
    page.get_by_text("Pagamento registrado: a fatura está paga.").wait_for()
    assert page.get_by_role("heading", name=re.compile("Fatura .* paga")).is_visible()
    shot(page, "finance-3-paid")
    actions = {e.action for e in world.contracts.audit(limit=10_000)}
    assert {"billing.run.finish", "invoice.issue", "invoice.paid", "console.sign_in"} <= actions


def test_operator_suspends_and_reinstates_and_the_api_follows(world: World, browser: Any) -> None:
    api = httpx.Client(base_url=world.base, timeout=10)
    auth = {"Authorization": f"Bearer {world.keys[world.paid]}"}
    rows = f"/v1/tables/{TABLE}/rows?limit=1"
    assert api.get(rows, headers=auth).status_code == 200
    page = browser()
    sign_in(page, world.base, "", world.staff[Role.OPERATOR])
    page.get_by_label(re.compile("Buscar")).fill("Acme")
    page.get_by_role("link", name="Acme Dados Ltda").click()
    card = page.locator(".card", has=page.get_by_role("heading", name=re.compile("Contrato")))
    card.first.get_by_role("button", name="Suspender contrato").click()
    page.get_by_text(re.compile("agora “suspenso”")).wait_for()
    assert page.get_by_role("button", name="Suspender contrato").count() == 0
    assert page.get_by_role("button", name="Retomar contrato").is_visible()
    shot(page, "operator-1-suspended")
    eventually(lambda: api.get(rows, headers=auth).status_code == 403)
    assert api.get(rows, headers=auth).json()["reason"] == "suspended"
    page.get_by_role("button", name="Retomar contrato").click()
    page.get_by_text(re.compile("agora “ativo”")).wait_for()
    eventually(lambda: api.get(rows, headers=auth).status_code == 200)
    shot(page, "operator-2-resumed")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "operator-3-phone")


def test_partner_downloads_records_that_add_up_to_the_invoice(world: World, browser: Any) -> None:
    month = billing_month(datetime.now(UTC))
    api = httpx.Client(base_url=world.base, timeout=10)
    auth = {"Authorization": f"Bearer {world.keys[world.paid]}"}
    before = world.contracts.usage(world.paid, month)
    for day in ("2026-01", "2026-02", "2026-01..2026-02"):
        r = api.get(f"/v1/tables/{TABLE}/rows", params={"month": day, "limit": 5}, headers=auth)
        assert r.status_code == 200, r.text
    eventually(lambda: world.contracts.usage(world.paid, month) >= before + 3)
    billing = BillingService(
        world.contracts.engine, BillingReference.load(REPO / "datasets"), grace_days=5
    )
    billing.run_month(month, actor=Actor("staff:test(finance)", Role.FINANCE))
    inv = next(
        i for i in billing.lifecycle.list_invoices(month=month) if i.partner_id == world.paid
    )
    inv = billing.lifecycle.issue(inv.id, actor=Actor("staff:test(finance)", Role.FINANCE))

    page = browser()
    sign_in(page, world.base, "ana@acme.example", PASSWORD)
    page.get_by_role("link", name=inv.number).click()
    assert page.locator("#registros").inner_text() == page.locator("#faturados").inner_text()
    shot(page, "partner-1-invoice")
    with page.expect_download() as dl:
        page.get_by_role("link", name="Baixar registros (CSV)").click()
    lines = Path(dl.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("record_id,accessed_at,month,key_id")
    assert len(lines) - 1 == inv.accesses  # one record per billed access, exactly
    via_api = api.get("/v1/account/accesses", params={"month": month}, headers=auth).json()
    assert via_api["count"] == inv.accesses
    page.get_by_role("link", name="Tabelas").click()
    page.get_by_label("Tabela").select_option(TABLE)
    page.get_by_role("button", name="Abrir").click()
    page.get_by_label(re.compile("^Mês")).fill("2026-01")
    page.get_by_role("button", name=re.compile("Consultar")).click()
    page.get_by_text(re.compile("linha\\(s\\) nesta página")).wait_for()
    shot(page, "partner-2-explorer")
    eventually(lambda: world.contracts.usage(world.paid, month) >= inv.accesses + 1)


def test_sandbox_participant_sees_its_cap(world: World, browser: Any) -> None:
    page = browser(390, 844)  # on a phone
    sign_in(page, world.base, "bia@beta.example", PASSWORD)
    assert page.get_by_role("heading", name=re.compile("Beta Startup")).is_visible()
    assert page.locator(".stat", has_text="de um limite de 50 ").is_visible()
    assert page.locator("#uso-limite").get_attribute("max") == "50"
    assert page.get_by_text("Fim da janela de autorização").is_visible()
    shot(page, "sandbox-1-phone")


def test_the_public_page_shows_the_month(world: World, browser: Any) -> None:
    page = browser()
    page.goto(f"{world.base}/transparencia")
    month = mes(billing_month(datetime.now(UTC)))
    row = page.locator("#mensal tr", has=page.get_by_text(month, exact=True))
    assert row.count() == 1
    shot(page, "public-1")
    assert httpx.get(f"{world.base}/transparencia.csv").text.startswith("month,partners_sandbox")
