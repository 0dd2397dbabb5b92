from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from dataflow.contracts.models import Plan
from dataflow.contracts.repository import make_engine
from dataflow.contracts.schema import (
    SchemaNotMigrated,
    alembic_config,
    ensure_schema,
    schema_diff,
)
from dataflow.contracts.service import ContractsService
from dataflow.contracts.tables import metadata


def test_migrations_produce_exactly_the_metadata(database_url: str) -> None:
    engine = make_engine(database_url)
    ensure_schema(engine)
    assert schema_diff(engine) == []
    ensure_schema(engine)  # at head: a no-op
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_audit_log_is_append_only_in_the_database(database_url: str) -> None:
    service = ContractsService(make_engine(database_url))
    service.create_partner("Acme", Plan.SANDBOX)
    for statement in ("UPDATE audit_log SET actor = 'me'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), service.engine.begin() as conn:
            conn.execute(sa.text(statement))
    assert all(e.actor == "system" for e in service.audit())


def test_audit_log_refuses_truncate_even_to_its_owner(postgres_url: str) -> None:
    """Row triggers never fire for TRUNCATE (PostgreSQL): a statement trigger refuses it, and
    binds the table's owner too. SQLite has no TRUNCATE (the DELETE trigger covers it)."""
    service = ContractsService(make_engine(postgres_url))
    service.create_partner("Acme", Plan.SANDBOX)
    before = service.audit()
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), service.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE audit_log"))
    assert service.audit() == before and before


def test_concurrent_start_ups_migrate_once(database_url: str) -> None:
    """Server workers start together: one migrates, the others wait and find it at head."""
    engines = [make_engine(database_url) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(ensure_schema, engines))
    assert schema_diff(engines[0]) == []


def test_a_table_without_a_migration_is_reported(database_url: str) -> None:
    engine = make_engine(database_url)
    ensure_schema(engine)
    extra = sa.Table("not_migrated_yet", metadata, sa.Column("id", sa.Integer, primary_key=True))
    try:
        with pytest.raises(SchemaNotMigrated, match=r"not_migrated_yet.*dataflow db revision"):
            ensure_schema(engine)
    finally:
        metadata.remove(extra)
    ensure_schema(engine)
