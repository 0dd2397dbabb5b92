"""Audit log refuses TRUNCATE: the row triggers never fire for it, so it emptied the log.

Revision ID: b2e4f6a8c0d1
Revises: 7d3e5a1f9c42
Create Date: 2026-12-07 18:00:00.000000

PostgreSQL: a statement-level BEFORE TRUNCATE trigger calling the same function as the row
triggers (it raises 'audit_log is append-only'); it binds the owner too. SQLite has no TRUNCATE:
``DELETE FROM audit_log`` without a WHERE (its "truncate optimization") is not taken on a table
with triggers, so the existing DELETE trigger already refuses it.
"""

from __future__ import annotations

from alembic import op

revision = "b2e4f6a8c0d1"
down_revision = "7d3e5a1f9c42"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
