"""Schema migrations (Alembic), run at start-up of every command and server.

``upgrade head`` replaces ``metadata.create_all``: the database is brought to the newest revision,
and a database already there costs one query. Revisions live in ``contracts/migrations/versions``.
"""

from __future__ import annotations

import fcntl
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, inspect, text
from sqlalchemy.exc import DBAPIError

from dataflow.contracts.errors import SchemaNotMigrated

__all__ = [
    "MIGRATIONS_DIR",
    "SchemaNotMigrated",
    "alembic_config",
    "ensure_schema",
    "schema_diff",
    "target_metadata",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 5750_2024  # any constant: one migration at a time per database
# PostgreSQL's SQLSTATEs for "permission denied" and "no schema has been selected to create in"
# (a role without USAGE on the schema in its search_path sees none)
_CANNOT_MIGRATE = {"42501", "3F000"}

# Packages whose ``tables.py`` adds tables to the shared metadata; missing ones are skipped so a
# package can land its tables before (or without) the others.
_TABLE_MODULES = (
    "dataflow.contracts.tables",
    "dataflow.billing.tables",
    "dataflow.metering.tables",
)


def target_metadata() -> MetaData:
    """The shared metadata with every package's tables registered on it."""
    for name in _TABLE_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # the module exists but something it imports does not
                raise
    from dataflow.contracts.tables import metadata

    return metadata


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """SQLite: a lock file next to the database, so concurrent start-ups migrate one at a time."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with Path(database + ".migrate.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_schema(engine: Engine) -> None:
    """Upgrade the database to head (no-op when it is there already).

    Safe when several processes start at once (server workers, CLI): one migrates while the
    others wait (PostgreSQL advisory lock, SQLite lock file), then find the database at head.
    """
    head = _head()
    with _owner_needed(engine, head):
        with engine.connect() as conn:
            at_head = MigrationContext.configure(conn).get_current_revision() == head
        if not at_head:
            with _file_lock(engine), engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
                if MigrationContext.configure(conn).get_current_revision() != head:
                    cfg = alembic_config()
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
    _check_every_table_migrated(engine)


@contextmanager
def _owner_needed(engine: Engine, head: str | None) -> Iterator[None]:
    """A role without the schema's ownership (the least-privilege app role) cannot migrate:
    say so, and how to, instead of PostgreSQL's bare "permission denied"."""
    try:
        yield
    except DBAPIError as e:
        if getattr(e.orig, "sqlstate", None) not in _CANNOT_MIGRATE:
            raise
        raise SchemaNotMigrated(
            f"the database is not at revision {head}, and user {engine.url.username!r} may not "
            f"change its schema ({str(e.orig).splitlines()[0]}); run `dataflow db upgrade` with "
            "DATAFLOW_MIGRATION_DATABASE_URL set to the schema owner's URL, then "
            "`dataflow db grant-app-role ROLE` (README, Security)"
        ) from e


def _check_every_table_migrated(engine: Engine) -> None:
    with engine.connect() as conn:
        present = set(inspect(conn).get_table_names())
    missing = sorted(set(target_metadata().tables) - present)
    if missing:
        raise SchemaNotMigrated(
            f"tables {', '.join(missing)} are defined in code but no migration creates them: "
            'add a revision (`dataflow db revision -m "why"`, see DEVELOPERS.md)'
        )


def schema_diff(engine: Engine) -> list[Any]:
    """What autogenerate would change: empty when the migrations produce exactly the metadata."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, target_metadata()))
