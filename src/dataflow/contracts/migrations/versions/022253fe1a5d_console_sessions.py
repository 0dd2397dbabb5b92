"""console sign-in and sessions; invoice line params

Members get a console password (argon2id hash) set through a one-time invitation, staff
credentials an optional password; console sessions are stored by the SHA-256 of their cookie
token. Invoice lines keep the values their description states (``params``, JSON) so people-facing
wording can be rendered in Portuguese. Columns are added with plain ALTER TABLE and the unique
invitation hash is an index, so SQLite never rebuilds ``members`` (referenced by keys). A
covering index serves finance's monthly sums (the console's pages at 10⁴ invoices).

Revision ID: 022253fe1a5d
Revises: b7e2c9d4a1f3
Create Date: 2026-12-07 21:02:55.004956
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "022253fe1a5d"
down_revision = "b7e2c9d4a1f3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("staff_key_id", sa.String(length=32), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("flash", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_console_sessions_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["staff_key_id"],
            ["admin_credentials.key_id"],
            name=op.f("fk_console_sessions_staff_key_id_admin_credentials"),
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_sessions")),
    )
    op.add_column("admin_credentials", sa.Column("password_hash", sa.String(200), nullable=True))
    op.add_column(
        "admin_credentials",
        sa.Column("password_set_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("billing_invoice_lines", sa.Column("params", sa.Text(), nullable=True))
    op.add_column("members", sa.Column("password_hash", sa.String(200), nullable=True))
    op.add_column(
        "members", sa.Column("password_set_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("members", sa.Column("invite_hash", sa.String(64), nullable=True))
    op.add_column(
        "members", sa.Column("invite_expires_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(op.f("ix_members_invite_hash"), "members", ["invite_hash"], unique=True)
    op.create_index(
        "ix_billing_invoices_totals",
        "billing_invoices",
        ["month", "status", "invoice_kind", "total_brl", "total_ufemg", "accesses", "due_date"],
    )


def downgrade() -> None:
    op.drop_index("ix_billing_invoices_totals", table_name="billing_invoices")
    op.drop_index(op.f("ix_members_invite_hash"), table_name="members")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("invite_expires_at")
        batch_op.drop_column("invite_hash")
        batch_op.drop_column("password_set_at")
        batch_op.drop_column("password_hash")
    with op.batch_alter_table("billing_invoice_lines", schema=None) as batch_op:
        batch_op.drop_column("params")
    with op.batch_alter_table("admin_credentials", schema=None) as batch_op:
        batch_op.drop_column("password_set_at")
        batch_op.drop_column("password_hash")
    op.drop_table("console_sessions")
