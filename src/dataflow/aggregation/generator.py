"""Deterministic synthetic MG NF-e / NFC-e items with a realistic shape.

Taxpayers (CNPJ roots) have Zipf-like sizes: a few giants with many establishments, a long tail of
one-shop taxpayers, so that disclosure control has thin and dominated cells to protect.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataflow.aggregation.checkdigits import access_key_check_digit, cnpj_check_digits
from dataflow.aggregation.factstore import FactStore
from dataflow.aggregation.reference import ReferenceData
from dataflow.aggregation.schema import FACT_SCHEMA, INVOICE_SCHEMA, MONEY, TZ

__all__ = ["GenerationSummary", "Month", "cents_to_money", "generate", "parse_months"]

_UFS = ("SP", "RJ", "ES", "BA", "GO", "DF", "PR", "SC", "RS", "MT", "MS", "TO", "PE", "CE")
_SEASON = np.array([0.9, 0.85, 0.95, 0.95, 1.0, 0.98, 1.0, 1.02, 1.0, 1.05, 1.15, 1.4])
_BH = "3106200"  # Belo Horizonte: the capital gets the largest weight


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


@dataclass(frozen=True, slots=True)
class _Population:
    est_cnpj: np.ndarray  # establishment CNPJ (str)
    est_root: np.ndarray
    est_cnae: np.ndarray
    est_muni: np.ndarray
    est_retail: np.ndarray  # bool
    est_weight: np.ndarray  # probability of issuing an invoice
    n_taxpayers: int


def _population(rng: np.random.Generator, ref: ReferenceData, n_items: int) -> _Population:
    munis = np.array([m.code for m in ref.municipalities])
    muni_w = rng.lognormal(0.0, 1.3, len(munis))
    muni_w[munis == _BH] = muni_w.max() * 8
    muni_w /= muni_w.sum()

    subclasses = np.array([e.code for e in ref.cnae_level("subclass")])
    retail = np.char.startswith(subclasses, "47")
    sub_w = np.where(retail, 6.0, 1.0) * rng.lognormal(0.0, 1.0, len(subclasses))
    sub_w /= sub_w.sum()

    n_tax = max(60, n_items // 150)
    roots = np.unique(rng.integers(10_000_000, 99_999_999, n_tax * 2))[:n_tax]
    rng.shuffle(roots)
    n_tax = len(roots)
    rank = np.arange(1, n_tax + 1)
    tax_w = 1.0 / rank**1.15  # Zipf-like: a few giants, a long tail
    tax_cnae = rng.choice(subclasses, n_tax, p=sub_w)
    n_est = np.minimum(1 + (tax_w / tax_w[0] * 60).astype(int), 80)

    est_tax = np.repeat(np.arange(n_tax), n_est)
    branch = np.concatenate([np.arange(1, k + 1) for k in n_est])
    home = rng.choice(len(munis), n_tax, p=muni_w)
    est_muni_idx = np.where(
        branch == 1, home[est_tax], rng.choice(len(munis), len(est_tax), p=muni_w)
    )
    est_root = np.array([f"{r:08d}" for r in roots])[est_tax]
    bases = [f"{r}{b:04d}" for r, b in zip(est_root, branch, strict=True)]
    est_cnpj = np.array([b + cnpj_check_digits(b) for b in bases])
    est_weight = tax_w[est_tax] / n_est[est_tax]
    est_weight /= est_weight.sum()
    est_cnae = tax_cnae[est_tax]
    return _Population(
        est_cnpj=est_cnpj,
        est_root=est_root,
        est_cnae=est_cnae,
        est_muni=munis[est_muni_idx],
        est_retail=np.char.startswith(est_cnae, "47"),
        est_weight=est_weight,
        n_taxpayers=n_tax,
    )


def cents_to_money(cents: np.ndarray) -> pa.Array:
    """Integer centavos → exact decimal128(18, 2), without a trip through float or Decimal."""
    c = np.ascontiguousarray(cents, dtype=np.int64)
    words = np.empty((len(c), 2), dtype=np.int64)
    words[:, 0] = c
    words[:, 1] = np.where(c < 0, -1, 0)  # two's-complement sign extension to 128 bits
    return pa.Array.from_buffers(MONEY, len(c), [None, pa.py_buffer(words.tobytes())])


def _money(values: np.ndarray) -> pa.Array:
    return cents_to_money(np.maximum(np.round(values * 100).astype(np.int64), 1))


def _month_tables(
    rng: np.random.Generator,
    ref_ncm: np.ndarray,
    pop: _Population,
    month: Month,
    n_items: int,
    serial_start: int,
) -> tuple[pa.Table, pa.Table]:
    # Invoices: establishment, model, item count; NFC-e carry fewer items than NF-e on average.
    est_n = len(pop.est_cnpj)
    n_inv_guess = max(1, n_items // 4)
    inv_est = rng.choice(est_n, n_inv_guess, p=pop.est_weight)
    retail = pop.est_retail[inv_est]
    model = np.where(retail & (rng.random(n_inv_guess) < 0.9), 65, 55).astype(np.int16)
    n_lines = 1 + rng.geometric(np.where(model == 65, 0.3, 0.22)) - 1
    n_lines = np.minimum(n_lines, 990)
    cum = np.cumsum(n_lines)
    n_inv = int(np.searchsorted(cum, n_items) + 1)
    if n_inv > n_inv_guess:  # too few: top up with single-item invoices
        extra = n_inv - n_inv_guess
        inv_est = np.concatenate([inv_est, rng.choice(est_n, extra, p=pop.est_weight)])
        model = np.concatenate([model, np.full(extra, 55, np.int16)])
        n_lines = np.concatenate([n_lines, np.ones(extra, np.int64)])
        cum = np.cumsum(n_lines)
        n_inv = int(np.searchsorted(cum, n_items) + 1)
    inv_est, model, n_lines = inv_est[:n_inv], model[:n_inv], n_lines[:n_inv].copy()
    n_lines[-1] -= int(n_lines.sum()) - n_items

    seconds = rng.integers(0, month.days * 86_400, n_inv)
    base = np.datetime64(month.first_day().isoformat(), "s")
    issued = (base + seconds.astype("timedelta64[s]")).astype("datetime64[us]")
    cnpj = pop.est_cnpj[inv_est]
    yymm = f"{month.year % 100:02d}{month.month:02d}"
    codes = rng.integers(0, 100_000_000, n_inv)
    keys = []
    for i in range(n_inv):
        body = f"31{yymm}{cnpj[i]}{model[i]:02d}001{serial_start + i:09d}1{codes[i]:08d}"
        keys.append(body + str(access_key_check_digit(body)))
    key_arr = np.array(keys)

    # Items
    item_inv = np.repeat(np.arange(n_inv), n_lines)
    item_model = model[item_inv]
    item_est = inv_est[item_inv]
    nfce = item_model == 65
    values = np.where(nfce, rng.lognormal(2.7, 1.0, n_items), rng.lognormal(6.0, 1.4, n_items))
    values = np.round(values, 2)
    interstate = (~nfce) & (rng.random(n_items) < 0.22)
    recipient = np.where(interstate, rng.choice(np.array(_UFS), n_items), "MG")
    cfop = np.where(nfce, "5102", np.where(interstate, "6102", "5102"))
    industry = ~pop.est_retail[item_est] & (rng.random(n_items) < 0.5)
    cfop = np.where(industry & ~nfce, np.where(interstate, "6101", "5101"), cfop)
    # Each establishment sells from its own slice of the NCM list: realistic concentration.
    slot = (item_est * 7919) % len(ref_ncm)
    ncm = ref_ncm[(slot + rng.integers(0, 40, n_items)) % len(ref_ncm)]
    qty = np.round(rng.gamma(1.5, 2.0, n_items) + 0.001, 3)
    icms = np.round(values * np.where(interstate, 0.12, 0.18), 2)

    ts_type = pa.timestamp("us", tz=TZ)
    # Wall-clock times in Sao Paulo, stored as instants.
    issued_arr = pc.assume_timezone(pa.array(issued, pa.timestamp("us")), TZ).cast(ts_type)
    item_values = _money(values)
    facts = pa.table(
        {
            "access_key": pa.array(key_arr[item_inv]),
            "model": pa.array(item_model, pa.int16()),
            "issued_at": issued_arr.take(pa.array(item_inv)),
            "issuer_cnpj": pa.array(cnpj[item_inv]),
            "issuer_root": pa.array(pop.est_root[item_est]),
            "issuer_cnae": pa.array(pop.est_cnae[item_est]),
            "issuer_uf": pa.array(np.full(n_items, "MG")),
            "issuer_municipality": pa.array(pop.est_muni[item_est]),
            "recipient_uf": pa.array(recipient),
            "cfop": pa.array(cfop),
            "ncm": pa.array(ncm),
            "quantity": pa.array(qty),
            "unit": pa.array(np.where(nfce, "UN", "KG")),
            "item_value": item_values,
            "icms_value": _money(icms),
        },
        schema=FACT_SCHEMA,
    )
    cents = np.maximum(np.round(values * 100).astype(np.int64), 1)
    inv_cents = np.bincount(item_inv, weights=cents, minlength=n_inv).astype(np.int64)
    invoices = pa.table(
        {
            "access_key": pa.array(key_arr),
            "model": pa.array(model, pa.int16()),
            "issued_at": issued_arr,
            "issuer_cnpj": pa.array(cnpj),
            "total_value": cents_to_money(inv_cents),
            "status": pa.array(np.full(n_inv, "authorized")),
        },
        schema=INVOICE_SCHEMA,
    )
    return facts, invoices


def _split(total: int, months: list[Month]) -> Iterator[tuple[Month, int]]:
    w = np.array([_SEASON[m.month - 1] for m in months])
    counts = np.floor(w / w.sum() * total).astype(int)
    counts[-1] += total - counts.sum()
    yield from zip(months, (int(c) for c in counts), strict=True)


def generate(
    store: FactStore,
    ref: ReferenceData,
    *,
    items: int,
    seed: int,
    months: list[Month],
    progress: Callable[[Month, int], None] | None = None,
) -> GenerationSummary:
    """Write ``items`` synthetic items spread over ``months``; same seed, same bytes."""
    if items < 1:
        raise ValueError("items must be positive")
    rng = np.random.default_rng(seed)
    pop = _population(rng, ref, items)
    ref_ncm = np.array([code for code, _ in ref.ncm])
    store.clear()
    invoices = 0
    serial = 1
    for month, n in _split(items, months):
        if n == 0:
            continue
        month_rng = np.random.default_rng([seed, month.year, month.month])
        facts, inv = _month_tables(month_rng, ref_ncm, pop, month, n, serial)
        serial += inv.num_rows
        invoices += inv.num_rows
        store.write_month(month.year, month.month, facts, inv)
        if progress:
            progress(month, n)
    return GenerationSummary(
        items=items,
        invoices=invoices,
        taxpayers=pop.n_taxpayers,
        establishments=len(pop.est_cnpj),
        months=len(months),
    )
