"""Each released table in a layout made for its queries: rows found by index, never by scan.

A table is held in its canonical order (sorted by its levels, coarse to fine; a row's position is
its row id, the keyset tie-breaker). Every level gets a dictionary (its distinct codes, sorted),
each row's code as a small integer, and per-code posting lists (the rows holding that code,
ascending). A filter becomes a set of code ids (equality and lists by lookup, ranges and prefixes
by bisection in the sorted codes); the most selective filter's postings are the candidates, the
other filters are one array lookup each on them. Sort keys are integer ranks (a level's code id;
a measure's dense rank with suppressed values last either way), so ordering and keyset cursors are
integer comparisons, and a cursor's position is found by bisection. A single-key sort over most of
a table uses that key's whole-table permutation, computed once on first use.

Profiled under load (py-spy, one worker, varied municipality filters, response cache off;
README, "Benchmarks"): the polars plan per request — lazy frame, filter, sort, head, collect —
was 43 % of the worker's samples (its thread 52 %), more than routing, metering and encoding
together. Here a 100-row page is a handful of numpy calls over one run of postings (about 10 µs
of CPU for plan and selection, against about 1 ms for the polars plan, in-process).

The semantics are those of the straightforward polars filter + sort kept as the reference in the
tests (``tests/aggregation/reference.py``): property tests compare the two on every table, for
every filter form, sort and cursor.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from dataflow.aggregation.levels import TOTAL

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

__all__ = [
    "Filter",
    "LevelIndex",
    "MeasureKeys",
    "Plan",
    "Selection",
    "SortKey",
    "TableLayout",
]


@dataclass(frozen=True, slots=True)
class Filter:
    """One level's filter: equal to one of ``values``, in ``low..high`` (codes, never the
    margin), or starting with ``prefix``."""

    level: str
    values: tuple[str, ...] = ()
    low: str | None = None
    high: str | None = None
    prefix: str | None = None


@dataclass(frozen=True, slots=True)
class SortKey:
    column: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """A query's filters resolved against the indexes, most selective first."""

    steps: tuple[tuple[int, LevelIndex, NDArray[np.int64]], ...]  # (rows, level, code ids)
    sort: tuple[SortKey, ...]
    work: int  # rows the query touches beyond its page, at most: whether it may run inline


@dataclass(frozen=True, slots=True)
class Selection:
    """Row positions of a page in page order, and whether more rows follow."""

    rows: NDArray[np.int64]
    has_more: bool


def _empty() -> NDArray[np.int64]:
    return np.empty(0, dtype=np.int64)


@dataclass(frozen=True, slots=True, eq=False)
class LevelIndex:
    """One level: sorted distinct codes, each row's code id, and per-code posting lists."""

    codes: list[str]  # distinct codes, sorted (the margin `_T` among them)
    ids: dict[str, int]
    row_codes: NDArray[np.int32]  # code id of every row
    postings: NDArray[np.int64]  # rows grouped by code id, ascending within a code
    starts: NDArray[np.int64]  # code i's rows: postings[starts[i]:starts[i + 1]]
    ascending: bool  # postings ascending overall (the first level of the canonical order)

    @classmethod
    def build(cls, column: pa.ChunkedArray) -> LevelIndex:
        if column.null_count:
            raise ValueError("a level column holds codes, never nulls")
        encoded = column.combine_chunks().dictionary_encode()
        found = encoded.dictionary.to_pylist()
        codes = sorted(found)
        ids = {code: i for i, code in enumerate(codes)}
        remap = np.array([ids[c] for c in found], dtype=np.int32)
        row_codes = remap[encoded.indices.to_numpy(zero_copy_only=False)]
        postings = np.argsort(row_codes, kind="stable").astype(np.int64)
        starts = np.zeros(len(codes) + 1, dtype=np.int64)
        np.cumsum(np.bincount(row_codes, minlength=len(codes)), out=starts[1:])
        ascending = bool(np.all(postings[1:] > postings[:-1]))
        return cls(codes, ids, row_codes, postings, starts, ascending)

    def code_ids(self, f: Filter) -> NDArray[np.int64]:
        """The ids of the codes a filter selects, ascending."""
        codes = self.codes
        if f.prefix is not None:
            # Codes starting with the prefix sit together in sorted order.
            following = f.prefix[:-1] + chr(ord(f.prefix[-1]) + 1)
            lo, hi = bisect.bisect_left(codes, f.prefix), bisect.bisect_left(codes, following)
            return np.arange(lo, hi, dtype=np.int64)
        if f.values:
            found = [self.ids[v] for v in f.values if v in self.ids]
            return np.array(sorted(found), dtype=np.int64)
        lo = 0 if f.low is None else bisect.bisect_left(codes, f.low)
        hi = len(codes) if f.high is None else bisect.bisect_right(codes, f.high)
        ids = np.arange(lo, hi, dtype=np.int64)
        total = self.ids.get(TOTAL)
        return ids[ids != total] if total is not None and lo <= total < hi else ids

    def count(self, ids: NDArray[np.int64]) -> int:
        if ids.size and ids[-1] - ids[0] + 1 == ids.size:  # consecutive codes (ids are sorted)
            return int(self.starts[ids[-1] + 1] - self.starts[ids[0]])
        return int((self.starts[ids + 1] - self.starts[ids]).sum())

    def rows(self, ids: NDArray[np.int64], count: int) -> NDArray[np.int64]:
        """The rows holding any of ``ids`` (``count`` of them), ascending."""
        if ids.size == 0:
            return _empty()
        first, last = int(ids[0]), int(ids[-1])
        if last - first + 1 == ids.size and (ids.size == 1 or self.ascending):
            # One code, or consecutive codes of the leading level: one run of the postings.
            return self.postings[self.starts[first] : self.starts[last + 1]]
        if count * 4 > self.row_codes.size:  # a large share of the table: one pass over it
            return np.flatnonzero(self.member(ids)[self.row_codes])
        begins, lengths = self.starts[ids], self.starts[ids + 1] - self.starts[ids]
        ends = np.cumsum(lengths)
        rows = self.postings[np.repeat(begins - (ends - lengths), lengths) + np.arange(count)]
        return rows if self.ascending else np.sort(rows)

    def member(self, ids: NDArray[np.int64]) -> NDArray[np.bool_]:
        """A mask over code ids: which codes the filter keeps."""
        keep = np.zeros(len(self.codes), dtype=np.bool_)
        keep[ids] = True
        return keep

    def rank_of(self, code: str) -> int:
        """Where ``code`` sits among the codes, on the doubled scale of ``MeasureKeys``."""
        i = bisect.bisect_left(self.codes, code)
        return 2 * i if i < len(self.codes) and self.codes[i] == code else 2 * i - 1


@dataclass(frozen=True, slots=True, eq=False)
class MeasureKeys:
    """A numeric column's sort keys: values as floats, dense ranks, suppressed (null) last.

    Keys live on a doubled scale — a row's key is twice its rank — so that a cursor value that no
    row holds still has a key strictly between its neighbours'.
    """

    values: NDArray[np.float64]  # null as NaN
    distinct: NDArray[np.float64]  # distinct non-null values, ascending
    ranks: NDArray[np.int64]  # 2 × dense rank; null rows 2 × len(distinct)

    @classmethod
    def build(cls, column: pa.ChunkedArray) -> MeasureKeys:
        values = (
            pl.from_arrow(column)
            .cast(pl.Float64)
            .fill_null(float("nan"))
            .to_numpy()
            .astype(np.float64, copy=False)
        )
        present = ~np.isnan(values)
        distinct = np.unique(values[present])
        ranks = np.full(values.size, 2 * distinct.size, dtype=np.int64)
        ranks[present] = 2 * np.searchsorted(distinct, values[present])
        return cls(values, distinct, ranks)

    def rank_of(self, value: float, descending: bool) -> int:
        """The key of a cursor value; ±inf is how the cursor spells a suppressed value."""
        if value == (-np.inf if descending else np.inf):
            return 2 * self.distinct.size
        i = int(np.searchsorted(self.distinct, value))
        exact = i < self.distinct.size and self.distinct[i] == value
        return 2 * i if exact else 2 * i - 1


@dataclass(slots=True, eq=False)
class TableLayout:
    """A table in canonical order with its level indexes and sort keys."""

    arrow: pa.Table  # the served columns, canonical order
    levels: dict[str, LevelIndex]
    keys: dict[str, MeasureKeys]  # numeric columns' sort keys (the measures' made at load)
    # Whole-table orders of single sort keys, made on first use: (rows in order, their keys).
    _orders: dict[tuple[str, bool], tuple[NDArray[np.int64], NDArray[np.int64]]] = field(
        default_factory=dict
    )

    @classmethod
    def build(cls, table: pa.Table, levels: Sequence[str], measures: Sequence[str]) -> TableLayout:
        """``table`` in canonical order (sorted by ``levels``)."""
        return cls(
            arrow=table,
            levels={lv: LevelIndex.build(table.column(lv)) for lv in levels},
            keys={m: MeasureKeys.build(table.column(m)) for m in measures},
        )

    @property
    def height(self) -> int:
        return int(self.arrow.num_rows)

    @property
    def nbytes(self) -> int:
        index = sum(
            lv.row_codes.nbytes + lv.postings.nbytes + lv.starts.nbytes
            for lv in self.levels.values()
        )
        keys = sum(k.values.nbytes + k.ranks.nbytes for k in self.keys.values())
        orders = sum(o.nbytes + k.nbytes for o, k in self._orders.values())
        return int(self.arrow.nbytes) + index + keys + orders

    def frame(
        self, rows: NDArray[np.int64] | None = None, columns: Sequence[str] | None = None
    ) -> pl.DataFrame:
        """Rows (all by default) as a polars frame."""
        data = self.arrow if rows is None else self.arrow.take(rows)
        out = pl.from_arrow(data if columns is None else data.select(list(columns)))
        assert isinstance(out, pl.DataFrame)
        return out

    def _measure(self, column: str) -> MeasureKeys:
        """Sort keys of a numeric column (made on first use for columns other than measures)."""
        keys = self.keys.get(column)
        if keys is None:
            keys = self.keys[column] = MeasureKeys.build(self.arrow.column(column))
        return keys

    # -- selection ---------------------------------------------------------------------------

    def plan(self, filters: Sequence[Filter], sort: Sequence[SortKey]) -> Plan:
        """Resolve the filters to code ids (a few bisections and lookups) and bound the work."""
        steps = []
        for f in filters:
            index = self.levels[f.level]
            ids = index.code_ids(f)
            steps.append((index.count(ids), index, ids))
        steps.sort(key=lambda p: p[0])  # the most selective filter drives
        work = steps[0][0] if steps else 0
        if sort:
            whole = len(sort) == 1 and (not steps or work * 4 > self.height)
            if whole and (steps or (sort[0].column, sort[0].descending) not in self._orders):
                work = self.height  # a pass over the key's whole-table order (or making it)
            elif not steps:
                work = self.height  # sorting every row
        return Plan(tuple(steps), tuple(sort), work)

    def candidates(self, plan: Plan) -> NDArray[np.int64] | None:
        """Rows passing every filter, ascending; ``None`` for every row (no filter)."""
        if not plan.steps:
            return None
        count, index, ids = plan.steps[0]
        rows = index.rows(ids, count)
        for _, other, other_ids in plan.steps[1:]:
            if rows.size == 0:
                break
            rows = rows[other.member(other_ids)[other.row_codes[rows]]]
        return rows

    def select(
        self,
        filters: Sequence[Filter],
        sort: Sequence[SortKey],
        after: Sequence[object] | None,
        limit: int,
        plan: Plan | None = None,
    ) -> Selection:
        """A page: up to ``limit`` rows after the cursor key ``after`` (sort values, row id)."""
        plan = plan or self.plan(filters, sort)
        rows = self.candidates(plan)
        if sort:
            ordered = self._sorted(rows, sort, after, limit + 1)
        else:
            ordered = self._in_canonical_order(rows, after, limit + 1)
        return Selection(ordered[:limit], ordered.size > limit)

    def _in_canonical_order(
        self, rows: NDArray[np.int64] | None, after: Sequence[object] | None, want: int
    ) -> NDArray[np.int64]:
        last = -1 if after is None else _row_id(after[-1])
        if rows is None:
            start = max(last + 1, 0)
            return np.arange(start, min(start + want, self.height), dtype=np.int64)
        start = int(np.searchsorted(rows, last, side="right"))
        return rows[start : start + want]

    def sort_key(self, key: SortKey, rows: NDArray[np.int64] | None) -> NDArray[np.int64]:
        """The integer sort key of ``rows`` (all rows when ``None``): ascending order of it
        is the requested order, suppressed values last."""
        level = self.levels.get(key.column)
        if level is not None:
            codes = level.row_codes if rows is None else level.row_codes[rows]
            doubled = 2 * codes.astype(np.int64)
            return -doubled if key.descending else doubled
        measure = self._measure(key.column)
        ranks = measure.ranks if rows is None else measure.ranks[rows]
        if not key.descending:
            return ranks
        # Descending: negated, suppressed still last (above -1, a cursor below every value).
        return np.where(ranks == 2 * measure.distinct.size, 2, -ranks)

    def cursor_key(self, key: SortKey, value: object) -> int:
        """The cursor's value of ``key`` on the scale of ``sort_key``."""
        level = self.levels.get(key.column)
        if level is not None:
            rank = level.rank_of(str(value))
            return -rank if key.descending else rank
        measure = self._measure(key.column)
        rank = measure.rank_of(float(value), key.descending)  # type: ignore[arg-type]
        if not key.descending:
            return rank
        return 2 if rank == 2 * measure.distinct.size else -rank

    def cursor_values(self, sort: Sequence[SortKey], row: int) -> list[str | float | int]:
        """What a cursor after ``row`` carries: its sort values (suppressed as ±inf), its id."""
        out: list[str | float | int] = []
        for key in sort:
            level = self.levels.get(key.column)
            if level is not None:
                out.append(level.codes[int(level.row_codes[row])])
                continue
            value = float(self._measure(key.column).values[row])
            out.append((-np.inf if key.descending else np.inf) if np.isnan(value) else value)
        out.append(row)
        return out

    def _sorted(
        self,
        rows: NDArray[np.int64] | None,
        sort: Sequence[SortKey],
        after: Sequence[object] | None,
        want: int,
    ) -> NDArray[np.int64]:
        many = rows is None or rows.size * 4 > self.height
        if len(sort) == 1 and many:
            return self._by_whole_order(rows, sort[0], after, want)
        if rows is None:
            rows = np.arange(self.height, dtype=np.int64)
        keys = [self.sort_key(k, rows) for k in sort]
        if after is not None:
            # Rows strictly after the cursor in (keys…, row id) order.
            beyond = rows > _row_id(after[-1])
            for key, k, value in reversed(list(zip(sort, keys, after, strict=False))):
                bound = self.cursor_key(key, value)
                beyond = (k > bound) | ((k == bound) & beyond)
            rows = rows[beyond]
            keys = [k[beyond] for k in keys]
        # Stable on ascending rows: ties keep row id order, the keyset's last key.
        order = np.lexsort(keys[::-1]) if len(keys) > 1 else np.argsort(keys[0], kind="stable")
        return rows[order[:want]]

    def _by_whole_order(
        self,
        rows: NDArray[np.int64] | None,
        key: SortKey,
        after: Sequence[object] | None,
        want: int,
    ) -> NDArray[np.int64]:
        """One sort key over most of the table: walk that key's whole-table order."""
        order, keys = self._whole_order(key)
        start = 0
        if after is not None:
            bound, last = self.cursor_key(key, after[0]), _row_id(after[-1])
            lo = int(np.searchsorted(keys, bound, side="left"))
            hi = int(np.searchsorted(keys, bound, side="right"))
            # Within a tie the rows ascend: bisect the row id there.
            start = lo + int(np.searchsorted(order[lo:hi], last, side="right"))
        if rows is None:
            return order[start : start + want]
        keep = np.zeros(self.height, dtype=np.bool_)
        keep[rows] = True
        tail = order[start:]
        return tail[keep[tail]][:want]

    def _whole_order(self, key: SortKey) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Every row in ``key``'s order (row id breaking ties) and the keys in that order."""
        name = (key.column, key.descending)
        made = self._orders.get(name)
        if made is None:  # a race makes it twice, harmlessly
            keys = self.sort_key(key, None)
            order = np.argsort(keys, kind="stable").astype(np.int64)
            made = self._orders[name] = (order, keys[order])
        return made


def _row_id(value: object) -> int:
    assert isinstance(value, int)
    return value
