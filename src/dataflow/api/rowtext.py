"""A table's rows as JSON and CSV text, encoded once at start-up: a page is copied, not encoded.

Every row of the default column set is held as one JSON object (``{…},``) and one CSV line in an
Arrow string array; a page of them is one ``take`` and a slice of its value buffer — no Python
loop over rows, no per-request number formatting. In-process, a 100-row JSON page cost about
285 µs of CPU through polars (gather, cast, ``write_json``) and costs about 25 µs copied from
here (both measured on the loaded machine of README, "Benchmarks").

A page with other columns (``columns=``) is assembled from per-column pieces in a few numpy
passes: each string column as a dictionary (its distinct values' text, each row's index), each
numeric column as its rows' text; every piece of every row becomes a (start, length) span of one
byte buffer, and the page is those spans gathered in order.

Numbers are written as the release holds them (decimals exactly, ``123.40``); a suppressed value
is JSON ``null`` and an empty CSV field. The CSV is byte for byte what polars' ``write_csv`` writes
(the tests compare them), as it was when polars wrote every page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["RowText"]

_JSON, _CSV = 0, 1
_Spans = tuple["NDArray[np.int64]", "NDArray[np.int32]"]  # (starts, lengths) in the buffer


def _key(name: str) -> str:
    return msgspec.json.encode(name).decode() + ":"


def _csv_field(value: str) -> str:
    """As polars writes it: quoted when needed, and the empty string as ``""`` (null is empty)."""
    if not value or any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@dataclass(frozen=True, slots=True, eq=False)
class _Column:
    """Where one column's text sits in the shared buffer.

    A string column: each row's value id (``index``) and, per format, the span of each distinct
    value's text. A numeric column: each row's text span (the same in both formats) and which
    rows are null (JSON ``null`` there, at ``null_at``).
    """

    index: NDArray[np.int32] | None
    starts: tuple[NDArray[np.int64], NDArray[np.int64]]
    lengths: tuple[NDArray[np.int32], NDArray[np.int32]]
    nulls: NDArray[np.bool_] | None = None
    null_at: int = 0

    def spans(self, rows: NDArray[np.int64], fmt: int) -> _Spans:
        at = rows if self.index is None else self.index[rows]
        starts, lengths = self.starts[fmt][at], self.lengths[fmt][at]
        if fmt == _JSON and self.nulls is not None:
            null = self.nulls[rows]
            starts, lengths = np.where(null, self.null_at, starts), np.where(null, 4, lengths)
        return starts, lengths


@dataclass(frozen=True, slots=True, eq=False)
class _Whole:
    """One text per row (JSON objects, CSV lines) in one Arrow array, and views of its buffers."""

    array: pa.Array
    offsets: NDArray[np.int32]
    data: memoryview

    @classmethod
    def of(cls, array: pa.Array) -> _Whole:
        return cls(array, _offsets(array), memoryview(array.buffers()[2]))

    def rows(self, rows: NDArray[np.int64], run: tuple[int, int] | None) -> memoryview:
        """The rows' texts back to back: a slice for a run of rows (``Page.run``), else a take."""
        if run is not None:
            first, count = run
            return self.data[self.offsets[first] : self.offsets[first + count]]
        taken = self.array.take(rows)
        offsets = _offsets(taken)
        return memoryview(taken.buffers()[2])[offsets[0] : offsets[-1]]


class _Buffer:
    """Bytes appended in pieces; remembers where each piece starts."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> int:
        self.parts.append(data)
        self.size += len(data)
        return self.size - len(data)

    def span(self, data: bytes) -> tuple[int, int]:
        return self.add(data), len(data)

    def array(self) -> NDArray[np.uint8]:
        return np.frombuffer(b"".join(self.parts), dtype=np.uint8)


def _offsets(array: pa.Array) -> NDArray[np.int32]:
    """Value offsets of a string array (n + 1 of them, from its first value): a view."""
    raw = np.frombuffer(array.buffers()[1], dtype=np.int32, count=len(array) + 1 + array.offset)
    return raw[array.offset :]


def _repeat(span: tuple[int, int], count: int) -> _Spans:
    return np.full(count, span[0], dtype=np.int64), np.full(count, span[1], dtype=np.int32)


def _values(array: pa.Array, lo: int, hi: int) -> memoryview:
    return memoryview(array.buffers()[2])[lo:hi]


class RowText:
    """JSON and CSV text of a table's rows, in the layout's canonical order."""

    def __init__(self, table: pa.Table, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        buffer = _Buffer()
        texts: dict[str, tuple[pa.Array, pa.Array]] = {}  # per-row JSON and CSV text
        self._columns: dict[str, _Column] = {}
        for name in self.columns:
            column = table.column(name).combine_chunks()
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                self._columns[name], texts[name] = self._strings(column, buffer)
            else:
                self._columns[name], texts[name] = self._numbers(column, buffer)
        self._keys = {  # `{"name":` opening a row, `,"name":` after another column
            (name, first): buffer.span((("{" if first else ",") + _key(name)).encode())
            for name in self.columns
            for first in (True, False)
        }
        self._close = buffer.span(b"},")
        self._comma = buffer.span(b",")
        self._newline = buffer.span(b"\n")
        self._buffer = buffer.array()
        # The default column set, whole rows: one object or line per row.
        json_pieces: list[object] = []
        csv_pieces: list[object] = []
        for i, name in enumerate(self.columns):
            json_pieces += [("{" if i == 0 else ",") + _key(name), texts[name][_JSON]]
            csv_pieces += [*([","] if i else []), texts[name][_CSV]]
        self._rows = (
            _Whole.of(pc.binary_join_element_wise(*json_pieces, "},", "")),
            _Whole.of(pc.binary_join_element_wise(*csv_pieces, "\n", "")),
        )
        self.header = ",".join(_csv_field(c) for c in self.columns).encode() + b"\n"

    @staticmethod
    def _strings(column: pa.Array, buffer: _Buffer) -> tuple[_Column, tuple[pa.Array, pa.Array]]:
        encoded = column.dictionary_encode(null_encoding="encode")
        values = encoded.dictionary.to_pylist()
        json = [msgspec.json.encode(v) for v in values]
        csv = [b"" if v is None else _csv_field(v).encode() for v in values]
        index = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        spans = tuple(
            (
                np.array([buffer.add(t) for t in form], dtype=np.int64),
                np.array([len(t) for t in form], dtype=np.int32),
            )
            for form in (json, csv)
        )
        rows = tuple(
            pa.array([t.decode() for t in form], pa.string()).take(encoded.indices)
            for form in (json, csv)
        )
        col = _Column(index, (spans[0][0], spans[1][0]), (spans[0][1], spans[1][1]))
        return col, (rows[0], rows[1])

    @staticmethod
    def _numbers(column: pa.Array, buffer: _Buffer) -> tuple[_Column, tuple[pa.Array, pa.Array]]:
        text = pc.cast(column, pa.string())  # decimals exact, floats shortest round trip
        csv = text.fill_null("")
        offsets = _offsets(csv).astype(np.int64)
        base = buffer.add(bytes(_values(csv, int(offsets[0]), int(offsets[-1]))))
        starts = base + offsets[:-1] - offsets[0]
        lengths = np.diff(offsets).astype(np.int32)
        nulls = column.is_null().to_numpy(zero_copy_only=False)
        col = _Column(None, (starts, starts), (lengths, lengths), nulls, buffer.add(b"null"))
        return col, (text.fill_null("null"), csv)

    def json(
        self, rows: NDArray[np.int64], columns: Sequence[str], run: tuple[int, int] | None = None
    ) -> list[bytes | memoryview]:
        """The page's rows as a JSON array, in pieces to join (the caller adds its envelope)."""
        if not rows.size:
            return [b"[]"]
        if tuple(columns) == self.columns:
            return [b"[", self._rows[_JSON].rows(rows, run)[:-1], b"]"]  # no comma after last
        spans = []
        for i, name in enumerate(columns):
            spans.append(_repeat(self._keys[(name, i == 0)], rows.size))
            spans.append(self._columns[name].spans(rows, _JSON))
        spans.append(_repeat(self._close, rows.size))
        return [b"[", self._gather(spans)[:-1], b"]"]

    def csv(
        self, rows: NDArray[np.int64], columns: Sequence[str], run: tuple[int, int] | None = None
    ) -> list[bytes | memoryview]:
        """The page as CSV with its header line, in pieces to join."""
        if tuple(columns) == self.columns:
            return [self.header, self._rows[_CSV].rows(rows, run)] if rows.size else [self.header]
        header = ",".join(_csv_field(c) for c in columns).encode() + b"\n"
        if not rows.size:
            return [header]
        spans = []
        for i, name in enumerate(columns):
            if i:
                spans.append(_repeat(self._comma, rows.size))
            spans.append(self._columns[name].spans(rows, _CSV))
        spans.append(_repeat(self._newline, rows.size))
        return [header, self._gather(spans)]

    def _gather(self, spans: list[_Spans]) -> memoryview:
        """Concatenate, row by row, each row's spans in order (all numpy, no row loop)."""
        starts = np.stack([s for s, _ in spans], axis=1).ravel()
        lengths = np.stack([n for _, n in spans], axis=1).ravel().astype(np.int64)
        ends = np.cumsum(lengths)
        index = np.repeat(starts - (ends - lengths), lengths) + np.arange(int(ends[-1]))
        return self._buffer[index].data
