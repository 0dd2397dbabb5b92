"""Run row queries with a time limit, a concurrency limit and a response cache.

A query's plan (``TableLayout.plan``: its filters resolved against the level indexes) bounds the
rows it touches. A small one — at most ``INLINE_ROWS`` rows touched and paged, not Parquet — costs
tens of microseconds and runs on the event loop: handing it to a thread cost more than the query
(a future, a cross-thread wake-up, and the GIL passed back and forth under load). Anything bigger
runs in a small thread pool so the event loop keeps accepting and answering requests; a query that
runs past its time limit is answered with a 503 problem (its thread finishes in the background
and still counts against the concurrency limit, so a flood of slow queries is refused instead of
queued forever).

The cache maps (release, normalized query, format) to the encoded body. It is shared by every
partner — the body depends only on the query — while the meter still counts every access.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dataflow.aggregation.catalog import LoadedRelease, PublicTable
from dataflow.aggregation.layout import Plan
from dataflow.aggregation.query import RowQuery, run_query
from dataflow.api.encode import Format, PageEncoder
from dataflow.api.errors import Problem

__all__ = ["INLINE_ROWS", "QueryRunner", "Rendered", "ResponseCache"]

# Rows a query may touch (candidates + page) and still run on the event loop: ~100 µs of numpy.
INLINE_ROWS = 4_096


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    rows: int
    has_more: bool
    next_cursor: str | None
    seconds: float  # time to compute (0 for a cache hit)


CacheKey = tuple[str, RowQuery, Format]


class ResponseCache:
    """LRU of encoded pages with a byte budget; used from the event loop only (no locks)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.max_item = max_bytes // 8
        self.bytes = 0
        self._items: OrderedDict[CacheKey, Rendered] = OrderedDict()

    def get(self, key: CacheKey) -> Rendered | None:
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
        return hit

    def put(self, key: CacheKey, value: Rendered) -> None:
        size = len(value.body)
        if size > self.max_item or key in self._items:
            return
        self._items[key] = value
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.bytes -= len(old.body)

    def __len__(self) -> int:
        return len(self._items)


class QueryRunner:
    def __init__(
        self,
        encoder: PageEncoder,
        *,
        threads: int = 2,
        timeout_seconds: float = 10.0,
        max_in_flight: int = 256,  # beyond this many queued queries a worker sheds load (503)
        cache_bytes: int = 64 << 20,
    ) -> None:
        self.encoder = encoder
        self.timeout_seconds = timeout_seconds
        self.max_in_flight = max_in_flight
        self.cache = ResponseCache(cache_bytes)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dataflow-query")
        self._in_flight = 0

    def lookup(self, release: LoadedRelease, query: RowQuery, fmt: Format) -> Rendered | None:
        return self.cache.get((release.version, query, fmt))

    async def render(
        self, release: LoadedRelease, table: PublicTable, query: RowQuery, fmt: Format
    ) -> Rendered:
        """Compute (or find) the page; raise a 503 problem when over the limits."""
        key = (release.version, query, fmt)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        plan = release.layouts[query.table].plan(query.filters, query.sort)
        if plan.work + query.limit <= INLINE_ROWS and fmt is not Format.PARQUET:
            out = self._render(release, table, query, fmt, plan)
            self.cache.put(key, out)
            return out
        if self._in_flight >= self.max_in_flight:
            raise Problem(
                503,
                "overloaded",
                "Too many queries running",
                "the server is busy with other queries; retry in a second",
                headers={"Retry-After": "1"},
            )
        loop = asyncio.get_running_loop()
        self._in_flight += 1
        future = self._pool.submit(self._render, release, table, query, fmt, plan)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._finished))
        try:
            out = await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_seconds)
        except TimeoutError:
            raise Problem(
                503,
                "query-timeout",
                "Query took too long",
                f"the query ran past {self.timeout_seconds:g}s; "
                "narrow the filters or ask for fewer rows per page",
                headers={"Retry-After": "5"},
            ) from None
        self.cache.put(key, out)
        return out

    def _finished(self) -> None:
        self._in_flight -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _render(
        self,
        release: LoadedRelease,
        table: PublicTable,
        query: RowQuery,
        fmt: Format,
        plan: Plan,
    ) -> Rendered:
        started = time.perf_counter()
        page = run_query(release, query, plan)
        body = self.encoder.encode(table, page, fmt)
        return Rendered(
            body=body,
            rows=page.height,
            has_more=page.has_more,
            next_cursor=page.next_cursor,
            seconds=time.perf_counter() - started,
        )
