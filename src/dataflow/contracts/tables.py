"""SQLAlchemy Core schema of the control plane (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["api_keys", "metadata", "partners", "usage_ledger"]

metadata = MetaData()

partners = Table(
    "partners",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("plan", String(20), nullable=False),
    Column("monthly_cap", BigInteger, nullable=True),
    Column("contract_toml", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("partner_id", Integer, ForeignKey("partners.id"), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# Settled access counts per partner and month: what billing reads.
usage_ledger = Table(
    "usage_ledger",
    metadata,
    Column("partner_id", Integer, ForeignKey("partners.id"), nullable=False),
    Column("month", String(7), nullable=False),
    Column("accesses", BigInteger, nullable=False),
    Column("settled_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("partner_id", "month", name="uq_usage_partner_month"),
)
