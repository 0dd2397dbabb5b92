"""The least-privilege PostgreSQL set-up (issue 18, item 3): the schema owner migrates, the app
connects as a role of its own that can do the app's work but cannot change or empty the audit
log, nor disable its triggers. PostgreSQL only: SQLite has no roles."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from dataflow.billing.jobs import JOB_ID, create_job_table, make_scheduler, schedule_monthly
from dataflow.billing.reference import BillingReference
from dataflow.billing.service import BillingService
from dataflow.cli import app
from dataflow.contracts.errors import InvalidInput
from dataflow.contracts.models import Plan
from dataflow.contracts.privileges import grant_app_role
from dataflow.contracts.repository import make_engine
from dataflow.contracts.schema import SchemaNotMigrated, ensure_schema
from dataflow.contracts.service import ContractsService
from dataflow.metering.embedded import EmbeddedMeter
from dataflow.metering.settlement import settle_month
from tests.metering.conftest import make_access

REPO = Path(__file__).resolve().parents[2]
MONTH = "2026-11"  # make_access's month
CONTINUOUS = (REPO / "examples" / "contract-continuous.toml").read_text()
FORBIDDEN = [
    "UPDATE audit_log SET actor = 'someone else'",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
    "ALTER TABLE audit_log DISABLE TRIGGER ALL",
    "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
    "DROP TRIGGER audit_log_no_truncate ON audit_log",
    "DROP TABLE audit_log",
    "SET session_replication_role = replica",  # would silence every trigger
    "UPDATE alembic_version SET version_num = 'old'",  # the schema's revision is the owner's
]


@pytest.fixture
def app_role(postgres_url: str) -> Iterator[tuple[str, str]]:
    """A login role of this test's own, and the URL that connects as it to the test's schema.

    Roles belong to the whole cluster: this one is dropped afterwards, whatever happened."""
    role = f"dftest_app_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
    url = sa.engine.make_url(postgres_url).set(username=role)
    try:
        yield role, url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))  # its grants, default privileges
            conn.execute(sa.text(f'DROP ROLE "{role}"'))
        admin.dispose()


def _cli(tmp_path: Path, app_url: str, owner_url: str, *args: str) -> str:
    env = {
        "DATAFLOW_DATA_DIR": str(tmp_path),
        "DATAFLOW_DATABASE_URL": app_url,
        "DATAFLOW_MIGRATION_DATABASE_URL": owner_url,
    }
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


async def test_the_app_role_does_the_apps_work_but_cannot_touch_the_audit_log(
    postgres_url: str, app_role: tuple[str, str], tmp_path: Path
) -> None:
    role, app_url = app_role
    # The operator's set-up: migrate as the owner, then grant the app's role (both via the CLI).
    assert "database at head" in _cli(tmp_path, app_url, postgres_url, "db", "upgrade")
    printed = _cli(tmp_path, app_url, postgres_url, "db", "grant-app-role", role, "--sql")
    assert ".audit_log TO" in printed and "GRANT SELECT, INSERT ON" in printed
    _cli(tmp_path, app_url, postgres_url, "db", "grant-app-role", role)

    engine = make_engine(app_url)
    owner = make_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar_one() == role
        # The app's work, as the app's role: the control plane (it finds the schema at head)...
        contracts = ContractsService(engine)
        partner = contracts.create_partner("Acme", Plan.CONTINUOUS, contract_toml=CONTINUOUS)
        member = contracts.add_member(partner.id, "Ana")
        key = contracts.create_key(partner.id, member_id=member.id)
        contracts.rotate_key(key.split("_")[1])
        suspension = contracts.suspend(partner.id, "Art. 45 II", days=3)
        contracts.lift(suspension.id)
        # ...metering: counted accesses settled into the records, the ledger and watermarks...
        meter = EmbeddedMeter()
        for _ in range(5):
            assert (await meter.acquire(make_access(partner=partner.id))).allowed
        assert await settle_month(meter, contracts, MONTH) == {partner.id: 5}
        assert contracts.usage(partner.id, MONTH) == 5
        # ...billing: the monthly run, issue, payment...
        billing = BillingService(engine, BillingReference.load(REPO / "datasets"), grace_days=0)
        assert billing.run_month(MONTH).created == 1
        (draft,) = billing.lifecycle.list_invoices(month=MONTH)
        issued = billing.lifecycle.issue(draft.id)
        assert issued.dae_reference is not None
        paid = billing.lifecycle.record_payment(
            issued.dae_reference, Decimal(issued.total_brl), paid_on=date(2026, 12, 10)
        )
        assert paid.status == "paid"
        # ...and the billing scheduler's job store (its table made by the owner).
        create_job_table(owner)
        scheduler = make_scheduler(engine)
        scheduler.start(paused=True)
        try:
            schedule_monthly(
                scheduler,
                database_url=app_url,
                datasets_dir=REPO / "datasets",
                grace_days=5,
            )
            assert scheduler.get_job(JOB_ID) is not None
        finally:
            scheduler.shutdown(wait=False)

        entries = len(contracts.audit(limit=10_000))
        assert entries >= 6
        denied = r"permission denied|must be owner"
        for statement in FORBIDDEN:
            with pytest.raises(sa.exc.DBAPIError, match=denied), engine.begin() as conn:
                conn.execute(sa.text(statement))
        assert len(contracts.audit(limit=10_000)) == entries
    finally:
        engine.dispose()
        owner.dispose()


def test_the_app_role_cannot_migrate_and_says_how(
    postgres_url: str, app_role: tuple[str, str]
) -> None:
    role, app_url = app_role
    admin = sa.create_engine(postgres_url)
    with admin.begin() as conn:  # an empty schema the role may use but not create in
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{_schema(conn)}" TO "{role}"'))
    admin.dispose()
    engine = make_engine(app_url)
    try:
        with pytest.raises(SchemaNotMigrated, match=r"dataflow db upgrade.*MIGRATION_DATABASE_URL"):
            ensure_schema(engine)
    finally:
        engine.dispose()


def _schema(conn: sa.Connection) -> str:
    schema: str = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
    return schema


def test_grant_refuses_a_role_privileges_would_not_bind(
    postgres_url: str, app_role: tuple[str, str]
) -> None:
    role, _ = app_role
    owner = make_engine(postgres_url)
    try:
        ensure_schema(owner)
        with pytest.raises(InvalidInput, match="superuser"):
            grant_app_role(owner, "postgres")
        with pytest.raises(InvalidInput, match="does not exist"):
            grant_app_role(owner, f"{role}_missing")
        with owner.begin() as conn:  # a member of the owner could act as the owner
            conn.execute(sa.text(f'GRANT "{_owner(conn)}" TO "{role}"'))
        with pytest.raises(InvalidInput, match="member of, the schema owner"):
            grant_app_role(owner, role)
    finally:
        owner.dispose()


def _owner(conn: sa.Connection) -> str:
    owner: str = conn.execute(
        sa.text(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'audit_log' "
            "AND schemaname = current_schema()"
        )
    ).scalar_one()
    return owner
