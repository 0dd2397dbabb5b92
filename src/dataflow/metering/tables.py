"""Durable metering tables (on the control plane's ``metadata``): access records, watermarks.

The usage ledger itself (``usage_ledger``) lives in ``contracts.tables``; billing reads it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from dataflow.contracts.tables import metadata

__all__ = ["access_records", "settled_stream_tallies", "settlement_watermarks"]

# One row per counted access, keyed by its stream id: inserting twice is a no-op, which is
# what makes settlement idempotent (at-least-once delivery + idempotent apply).
access_records = Table(
    "access_records",
    metadata,
    Column("partner_id", Integer, nullable=False),
    Column("record_id", String(40), nullable=False),
    Column("month", String(7), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("table_id", String(200), nullable=False),
    Column("release", String(100), nullable=False),
    Column("member_id", Integer, nullable=True),
    Column("accessed_at_ms", BigInteger, nullable=False),
    Column("status", Integer, nullable=True),
    Column("bytes", BigInteger, nullable=True),
    Column("latency_ms", Float, nullable=True),
    Column("released", Boolean, nullable=False, default=False),
    UniqueConstraint("partner_id", "record_id", name="uq_access_record"),
    Index("ix_access_records_partner_month", "partner_id", "month"),
)

# How far each partner's stream has been applied (the last stream id settled).
settlement_watermarks = Table(
    "settlement_watermarks",
    metadata,
    Column("partner_id", Integer, primary_key=True, autoincrement=False),
    Column("last_id", String(40), nullable=False),
    Column("settled_at", DateTime(timezone=True), nullable=False),
)

# What the streams carried, per partner and month, up to the watermark: access entries and
# release entries, counted as they are settled (in the same transaction as the watermark). The
# settler trims what it settled from Redis, so this is the stream's side of reconciliation for
# the trimmed part; the part after the watermark is still read from the stream itself.
settled_stream_tallies = Table(
    "settled_stream_tallies",
    metadata,
    Column("partner_id", Integer, primary_key=True, autoincrement=False),
    Column("month", String(7), primary_key=True),
    Column("accesses", BigInteger, nullable=False),
    Column("releases", BigInteger, nullable=False),
)
