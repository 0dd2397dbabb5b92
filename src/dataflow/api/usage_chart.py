"""The usage chart (PNG): rendered on a thread of its own, cached per partner and day.

A render costs 160–200 ms of CPU (matplotlib), and ``/v1/account/usage.png`` answered every call
with a fresh one in the default thread pool — the pool the key ring and the control plane's
queries wait on. Here renders run one at a time on a dedicated thread, a partner's chart is
kept for the rest of its day (America/Sao_Paulo: the chart's bars are *settled* monthly counts,
so a day-old picture is what the issue asked for; ``/v1/usage`` has the live count), and callers
asking for the same chart at once share one render. Each request still takes one from its key's
rate limits (``api/metering.throttle``) before it gets here.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from dataflow.contracts.reports import UsageRow, usage_chart_png

__all__ = ["UsageCharts"]

_Key = tuple[int, date]


class UsageCharts:
    """Per worker: one render thread, and the day's charts (at most ``max_entries``)."""

    def __init__(self, *, max_entries: int = 1024) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._cache: OrderedDict[_Key, bytes] = OrderedDict()
        self._pending: dict[_Key, asyncio.Task[bytes]] = {}
        self._max = max_entries
        self.renders = 0  # how many charts were drawn (tests, and a gauge of the cache's worth)

    async def render(self, rows: list[UsageRow], title: str) -> bytes:
        """Draw one chart on the render thread (uncached: staff reports)."""
        if self._executor is None:  # made on first use: a worker that never draws has no thread
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usage-chart")
        self.renders += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, usage_chart_png, rows, title)

    async def partner_chart(
        self,
        partner_id: int,
        day: date,
        rows: Callable[[], Awaitable[list[UsageRow]]],
        title: str,
    ) -> bytes:
        """The partner's chart of ``day``: from the cache, or drawn once for every caller."""
        key = (partner_id, day)
        png = self._cache.get(key)
        if png is not None:
            self._cache.move_to_end(key)
            return png
        task = self._pending.get(key)
        if task is None:
            task = asyncio.create_task(self._draw(key, rows, title))
            self._pending[key] = task
            task.add_done_callback(lambda _: self._pending.pop(key, None))
        # shielded: one caller giving up does not cancel the render the others wait for
        return await asyncio.shield(task)

    async def _draw(
        self, key: _Key, rows: Callable[[], Awaitable[list[UsageRow]]], title: str
    ) -> bytes:
        png = await self.render(await rows(), title)
        for old in [k for k in self._cache if k[1] != key[1]]:  # yesterday's charts are stale
            del self._cache[old]
        self._cache[key] = png
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return png

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
