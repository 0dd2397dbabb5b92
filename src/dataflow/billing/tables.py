"""SQLAlchemy Core schema of billing, on the control plane's shared ``metadata``.

Amounts are stored as decimal text (``DecimalText``): exact on SQLite (whose NUMERIC is a float)
and on PostgreSQL alike. Price schedules are not stored: they are derived from the contract TOML
(amendments, readjustments) so there is one source of truth.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from dataflow.contracts.tables import metadata

__all__ = [
    "DecimalText",
    "billing_adjustments",
    "billing_credit_notes",
    "billing_invoice_lines",
    "billing_invoices",
    "billing_payments",
    "billing_runs",
    "billing_sequences",
    "metadata",
]


class DecimalText(TypeDecorator[Decimal]):
    """A ``Decimal`` kept as its exact text."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"DecimalText needs a Decimal, got {type(value).__name__}")
        return str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


billing_invoices = Table(
    "billing_invoices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # null for requests made before a partner exists (the Art. 9 analysis fee, on-demand budgets)
    Column("partner_id", Integer, ForeignKey("partners.id"), nullable=True, index=True),
    Column("invoice_kind", String(20), nullable=False),  # monthly | analysis_fee | on_demand
    Column("month", String(7), nullable=True),
    Column("contract_kind", String(20), nullable=True),
    Column("status", String(10), nullable=False),  # draft | issued | overdue | paid | void
    Column("number", String(20), nullable=True, unique=True),
    Column("dae_reference", String(20), nullable=True, unique=True),
    Column("payer_name", String(200), nullable=False),
    Column("payer_cnpj", String(14), nullable=True),
    Column("accesses", BigInteger, nullable=False),
    Column("brl_per_ufemg", DecimalText, nullable=False),
    Column("total_ufemg", DecimalText, nullable=False),
    Column("total_brl", DecimalText, nullable=False),
    Column("period_start", Date, nullable=True),
    Column("period_end", Date, nullable=True),
    Column("due_date", Date, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=True),
    Column("paid_at", DateTime(timezone=True), nullable=True),
    Column("voided_at", DateTime(timezone=True), nullable=True),
    Column("void_reason", Text, nullable=True),
    Column("issued_by", String(200), nullable=True),  # the actor, as the audit log names them
    Column("voided_by", String(200), nullable=True),
    # the request an Art. 9 fee or Art. 12 budget DAE belongs to: its payment moves it on
    Column("contract_id", Integer, ForeignKey("contracts.id"), nullable=True),
    # one monthly invoice per partner and month: the natural key of an idempotent run
    UniqueConstraint("partner_id", "invoice_kind", "month", name="uq_billing_invoice_month"),
)
Index("ix_billing_invoices_month_status", billing_invoices.c.month, billing_invoices.c.status)
# Covers the revenue and month-close sums (the console, the public page): read from the index
# alone, without visiting 10⁴ table rows.
Index(
    "ix_billing_invoices_totals",
    billing_invoices.c.month,
    billing_invoices.c.status,
    billing_invoices.c.invoice_kind,
    billing_invoices.c.total_brl,
    billing_invoices.c.total_ufemg,
    billing_invoices.c.accesses,
    billing_invoices.c.due_date,
)

billing_invoice_lines = Table(
    "billing_invoice_lines",
    metadata,
    Column("invoice_id", Integer, ForeignKey("billing_invoices.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("code", String(40), nullable=False),
    Column("description", Text, nullable=False),
    Column("quantity", BigInteger, nullable=True),
    Column("unit_price_ufemg", DecimalText, nullable=True),
    Column("amount_ufemg", DecimalText, nullable=False),
    Column("amount_brl", DecimalText, nullable=False),
    # a fine line: the Art. 45 III sanction it bills (contracts' sanctions table)
    Column("sanction_id", Integer, ForeignKey("sanctions.id"), nullable=True),
    # JSON object of the values the description states (for wording in Portuguese); null: none
    Column("params", Text, nullable=True),
)

# Gap-free numbering: a row per series, incremented inside the issuing transaction (a rollback
# gives the number back).
billing_sequences = Table(
    "billing_sequences",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("next_value", BigInteger, nullable=False),
)

billing_payments = Table(
    "billing_payments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("invoice_id", Integer, ForeignKey("billing_invoices.id"), nullable=False, index=True),
    Column("dae_reference", String(20), nullable=False),
    Column("amount_brl", DecimalText, nullable=False),
    Column("paid_on", Date, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("note", Text, nullable=True),
    Column("recorded_by", String(200), nullable=True),
)

billing_credit_notes = Table(
    "billing_credit_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number", String(24), nullable=False, unique=True),
    Column("invoice_id", Integer, ForeignKey("billing_invoices.id"), nullable=False, index=True),
    Column("amount_ufemg", DecimalText, nullable=False),
    Column("amount_brl", DecimalText, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=True),
    # the credit of a fine lifted after it was billed (once per sanction)
    Column("sanction_id", Integer, ForeignKey("sanctions.id"), nullable=True, unique=True),
)

# Late usage of an already-issued month: an upward difference waits for the partner's next draft
# (applied_invoice_id), a downward one becomes a credit note. Natural key: the count it moves to.
billing_adjustments = Table(
    "billing_adjustments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner_id", Integer, ForeignKey("partners.id"), nullable=False),
    Column("for_month", String(7), nullable=False),
    Column("accesses_from", BigInteger, nullable=False),
    Column("accesses_to", BigInteger, nullable=False),
    Column("amount_ufemg", DecimalText, nullable=False),
    Column("amount_brl", DecimalText, nullable=False),
    Column("applied_invoice_id", Integer, ForeignKey("billing_invoices.id"), nullable=True),
    Column("credit_note_id", Integer, ForeignKey("billing_credit_notes.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("partner_id", "for_month", "accesses_to", name="uq_billing_adjustment"),
)

billing_runs = Table(
    "billing_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("month", String(7), nullable=False, index=True),
    Column("trigger", String(20), nullable=False),  # cli | scheduler | test
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("created", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("adjustments", Integer, nullable=False, default=0),
    Column("credit_notes", Integer, nullable=False, default=0),
    Column("skipped", Integer, nullable=False, default=0),
    Column("issued", Integer, nullable=False, default=0),
    Column("detail", Text, nullable=True),
    Column("actor", String(200), nullable=True),
    Column("overdue", Integer, nullable=False, default=0, server_default="0"),
)
