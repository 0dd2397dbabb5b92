"""A month's access records as CSV, JSON or Parquet: for ``/v1/account/accesses`` and the console.

CSV streams chunk by chunk (a month can hold millions of records); Parquet is built in memory
with pyarrow; JSON says how many records there are next to them. Times are UTC ISO 8601.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine

from dataflow.api.errors import Problem
from dataflow.metering.models import billing_month
from dataflow.metering.records import RECORD_FIELDS, month_records

__all__ = ["csv_chunks", "json_body", "parquet_body", "parse_month"]

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def parse_month(raw: str | None) -> str:
    """``YYYY-MM`` (this billing month when absent); a 400 problem otherwise."""
    if raw is None or raw == "":
        return billing_month(datetime.now(UTC))
    if not _MONTH.match(raw):
        raise Problem(
            400,
            "invalid-query",
            "Invalid query parameter",
            f"month={raw[:20]!r}: expected YYYY-MM, e.g. 2026-03",
            parameter="month",
        )
    return raw


def _row(rec: object) -> list[object]:
    values: list[object] = list(msgspec.to_builtins(rec))
    values[1] = values[1].replace("+00:00", "Z") if isinstance(values[1], str) else values[1]
    return values


async def csv_chunks(engine: Engine, partner_id: int, month: str) -> AsyncIterator[bytes]:
    """Header, then one line per counted access, a database chunk at a time (off the loop)."""
    chunks = month_records(engine, partner_id, month)
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(RECORD_FIELDS)
    yield buf.getvalue().encode()
    while (part := await asyncio.to_thread(next, chunks, None)) is not None:
        buf.seek(0)
        buf.truncate()
        out.writerows(_row(rec) for rec in part)
        yield buf.getvalue().encode()


def json_body(engine: Engine, partner_id: int, month: str) -> bytes:
    records = [rec for part in month_records(engine, partner_id, month) for rec in part]
    return msgspec.json.encode(
        {
            "partner_id": partner_id,
            "month": month,
            "count": len(records),
            "fields": RECORD_FIELDS,
            "records": [dict(zip(RECORD_FIELDS, _row(r), strict=True)) for r in records],
        }
    )


_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("accessed_at", pa.timestamp("ms", tz="UTC")),
        ("month", pa.string()),
        ("key_id", pa.string()),
        ("member_id", pa.int64()),
        ("table_id", pa.string()),
        ("release", pa.string()),
        ("status", pa.int32()),
        ("bytes", pa.int64()),
    ]
)


def parquet_body(engine: Engine, partner_id: int, month: str) -> bytes:
    columns: list[list[object]] = [[] for _ in RECORD_FIELDS]
    for part in month_records(engine, partner_id, month):
        for rec in part:
            for i, value in enumerate(msgspec.structs.astuple(rec)):
                columns[i].append(value)
    table = pa.Table.from_arrays(
        [pa.array(col, type=field.type) for col, field in zip(columns, _SCHEMA, strict=True)],
        schema=_SCHEMA,
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()
