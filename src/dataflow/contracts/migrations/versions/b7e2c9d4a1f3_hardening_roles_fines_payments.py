"""hardening: actors on billing rows, one path for fines, overdue, request DAEs, secrecy signer

Revision ID: b7e2c9d4a1f3
Revises: b2e4f6a8c0d1
Create Date: 2026-12-07 21:00:00.000000

Art. 45 III fines become sanctions only: the rows of ``billing_fines`` move into ``sanctions``
(kind ``fine``, their month as ``bill_month``) and the table goes; invoice lines and credit notes
link to the sanction they bill or credit.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b7e2c9d4a1f3"
down_revision = "b2e4f6a8c0d1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contracts") as b:
        b.add_column(sa.Column("secrecy_signed_by", sa.String(length=200), nullable=True))
        b.add_column(sa.Column("approved_terms_toml", sa.Text(), nullable=True))
    with op.batch_alter_table("sanctions") as b:
        b.add_column(sa.Column("percent", sa.String(length=32), nullable=True))
        b.add_column(sa.Column("bill_month", sa.String(length=7), nullable=True))
    with op.batch_alter_table("billing_invoices") as b:
        b.add_column(sa.Column("issued_by", sa.String(length=200), nullable=True))
        b.add_column(sa.Column("voided_by", sa.String(length=200), nullable=True))
        b.add_column(sa.Column("contract_id", sa.Integer(), nullable=True))
        b.create_foreign_key(
            op.f("fk_billing_invoices_contract_id_contracts"), "contracts", ["contract_id"], ["id"]
        )
    with op.batch_alter_table("billing_invoice_lines") as b:
        b.add_column(sa.Column("sanction_id", sa.Integer(), nullable=True))
        b.create_foreign_key(
            op.f("fk_billing_invoice_lines_sanction_id_sanctions"),
            "sanctions",
            ["sanction_id"],
            ["id"],
        )
    with op.batch_alter_table("billing_payments") as b:
        b.add_column(sa.Column("recorded_by", sa.String(length=200), nullable=True))
    with op.batch_alter_table("billing_credit_notes") as b:
        b.add_column(sa.Column("created_by", sa.String(length=200), nullable=True))
        b.add_column(sa.Column("sanction_id", sa.Integer(), nullable=True))
        b.create_unique_constraint(op.f("uq_billing_credit_notes_sanction_id"), ["sanction_id"])
        b.create_foreign_key(
            op.f("fk_billing_credit_notes_sanction_id_sanctions"),
            "sanctions",
            ["sanction_id"],
            ["id"],
        )
    with op.batch_alter_table("billing_runs") as b:
        b.add_column(sa.Column("actor", sa.String(length=200), nullable=True))
        b.add_column(sa.Column("overdue", sa.Integer(), server_default="0", nullable=False))
    # one path for fines: billing's own table becomes sanctions (the decision) + line links
    op.execute(
        "INSERT INTO sanctions (partner_id, kind, reason, imposed_at, starts_at, amount_ufemg, "
        "percent, bill_month, imposed_by) "
        "SELECT partner_id, 'fine', reason, decided_at, decided_at, amount_ufemg, percent, month, "
        "'billing fine (before fines were sanctions)' FROM billing_fines ORDER BY id"
    )
    op.drop_index(op.f("ix_billing_fines_partner_id"), table_name="billing_fines")
    op.drop_table("billing_fines")


def downgrade() -> None:
    op.create_table(
        "billing_fines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("amount_ufemg", sa.String(length=40), nullable=True),
        sa.Column("percent", sa.String(length=40), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_billing_fines_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_fines")),
    )
    op.create_index(
        op.f("ix_billing_fines_partner_id"), "billing_fines", ["partner_id"], unique=False
    )
    with op.batch_alter_table("billing_runs") as b:
        b.drop_column("overdue")
        b.drop_column("actor")
    with op.batch_alter_table("billing_credit_notes") as b:
        b.drop_constraint(op.f("fk_billing_credit_notes_sanction_id_sanctions"), type_="foreignkey")
        b.drop_constraint(op.f("uq_billing_credit_notes_sanction_id"), type_="unique")
        b.drop_column("sanction_id")
        b.drop_column("created_by")
    with op.batch_alter_table("billing_payments") as b:
        b.drop_column("recorded_by")
    with op.batch_alter_table("billing_invoice_lines") as b:
        b.drop_constraint(
            op.f("fk_billing_invoice_lines_sanction_id_sanctions"), type_="foreignkey"
        )
        b.drop_column("sanction_id")
    with op.batch_alter_table("billing_invoices") as b:
        b.drop_constraint(op.f("fk_billing_invoices_contract_id_contracts"), type_="foreignkey")
        b.drop_column("contract_id")
        b.drop_column("voided_by")
        b.drop_column("issued_by")
    with op.batch_alter_table("sanctions") as b:
        b.drop_column("bill_month")
        b.drop_column("percent")
    with op.batch_alter_table("contracts") as b:
        b.drop_column("approved_terms_toml")
        b.drop_column("secrecy_signed_by")
