"""Response bodies: JSON (msgspec, numbers as numbers) and CSV."""

from __future__ import annotations

import io

import msgspec

from dataflow.aggregation.catalog import PublicTable
from dataflow.aggregation.query import Page

__all__ = ["CSV", "JSON", "encode_page"]

JSON = "application/json"
CSV = "text/csv"

_encoder = msgspec.json.Encoder(decimal_format="number")


def encode_page(table: PublicTable, page: Page, media_type: str) -> bytes:
    if media_type == CSV:
        buf = io.BytesIO()
        page.frame.write_csv(buf)
        return buf.getvalue()
    return _encoder.encode(
        {
            "table": table.id,
            "release": table.release,
            "columns": page.frame.columns,
            "rows": page.frame.to_dicts(),
            "has_more": page.has_more,
            "next_cursor": page.next_cursor,
        }
    )


def encode_json(value: object) -> bytes:
    return _encoder.encode(value)
