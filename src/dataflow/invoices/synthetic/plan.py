"""A month's invoices, decided up front: issuer, model, size, time and number of each one.

Planning happens in one process and costs little (one row per invoice, not per item); it fixes the
exact item count, the per-establishment invoice numbering (nNF), the sort order and the chunks —
consecutive runs of about ``chunk_items`` items in that order — so the expensive part (items,
keys, Parquet) runs in parallel with no coordination, and parts concatenate in sort order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dataflow.invoices.synthetic import profiles
from dataflow.invoices.synthetic.population import Population
from dataflow.invoices.synthetic.timing import local_seconds

__all__ = [
    "MAX_LINES",
    "NFE_LINES",
    "PLAN_ITEMS",
    "ChunkTask",
    "Numbering",
    "draw_lines",
    "plan_month",
]

# Items per NF-e: lognormal (median, sigma), rounded up: median 3, mean ~5.5 (DESIGN §4: 3-8).
# NFC-e baskets depend on the shop (profiles.NFCE_BASKETS). At most 990 lines (NF-e 4.00 limit).
NFE_LINES = (3.0, 1.05)
MAX_LINES = 990


@dataclass(frozen=True, slots=True)
class ChunkTask:
    """One Parquet part: consecutive invoices of one month, in the facts' sort order."""

    year: int
    month: int
    index: int
    est: npt.NDArray[np.int32]  # issuing establishment of each invoice
    model: npt.NDArray[np.int16]  # 55 NF-e, 65 NFC-e
    lines: npt.NDArray[np.int32]  # items on the invoice
    local: npt.NDArray[np.int64]  # issue time: local seconds since the month began
    nnf: npt.NDArray[np.int64]  # invoice number, per establishment and model

    @property
    def items(self) -> int:
        return int(self.lines.sum())


@dataclass(slots=True)
class Numbering:
    """Last invoice number (nNF) per establishment and model, carried from month to month."""

    last55: npt.NDArray[np.int64]
    last65: npt.NDArray[np.int64]

    @classmethod
    def start(cls, n: int) -> Numbering:
        return cls(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64))


def draw_lines(
    rng: np.random.Generator, median: npt.NDArray[np.float64], sigma: npt.NDArray[np.float64]
) -> npt.NDArray[np.int32]:
    lines = np.ceil(median * np.exp(sigma * rng.standard_normal(len(median))))
    return np.clip(lines, 1, MAX_LINES).astype(np.int32)


def _channel(
    rng: np.random.Generator,
    weights: npt.NDArray[np.float64],
    basket: npt.NDArray[np.float64],
    target: int,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """Invoices until exactly ``target`` items: (establishment, lines) per invoice.

    ``weights`` are shares of items; ``basket`` holds each establishment's (median, sigma) of
    lines per invoice, so invoices are drawn in proportion to items / mean basket.
    """
    if target <= 0 or weights.sum() <= 0:
        return np.empty(0, np.int32), np.empty(0, np.int32)
    mean = profiles.basket_mean(basket[:, 0], basket[:, 1])
    per_invoice = weights / mean
    p = per_invoice / per_invoice.sum()
    avg = float(weights.sum() / per_invoice.sum())
    est_parts: list[npt.NDArray[np.int32]] = []
    line_parts: list[npt.NDArray[np.int32]] = []
    total = 0
    while total < target:
        k = int((target - total) / avg * 1.05) + 16
        est = rng.choice(len(p), k, p=p).astype(np.int32)
        est_parts.append(est)
        line_parts.append(draw_lines(rng, basket[est, 0], basket[est, 1]))
        total += int(line_parts[-1].sum())
    est = np.concatenate(est_parts)
    lines = np.concatenate(line_parts)
    cum = np.cumsum(lines)
    n = int(np.searchsorted(cum, target, side="left")) + 1
    est, lines = est[:n], lines[:n].copy()
    lines[-1] -= int(cum[n - 1]) - target  # the last invoice gives back the excess
    return est, lines


# A month is planned in blocks of establishments of about this many items (one row per invoice
# in memory while a block is planned): a month of 10⁹ items plans in ~20 blocks, never at once.
# Months up to this size are one block, planned exactly as before blocks existed.
PLAN_ITEMS = 50_000_000


def plan_month(
    rng: np.random.Generator,
    pop: Population,
    baskets: npt.NDArray[np.float64],
    year: int,
    month: int,
    items: int,
    chunk_items: int,
    numbering: Numbering,
    *,
    plan_items: int = PLAN_ITEMS,
) -> Iterator[ChunkTask]:
    """Chunks of one month holding exactly ``items`` items, lazily; advances ``numbering``.

    Past ``plan_items`` the establishments are cut into blocks of whole (municipality, CNAE)
    groups — the facts' leading sort keys, so blocks follow one another in sort order — each
    with its share of the month's NFC-e and NF-e items and its own random stream.
    """
    active = pop.first_month <= year * 12 + month - 1
    w65 = np.where(active, pop.w_nfce, 0.0)
    w55 = np.where(active, pop.w_nfe, 0.0)
    n65 = round(items * profiles.NFCE_ITEM_SHARE) if w65.sum() > 0 else 0
    blocks = max(1, math.ceil(items / plan_items))
    if blocks == 1:
        yield from _plan_block(
            rng, pop, baskets, (w65, w55), (n65, items - n65), (year, month), chunk_items,
            numbering, 0,
        )  # fmt: skip
        return
    # Cut at group boundaries where the cumulative expected items cross each block's share.
    expected = n65 * w65 / max(w65.sum(), 1e-300) + (items - n65) * w55 / max(w55.sum(), 1e-300)
    cum = np.cumsum(expected)
    cuts = np.searchsorted(cum, np.arange(1, blocks) * (cum[-1] / blocks), side="left")
    starts = np.flatnonzero(np.concatenate([[True], pop.group[1:] != pop.group[:-1]]))
    at = starts[np.searchsorted(starts, cuts, side="left").clip(0, len(starts) - 1)]
    bounds = [0, *sorted({int(e) for e in at if 0 < e < pop.size}), pop.size]
    pairs = list(itertools.pairwise(bounds))
    shares65 = _allot(n65, np.array([w65[a:b].sum() for a, b in pairs]))
    shares55 = _allot(items - n65, np.array([w55[a:b].sum() for a, b in pairs]))
    index = 0
    for stream, (a, b), b65, b55 in zip(
        rng.spawn(len(pairs)), pairs, shares65, shares55, strict=True
    ):
        inside = np.zeros(pop.size, np.bool_)
        inside[a:b] = True
        for task in _plan_block(
            stream, pop, baskets, (np.where(inside, w65, 0.0), np.where(inside, w55, 0.0)),
            (int(b65), int(b55)), (year, month), chunk_items, numbering, index,
        ):  # fmt: skip
            index = task.index + 1
            yield task


def _allot(total: int, weights: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """``total`` split in proportion to ``weights``, exactly (the remainder to the heaviest)."""
    if total == 0 or weights.sum() <= 0:
        return np.zeros(len(weights), np.int64)
    out: npt.NDArray[np.int64] = np.floor(total * weights / weights.sum()).astype(np.int64)
    out[int(np.argmax(weights))] += total - int(out.sum())
    return out


def _plan_block(
    rng: np.random.Generator,
    pop: Population,
    baskets: npt.NDArray[np.float64],
    weights: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
    counts: tuple[int, int],
    when: tuple[int, int],
    chunk_items: int,
    numbering: Numbering,
    first_index: int,
) -> list[ChunkTask]:
    """Invoices of the establishments with a weight: NFC-e then NF-e items, as counted."""
    (w65, w55), (n65, n55), (year, month) = weights, counts, when
    items = n65 + n55
    nfe = np.broadcast_to(np.asarray(NFE_LINES), (pop.size, 2))
    e65, l65 = _channel(rng, w65, baskets[pop.subclass], n65)
    e55, l55 = _channel(rng, w55, nfe, n55)
    est = np.concatenate([e65, e55])
    model = np.concatenate([np.full(len(e65), 65, np.int16), np.full(len(e55), 55, np.int16)])
    lines = np.concatenate([l65, l55])
    local = local_seconds(rng, year, month, model == 65)

    # nNF: each establishment numbers its NF-e and its NFC-e in time order, after last month's.
    by = np.lexsort((local, model, est))
    e, m = est[by], model[by]
    starts = np.concatenate([[True], (e[1:] != e[:-1]) | (m[1:] != m[:-1])])
    idx = np.arange(len(by))
    rank = idx - np.maximum.accumulate(np.where(starts, idx, 0))
    nnf = np.empty(len(by), dtype=np.int64)
    nnf[by] = np.where(m == 65, numbering.last65[e], numbering.last55[e]) + rank + 1
    numbering.last55 += np.bincount(est[model == 55], minlength=pop.size)
    numbering.last65 += np.bincount(est[model == 65], minlength=pop.size)

    # The facts' order: (municipality, CNAE) group, then time; cut it into runs of ~chunk_items.
    order = np.lexsort((nnf, model, est, local, pop.group[est]))
    est, model, lines, local, nnf = est[order], model[order], lines[order], local[order], nnf[order]
    n_chunks = max(1, math.ceil(items / chunk_items))
    cum = np.cumsum(lines)
    targets = np.arange(1, n_chunks) * (items / n_chunks)
    bounds = [0, *np.searchsorted(cum, targets, side="left").tolist(), len(est)]
    return [
        ChunkTask(
            year=year,
            month=month,
            index=first_index + i,
            est=est[a:b],
            model=model[a:b],
            lines=lines[a:b],
            local=local[a:b],
            nnf=nnf[a:b],
        )
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
        if b > a
    ]
