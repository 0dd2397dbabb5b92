"""Deterministic synthetic MG NF-e / NFC-e items with a realistic shape, at scale.

Taxpayers (CNPJ roots) have Zipf-like sizes: a few giants with many establishments, a long tail of
one-shop taxpayers, so that disclosure control has thin and dominated cells to protect. NFC-e
(retail, many small invoices) and NF-e (business) mix as in DESIGN §4; every municipality of MG
takes part, weighted by population.

The run is planned month by month in this process (one row per invoice) and built chunk by chunk
— a chunk is the invoices of a range of establishments in (municipality, CNAE) order — in worker
processes, each chunk with its own random stream: the bytes depend on the seed, the item count
and the months, never on the number of workers.
"""

from __future__ import annotations

import calendar
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date

import numpy as np

from dataflow.invoices.factstore import FactStore
from dataflow.invoices.reference import ReferenceData
from dataflow.invoices.synthetic import profiles
from dataflow.invoices.synthetic.catalog import build_catalog
from dataflow.invoices.synthetic.chunk import World, build_chunk
from dataflow.invoices.synthetic.columns import cents_to_money
from dataflow.invoices.synthetic.plan import PLAN_ITEMS, ChunkTask, Numbering, plan_month
from dataflow.invoices.synthetic.population import build_population
from dataflow.invoices.synthetic.writer import write_part

__all__ = [
    "CHUNK_ITEMS",
    "GenerationSummary",
    "Month",
    "cents_to_money",
    "default_workers",
    "generate",
    "parse_months",
]

CHUNK_ITEMS = 1_000_000  # items per Parquet part: bounds each worker's memory
MAX_ITEMS = 10**9


@dataclass(frozen=True, slots=True, order=True)
class Month:
    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def days(self) -> int:
        return calendar.monthrange(self.year, self.month)[1]

    def first_day(self) -> date:
        return date(self.year, self.month, 1)


def parse_months(spec: str) -> list[Month]:
    """``YYYY-MM:YYYY-MM`` (inclusive) or a single ``YYYY-MM``."""
    try:
        lo, _, hi = spec.partition(":")
        y0, m0 = (int(x) for x in lo.split("-"))
        y1, m1 = (int(x) for x in (hi or lo).split("-"))
        start, end = Month(y0, m0), Month(y1, m1)
        if not (1 <= m0 <= 12 and 1 <= m1 <= 12):
            raise ValueError
    except ValueError:
        raise ValueError(f"months must look like 2026-01:2026-03, got {spec!r}") from None
    if end < start:
        raise ValueError(f"months range {spec!r} ends before it starts")
    out = []
    y, m = start.year, start.month
    while Month(y, m) <= end:
        out.append(Month(y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


@dataclass(frozen=True, slots=True)
class GenerationSummary:
    items: int
    invoices: int
    taxpayers: int
    establishments: int
    months: int
    nfce_invoices: int = 0
    parts: int = 0
    alnum_taxpayers: int = 0
    out_of_state_taxpayers: int = 0
    out_of_state_items: int = 0
    alnum_invoices: int = 0


@dataclass(frozen=True, slots=True)
class _Done:
    year: int
    month: int
    items: int
    invoices: int
    nfce_invoices: int
    out_of_state_items: int
    alnum_invoices: int


_WORLD: list[World] = []  # the worker process's copy, set once by its initializer


def _init_worker(world: World) -> None:
    _WORLD[:] = [world]


def _run(world: World, store: FactStore, task: ChunkTask) -> _Done:
    result = build_chunk(world, task)
    write_part(store, "facts", task.year, task.month, task.index, result.facts)
    write_part(store, "invoices", task.year, task.month, task.index, result.invoices)
    return _Done(
        year=task.year,
        month=task.month,
        items=result.facts.num_rows,
        invoices=result.invoices.num_rows,
        nfce_invoices=result.nfce_invoices,
        out_of_state_items=result.out_of_state_items,
        alnum_invoices=result.alnum_invoices,
    )


def _run_in_worker(store: FactStore, task: ChunkTask) -> _Done:
    return _run(_WORLD[0], store, task)


def _split(total: int, months: list[Month]) -> Iterator[tuple[Month, int]]:
    w = np.array([profiles.SEASON[m.month - 1] for m in months])
    counts = np.floor(w / w.sum() * total).astype(int)
    counts[-1] += total - counts.sum()
    yield from zip(months, (int(c) for c in counts), strict=True)


def _tasks(
    world: World, items: int, months: list[Month], chunk_items: int, plan_items: int
) -> Iterator[ChunkTask]:
    numbering = Numbering.start(world.population.size)
    for month, n in _split(items, months):
        if n == 0:
            continue
        rng = np.random.default_rng([world.seed, 2, month.year, month.month])
        yield from plan_month(
            rng,
            world.population,
            world.catalog.sub_basket,
            month.year,
            month.month,
            n,
            chunk_items,
            numbering,
            plan_items=plan_items,
        )


def generate(
    store: FactStore,
    ref: ReferenceData,
    *,
    items: int,
    seed: int,
    months: list[Month],
    progress: Callable[[Month, int], None] | None = None,
    workers: int = 1,
    chunk_items: int = CHUNK_ITEMS,
    taxpayers: int | None = None,
    plan_items: int = PLAN_ITEMS,
) -> GenerationSummary:
    """Write ``items`` synthetic items spread over ``months``; same arguments, same bytes.

    ``progress(month, items)`` is called as each part is written; ``workers`` > 1 builds parts in
    that many processes (the output does not depend on it). ``taxpayers``: how many CNPJ roots
    issue (default ``population.default_taxpayers(items)``: ~120 items each, at most a real
    month's issuers); memory stays bounded at any ``items`` (months are planned in blocks).
    """
    if not 1 <= items <= MAX_ITEMS:
        raise ValueError(f"items must be between 1 and {MAX_ITEMS:,}, got {items:,}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    catalog = build_catalog(ref, np.random.default_rng([seed, 0]))
    population = build_population(np.random.default_rng([seed, 1]), catalog, items, taxpayers)
    world = World(seed=seed, catalog=catalog, population=population)
    store.clear()
    done: list[_Done] = []

    def record(d: _Done) -> None:
        done.append(d)
        if progress:
            progress(Month(d.year, d.month), d.items)

    tasks = _tasks(world, items, months, chunk_items, plan_items)
    if workers <= 1 or items <= chunk_items:  # one part's worth: starting processes costs more
        for task in tasks:
            record(_run(world, store, task))
    else:
        _parallel(world, store, tasks, workers, record)
    alnum_tax = np.unique(population.taxpayer[population.alnum])
    oos_tax = np.unique(population.taxpayer[population.out_of_state])
    return GenerationSummary(
        items=sum(d.items for d in done),
        invoices=sum(d.invoices for d in done),
        taxpayers=population.n_taxpayers,
        establishments=population.size,
        months=len(months),
        nfce_invoices=sum(d.nfce_invoices for d in done),
        parts=len(done),
        alnum_taxpayers=len(alnum_tax),
        out_of_state_taxpayers=len(oos_tax),
        out_of_state_items=sum(d.out_of_state_items for d in done),
        alnum_invoices=sum(d.alnum_invoices for d in done),
    )


def _parallel(
    world: World,
    store: FactStore,
    tasks: Iterator[ChunkTask],
    workers: int,
    record: Callable[[_Done], None],
) -> None:
    """Keep ``workers`` processes busy, planning ahead only a little (bounded memory)."""
    # spawn: a clean interpreter per worker, never a fork of a process with threads running.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, ctx, initializer=_init_worker, initargs=(world,)) as pool:
        pending: list[Future[_Done]] = []
        for task in tasks:
            pending.append(pool.submit(_run_in_worker, store, task))
            while len(pending) >= 2 * workers:
                record(pending.pop(0).result())
        for f in pending:
            record(f.result())


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))
