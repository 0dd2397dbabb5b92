"""A partner's counted accesses of a month, one record each: what lets anyone verify a bill.

The records are the settled ``access_records`` less those given back (a failed response is not
billed). Their number is the month's ``usage_ledger`` count, which is what billing prices, so
they re-add exactly to the invoice's access lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import msgspec
from sqlalchemy import ColumnElement, Connection, Engine, and_, func, select

from dataflow.metering.tables import access_records

__all__ = ["RECORD_FIELDS", "AccessRecord", "count_records", "month_records"]

RECORD_FIELDS = (
    "record_id",
    "accessed_at",
    "month",
    "key_id",
    "member_id",
    "table_id",
    "release",
    "status",
    "bytes",
)


class AccessRecord(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    record_id: str
    accessed_at: datetime  # UTC
    month: str  # billing month (America/Sao_Paulo)
    key_id: str
    member_id: int | None
    table_id: str
    release: str
    status: int | None  # None: served, but its completion (status, bytes) was not recorded
    bytes: int | None


def _counted(partner_id: int, month: str) -> ColumnElement[bool]:
    r = access_records.c
    return and_(r.partner_id == partner_id, r.month == month, r.released.is_(False))


def count_records(conn: Connection, partner_id: int, month: str) -> int:
    q = select(func.count()).select_from(access_records).where(_counted(partner_id, month))
    return int(conn.execute(q).scalar_one())


def month_records(
    engine: Engine, partner_id: int, month: str, *, chunk: int = 10_000
) -> Iterator[list[AccessRecord]]:
    """The records in time order, a chunk at a time (a busy month holds millions)."""
    r = access_records.c
    q = (
        select(
            r.record_id,
            r.accessed_at_ms,
            r.month,
            r.key_id,
            r.member_id,
            r.table_id,
            r.release,
            r.status,
            r.bytes,
        )
        .where(_counted(partner_id, month))
        .order_by(r.accessed_at_ms, r.record_id)
    )
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=chunk).execute(q)
        for rows in result.partitions(chunk):
            yield [
                AccessRecord(
                    record_id=row[0],
                    accessed_at=datetime.fromtimestamp(row[1] / 1000, UTC),
                    month=row[2],
                    key_id=row[3],
                    member_id=row[4],
                    table_id=row[5],
                    release=row[6],
                    status=row[7],
                    bytes=row[8],
                )
                for row in rows
            ]
