"""Filtering, sorting and keyset pagination over a released table.

Only the cells of a pre-protected table are ever returned: this module filters and orders rows, it
never aggregates microdata (that would let anyone difference two overlapping queries).

A cursor carries the release, a fingerprint of the query it belongs to, and the sort key of the last
row served (plus its row number as the tie-breaker): the next page starts strictly after that key,
so pages never overlap or skip rows, however deep the client pages.

The rows are found through the table's layout (``layout.py``: level indexes and integer sort keys);
the tests keep the straightforward polars filter + sort as the reference it must agree with.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from dataflow.aggregation.catalog import LoadedRelease, PublicTable
from dataflow.aggregation.layout import Filter, Plan, SortKey, TableLayout

if TYPE_CHECKING:
    import polars as pl
    from numpy.typing import NDArray

__all__ = [
    "CODE_PATTERN",
    "DEFAULT_LIMIT",
    "FILTER_PATTERN",
    "MAX_CURSOR_CHARS",
    "MAX_LIMIT",
    "MAX_VALUES",
    "RESERVED",
    "CursorMismatch",
    "Filter",
    "Page",
    "QueryError",
    "RowQuery",
    "SortKey",
    "parse_query",
    "run_query",
]

MAX_LIMIT = 10_000  # rows per page for text formats (JSON, CSV)
DEFAULT_LIMIT = 1_000
MAX_VALUES = 2_048  # codes in one list filter (the 4 KB query limit comes first)
MAX_CURSOR_CHARS = 1_024
_MAX_ROW_ID = 1 << 53
RESERVED = frozenset({"columns", "limit", "cursor", "format", "sort"})
CODE_PATTERN = r"[0-9A-Za-z_\-]{1,20}"
# What a filter value may be: a code, a list, a range with at least one end, or a prefix.
FILTER_PATTERN = (
    rf"^(?:{CODE_PATTERN}(?:,{CODE_PATTERN})*|{CODE_PATTERN}\.\.(?:{CODE_PATTERN})?"
    rf"|\.\.{CODE_PATTERN}|{CODE_PATTERN}\*)$"
)
_CODE = re.compile(CODE_PATTERN)


class QueryError(ValueError):
    """A query parameter is malformed; the message says which and what is expected."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


class CursorMismatch(QueryError):
    """A well-formed cursor that belongs to another release or another query."""


@dataclass(frozen=True, slots=True)
class RowQuery:
    """A validated, normalized query: equal queries are equal values (the response cache key)."""

    table: str
    filters: tuple[Filter, ...]
    columns: tuple[str, ...]
    sort: tuple[SortKey, ...]
    limit: int
    after: tuple[object, ...] | None  # sort key values of the last row served, then its row id
    _fingerprint: str = field(default="", init=False, compare=False, repr=False)

    @property
    def fingerprint(self) -> str:
        """Identifies the result set (not the page): what a cursor is bound to.

        Made on first use and kept: the repr of a long code list costs more than finding its rows.
        """
        if not self._fingerprint:
            raw = repr((self.table, self.filters, self.sort)).encode()
            digest = hashlib.blake2b(raw, digest_size=6).hexdigest()
            object.__setattr__(self, "_fingerprint", digest)
        return self._fingerprint


@dataclass(frozen=True, slots=True)
class Page:
    """Row positions of one page in page order; encoders read the rows from the layout."""

    layout: TableLayout
    rows: NDArray[np.int64]
    columns: tuple[str, ...]
    has_more: bool
    next_cursor: str | None

    @property
    def height(self) -> int:
        return int(self.rows.size)

    @property
    def run(self) -> tuple[int, int] | None:
        """(first row, count) when the page's rows follow each other in canonical order."""
        rows = self.rows
        if not rows.size:
            return None
        first, count = int(rows[0]), int(rows.size)
        if int(rows[-1]) - first + 1 != count or (count > 2 and not (np.diff(rows) == 1).all()):
            return None
        return first, count

    @property
    def frame(self) -> pl.DataFrame:
        """The page as a polars frame (a copy of its rows)."""
        return self.layout.frame(self.rows, self.columns)


class _Cursor(msgspec.Struct, frozen=True, array_like=True):
    release: str
    query: str
    after: list[str | float | int]


def encode_cursor(release: str, query: str, after: Sequence[object]) -> str:
    token = msgspec.msgpack.encode(_Cursor(release, query, list(after)))  # type: ignore[arg-type]
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def decode_cursor(
    token: str, release: str, query: str, numeric: Sequence[bool]
) -> tuple[object, ...]:
    """The key after which the next page starts; ``numeric`` tells each sort key's kind."""
    bad = QueryError("cursor", "not a cursor this API issued; pass next_cursor back unchanged")
    if len(token) > MAX_CURSOR_CHARS:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        cur = msgspec.msgpack.decode(raw, type=_Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise bad from None
    if cur.release != release:
        raise CursorMismatch(
            "cursor",
            f"issued for release {cur.release}, the current one is {release}; start again",
        )
    if cur.query != query:
        raise CursorMismatch(
            "cursor", "issued for another query; keep filters and sort unchanged while paging"
        )
    kinds = [*numeric, True]
    if len(cur.after) != len(kinds) or type(cur.after[-1]) is not int:
        raise bad
    if not 0 <= cur.after[-1] < _MAX_ROW_ID:
        raise bad
    for value, is_number in zip(cur.after, kinds, strict=True):
        if isinstance(value, str) == is_number or (is_number and math.isnan(value)):  # type: ignore[arg-type]
            raise bad
    return tuple(cur.after)


def _check_code(level: str, code: str) -> str:
    if not _CODE.fullmatch(code):
        raise QueryError(
            level, f"{code[:40]!r} is not a code (letters, digits, '-' or '_', at most 20)"
        )
    return code


def _parse_filter(level: str, raw: str) -> Filter:
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
    values = raw.split(",")
    if len(values) > MAX_VALUES:
        raise QueryError(level, f"at most {MAX_VALUES} codes in one list")
    return Filter(level, values=tuple(sorted({_check_code(level, v) for v in values})))


def _parse_sort(raw: str, allowed: Sequence[str]) -> tuple[SortKey, ...]:
    keys: dict[str, SortKey] = {}
    for part in raw.split(","):
        name = part.removeprefix("-")
        if name not in allowed:
            raise QueryError(
                "sort", f"{part[:40]!r}: sort by columns of the table, as -item_value,month"
            )
        keys.setdefault(name, SortKey(name, descending=part.startswith("-")))  # first one counts
    return tuple(keys.values())


def parse_query(
    table: PublicTable,
    params: Mapping[str, str],
    release: str,
    *,
    max_limit: int = MAX_LIMIT,
) -> RowQuery:
    """Validate every parameter against the table's levels and measures."""
    levels = table.levels
    filters = []
    for name, raw in sorted(params.items()):
        if name in RESERVED:
            continue
        if name not in levels:
            raise QueryError(
                name[:40], f"not a level of {table.id}; filter on: {', '.join(levels)}"
            )
        filters.append(_parse_filter(name, raw))
    allowed = [*levels, *table.measures, "flag"]
    columns = tuple(allowed)
    if "columns" in params:
        columns = tuple(dict.fromkeys(params["columns"].split(",")))
        bad = [c[:40] for c in columns if c not in allowed]
        if bad or not columns:
            raise QueryError("columns", f"unknown {bad}; choose from {', '.join(allowed)}")
    sort = _parse_sort(params["sort"], [*levels, *table.measures]) if "sort" in params else ()
    raw_limit = params.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or len(raw_limit) > 9:
        raise QueryError("limit", f"a whole number from 1 to {max_limit:,}")
    limit = int(raw_limit)
    if not 1 <= limit <= max_limit:
        raise QueryError("limit", f"must be between 1 and {max_limit:,}; page with cursor for more")
    query = RowQuery(table.id, tuple(filters), columns, sort, limit, None)
    if params.get("cursor"):
        numeric = [k.column in table.measures for k in sort]
        after = decode_cursor(params["cursor"], release, query.fingerprint, numeric)
        query = dataclasses.replace(query, after=after)
    elif "cursor" in params:
        raise QueryError("cursor", "empty; omit it for the first page")
    return query


def run_query(release: LoadedRelease, query: RowQuery, plan: Plan | None = None) -> Page:
    """The query's page; ``plan`` is the layout's plan of it, when the caller made one."""
    layout = release.layouts[query.table]
    found = layout.select(query.filters, query.sort, query.after, query.limit, plan)
    cursor = None
    if found.has_more:
        after = layout.cursor_values(query.sort, int(found.rows[-1]))
        cursor = encode_cursor(release.version, query.fingerprint, after)
    return Page(layout, found.rows, query.columns, found.has_more, cursor)
