"""Schema migrations (Alembic), run at start-up of every command and server.

``upgrade head`` replaces ``metadata.create_all``: the database is brought to the newest revision,
and a database already there costs one query. Revisions live in ``contracts/migrations/versions``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData

__all__ = ["MIGRATIONS_DIR", "alembic_config", "ensure_schema", "schema_diff", "target_metadata"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

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


def ensure_schema(engine: Engine) -> None:
    """Upgrade the database to head (no-op when it is there already)."""
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == _head():
        return
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def schema_diff(engine: Engine) -> list[Any]:
    """What autogenerate would change: empty when the migrations produce exactly the metadata."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, target_metadata()))
