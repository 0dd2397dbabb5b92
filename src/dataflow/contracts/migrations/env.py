"""Alembic environment: the target is the shared control-plane metadata.

Every package that keeps tables defines them in its own ``tables.py`` on
``dataflow.contracts.tables.metadata``; they are imported here (those that exist) so autogenerate
sees them all. The connection comes from ``dataflow.contracts.schema`` (``config.attributes``).
"""

from __future__ import annotations

from alembic import context

from dataflow.contracts.schema import target_metadata

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata(),
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
