"""Filtering and keyset pagination over a released table (never an aggregation over microdata)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

import msgspec
import polars as pl

from dataflow.aggregation.catalog import ROW_ID, LoadedRelease, PublicTable

__all__ = ["Filter", "Page", "QueryError", "RowQuery", "parse_query", "run_query"]

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000
_CODE = re.compile(r"[0-9A-Za-z_\-]{1,20}")


class QueryError(ValueError):
    """A query parameter is malformed; the message says which and what is expected."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True, slots=True)
class Filter:
    level: str
    values: tuple[str, ...] = ()
    low: str | None = None
    high: str | None = None
    prefix: str | None = None

    def expr(self) -> pl.Expr:
        col = pl.col(self.level)
        if self.prefix is not None:
            return col.str.starts_with(self.prefix)
        if self.values:
            return col.is_in(list(self.values))
        out = pl.lit(True)
        if self.low is not None:
            out = out & (col >= self.low)
        if self.high is not None:
            out = out & (col <= self.high)
        return out & (col != "_T")


@dataclass(frozen=True, slots=True)
class RowQuery:
    table: str
    filters: tuple[Filter, ...]
    columns: tuple[str, ...]
    limit: int
    after: int


@dataclass(frozen=True, slots=True)
class Page:
    frame: pl.DataFrame
    has_more: bool
    next_cursor: str | None


class _Cursor(msgspec.Struct, frozen=True, array_like=True):
    release: str
    after: int


def encode_cursor(release: str, after: int) -> str:
    return (
        base64.urlsafe_b64encode(msgspec.msgpack.encode(_Cursor(release, after)))
        .decode()
        .rstrip("=")
    )


def decode_cursor(token: str, release: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        cur = msgspec.msgpack.decode(raw, type=_Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise QueryError(
            "cursor", "not a cursor this API issued; pass next_cursor back unchanged"
        ) from None
    if cur.release != release:
        raise QueryError(
            "cursor", f"issued for release {cur.release}, the current one is {release}; start again"
        )
    if cur.after < -1:
        raise QueryError("cursor", "not a cursor this API issued")
    return cur.after


def _check_code(level: str, code: str) -> str:
    if not _CODE.fullmatch(code):
        raise QueryError(level, f"{code!r} is not a code (letters, digits, '-' or '_', at most 20)")
    return code


def _parse_filter(level: str, raw: str) -> Filter:
    raw = raw.strip()
    if not raw:
        raise QueryError(
            level, "empty filter; give a code, a list a,b, a range a..b or a prefix a*"
        )
    if raw.endswith("*"):
        return Filter(level, prefix=_check_code(level, raw[:-1]))
    if ".." in raw:
        low, _, high = raw.partition("..")
        if not low and not high:
            raise QueryError(level, "a range needs at least one end, as 2026-01..2026-03")
        return Filter(
            level,
            low=_check_code(level, low) if low else None,
            high=_check_code(level, high) if high else None,
        )
    return Filter(level, values=tuple(_check_code(level, v.strip()) for v in raw.split(",")))


def parse_query(table: PublicTable, params: dict[str, str], release: str) -> RowQuery:
    """Validate every parameter against the table's levels and measures."""
    reserved = {"columns", "limit", "cursor", "format"}
    levels = table.levels
    filters = []
    for name, raw in sorted(params.items()):
        if name in reserved:
            continue
        if name not in levels:
            raise QueryError(name, f"not a level of {table.id}; levels: {', '.join(levels)}")
        filters.append(_parse_filter(name, raw))
    allowed = [*levels, *table.measures, "flag"]
    columns = tuple(allowed)
    if params.get("columns"):
        columns = tuple(c.strip() for c in params["columns"].split(",") if c.strip())
        bad = [c for c in columns if c not in allowed]
        if bad or not columns:
            raise QueryError("columns", f"unknown {bad}; choose from {', '.join(allowed)}")
    try:
        limit = int(params.get("limit", DEFAULT_LIMIT))
    except ValueError:
        raise QueryError("limit", "must be a whole number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError("limit", f"must be between 1 and {MAX_LIMIT}; page with cursor for more")
    after = decode_cursor(params["cursor"], release) if params.get("cursor") else -1
    return RowQuery(table.id, tuple(filters), columns, limit, after)


def run_query(release: LoadedRelease, query: RowQuery) -> Page:
    df = release.frames[query.table]
    expr = pl.col(ROW_ID) > query.after
    for f in query.filters:
        expr = expr & f.expr()
    hit = df.filter(expr).head(query.limit + 1)
    has_more = hit.height > query.limit
    page = hit.head(query.limit)
    cursor = encode_cursor(release.version, int(page[ROW_ID][-1])) if has_more else None
    return Page(frame=page.select(query.columns), has_more=has_more, next_cursor=cursor)
