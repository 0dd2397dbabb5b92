"""settled stream tallies

Revision ID: 7d3e5a1f9c42
Revises: f050b473e11e
Create Date: 2026-11-23 14:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "7d3e5a1f9c42"
down_revision = "f050b473e11e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settled_stream_tallies",
        sa.Column("partner_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("accesses", sa.BigInteger(), nullable=False),
        sa.Column("releases", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "month", name=op.f("pk_settled_stream_tallies")),
    )
    # Streams settled before this revision were never trimmed, and every entry settled so far
    # is an access record (released or not): the tally of what they carried is the records.
    op.execute(
        "INSERT INTO settled_stream_tallies (partner_id, month, accesses, releases) "
        "SELECT partner_id, month, COUNT(*), "
        "SUM(CASE WHEN released THEN 1 ELSE 0 END) "
        "FROM access_records GROUP BY partner_id, month"
    )


def downgrade() -> None:
    op.drop_table("settled_stream_tallies")
