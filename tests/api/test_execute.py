"""The query runner: small queries inline, big ones in the pool under the time and load limits."""

from __future__ import annotations

import threading

import pytest

from dataflow.aggregation.catalog import LoadedRelease, load_release
from dataflow.aggregation.query import parse_query
from dataflow.aggregation.release import ReleaseSummary
from dataflow.api.encode import Format, PageEncoder
from dataflow.api.errors import Problem
from dataflow.api.execute import INLINE_ROWS, QueryRunner

TABLE = "sales_municipality_cnae_division_month"


@pytest.fixture(scope="module")
def loaded(release: ReleaseSummary) -> LoadedRelease:
    return load_release(release.path)


def _runner(loaded: LoadedRelease, **limits: float) -> QueryRunner:
    return QueryRunner(PageEncoder(loaded), cache_bytes=0, **limits)  # type: ignore[arg-type]


async def test_small_queries_run_inline_and_ignore_the_pool_limits(loaded: LoadedRelease) -> None:
    """A page of a few rows never waits for (nor is refused by) the thread pool."""
    runner = _runner(loaded, max_in_flight=0, timeout_seconds=1e-9)
    table = loaded.table(TABLE)
    query = parse_query(table, {"municipality": "_T", "limit": "100"}, loaded.version)
    plan = loaded.layouts[TABLE].plan(query.filters, query.sort)
    assert plan.work + query.limit <= INLINE_ROWS
    out = await runner.render(loaded, table, query, Format.JSON)
    assert out.rows > 0
    runner.close()


async def test_big_queries_are_refused_when_the_pool_is_full(loaded: LoadedRelease) -> None:
    runner = _runner(loaded, max_in_flight=0)
    table = loaded.table(TABLE)
    query = parse_query(table, {"limit": "5000", "sort": "-item_value,month"}, loaded.version)
    with pytest.raises(Problem) as refused:
        await runner.render(loaded, table, query, Format.JSON)
    assert refused.value.status == 503 and refused.value.kind == "overloaded"
    runner.close()


async def test_big_queries_keep_their_time_limit(loaded: LoadedRelease) -> None:
    runner = _runner(loaded, threads=1, timeout_seconds=0.05)
    table = loaded.table(TABLE)
    query = parse_query(table, {"limit": "50000"}, loaded.version, max_limit=250_000)
    # The pool's one thread is busy, so the query cannot finish in time, however fast it is.
    busy = threading.Event()
    runner._pool.submit(busy.wait, 10)
    try:
        with pytest.raises(Problem) as late:
            await runner.render(loaded, table, query, Format.PARQUET)
    finally:
        busy.set()
    assert late.value.status == 503 and late.value.kind == "query-timeout"
    runner.close()
