"""Run row queries off the event loop, with a time limit, a concurrency limit and a response cache.

Queries (polars over the in-memory release) and their encoding are CPU work: they run in a small
thread pool so the event loop keeps accepting and answering requests. A query that runs past its
time limit is answered with a 503 problem (its thread finishes in the background and still counts
against the concurrency limit, so a flood of slow queries is refused instead of queued forever).

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
from dataflow.aggregation.query import RowQuery, run_query
from dataflow.api.encode import Format, encode_page
from dataflow.api.errors import Problem

__all__ = ["QueryRunner", "Rendered", "ResponseCache"]


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
        *,
        threads: int = 2,
        timeout_seconds: float = 10.0,
        max_in_flight: int = 256,  # beyond this many queued queries a worker sheds load (503)
        cache_bytes: int = 64 << 20,
    ) -> None:
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
        future = self._pool.submit(_render, release, table, query, fmt)
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


def _render(release: LoadedRelease, table: PublicTable, query: RowQuery, fmt: Format) -> Rendered:
    started = time.perf_counter()
    page = run_query(release, query)
    body = encode_page(table, page, fmt)
    return Rendered(
        body=body,
        rows=page.frame.height,
        has_more=page.has_more,
        next_cursor=page.next_cursor,
        seconds=time.perf_counter() - started,
    )
