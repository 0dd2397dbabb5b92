"""One chunk of planned invoices → the items and invoice facts, as Arrow tables in sort order.

Everything is vectorized over invoices or items; the only Python loops run over columns, digit
positions or a handful of categories.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from dataflow.invoices.checkdigits import access_key_check_digits_array
from dataflow.invoices.schema import FACT_SCHEMA, INVOICE_SCHEMA
from dataflow.invoices.synthetic import profiles
from dataflow.invoices.synthetic.catalog import Catalog
from dataflow.invoices.synthetic.columns import cents_to_money, local_to_instants, timestamps
from dataflow.invoices.synthetic.plan import ChunkTask
from dataflow.invoices.synthetic.population import Population
from dataflow.invoices.synthetic.profiles import Kind
from dataflow.invoices.synthetic.text import ascii_digits, fixed_width_strings, from_strings

__all__ = ["ChunkResult", "World", "build_chunk"]

# Operations (the nature of an invoice), which decide CFOP, recipient and ICMS.
CONSUMER, INTRA, INTER, EXPORT, TRANSFER, RETURN = range(6)
_CFOP = {code: i for i, code in enumerate(profiles.CFOPS)}
_NO_OWN_ICMS = [_CFOP[c] for c in ("5405", "5656", "5151", "5152", "7101", "7102")]


@dataclass(frozen=True, slots=True)
class World:
    """What every worker needs: the seed, the code lists and the issuers."""

    seed: int
    catalog: Catalog
    population: Population


@dataclass(frozen=True, slots=True)
class ChunkResult:
    facts: pa.Table
    invoices: pa.Table
    nfce_invoices: int
    out_of_state_items: int
    alnum_invoices: int


def _operations(
    rng: np.random.Generator,
    pop: Population,
    est: npt.NDArray[np.int64],
    nfe: npt.NDArray[np.bool_],
) -> npt.NDArray[np.int64]:
    u = rng.random(len(est))
    kind = pop.kind[est]
    op = np.select(
        [u < 0.65, u < 0.90, u < 0.92, u < 0.97], [INTRA, INTER, EXPORT, TRANSFER], RETURN
    )
    exporter = (kind == Kind.PRODUCER) | (kind == Kind.TRADE)
    op = np.where((op == EXPORT) & ~exporter, INTRA, op)
    op = np.where((op == TRANSFER) & ~pop.multi[est], INTRA, op)
    op = np.where(pop.out_of_state[est], np.where(u < 0.95, INTER, RETURN), op)
    return np.where(nfe, op, CONSUMER)


def _recipients(
    rng: np.random.Generator,
    cat: Catalog,
    pop: Population,
    est: npt.NDArray[np.int64],
    op: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """Recipient UF (index into ``cat.ufs``; ``len(cat.ufs)`` is ``EX``, abroad)."""
    mg = cat.uf_index("MG")
    w = np.array([profiles.RECIPIENT_STATE_WEIGHTS.get(u, 0.0) for u in cat.ufs])
    w[mg] = 0.0
    other = rng.choice(len(cat.ufs), len(est), p=w / w.sum())
    returned_out = (op == RETURN) & (rng.random(len(est)) < 0.4)
    out = np.where((op == INTER) | returned_out, other, mg)
    out = np.where(op == EXPORT, len(cat.ufs), out)
    return np.where(pop.out_of_state[est], mg, out)


def _cfops(
    rng: np.random.Generator,
    kind: npt.NDArray[np.int8],
    fuel: npt.NDArray[np.bool_],
    op: npt.NDArray[np.int64],
    intrastate: npt.NDArray[np.bool_],
) -> npt.NDArray[np.int64]:
    u = rng.random(len(op))
    prod = kind == Kind.PRODUCER
    c = _CFOP
    consumer = np.where(fuel, c["5656"], np.where(u < 0.72, c["5102"], c["5405"]))
    intra = np.where(
        prod,
        np.where(u < 0.85, c["5101"], c["5401"]),
        np.select([u < 0.70, u < 0.98], [c["5102"], c["5405"]], c["5910"]),
    )
    inter = np.where(
        prod,
        np.where(u < 0.9, c["6101"], c["6401"]),
        np.select([u < 0.75, u < 0.85, u < 0.95], [c["6102"], c["6403"], c["6108"]], c["6910"]),
    )
    returned = np.where(
        intrastate, np.where(prod, c["5201"], c["5202"]), np.where(prod, c["6201"], c["6202"])
    )
    return np.select(
        [op == CONSUMER, op == INTRA, op == INTER, op == EXPORT, op == TRANSFER],
        [
            consumer,
            intra,
            inter,
            np.where(prod, c["7101"], c["7102"]),
            np.where(prod, c["5151"], c["5152"]),
        ],
        returned,
    )


def _quantities(
    rng: np.random.Generator,
    unit: npt.NDArray[np.int8],
    chapter: npt.NDArray[np.int16],
    nfe: npt.NDArray[np.bool_],
) -> npt.NDArray[np.float64]:
    n = len(unit)
    bulk = (unit == 1) | (unit == 2)  # KG, LT
    fuel = (chapter == 27) & ~nfe
    counted = np.where(nfe, np.ceil(rng.lognormal(np.log(8.0), 1.3, n)), rng.geometric(0.6, n))
    weighed = np.where(nfe, rng.lognormal(np.log(150.0), 1.5, n), rng.lognormal(0.0, 0.7, n))
    weighed = np.where(fuel, rng.lognormal(np.log(35.0), 0.5, n), weighed)
    q = np.where(bulk, np.maximum(np.round(weighed, 3), 0.001), counted)
    return q.astype(np.float64)


def build_chunk(world: World, t: ChunkTask) -> ChunkResult:
    cat, pop = world.catalog, world.population
    rng = np.random.default_rng([world.seed, 3, t.year, t.month, t.index])
    n = len(t.est)
    # Invoices arrive in the facts' sort order, with their times and numbers (plan.py).
    est = t.est.astype(np.int64)
    model, lines, local, nnf = t.model, t.lines, t.local, t.nnf
    nfce = model == 65
    tp_emis = np.where(nfce & (rng.random(n) < 0.015), 9, 1)  # NFC-e offline contingency

    body = np.empty((n, 43), dtype=np.uint8)
    body[:, 0:2] = ascii_digits(cat.uf_code[pop.uf[est]].astype(np.int64), 2)
    body[:, 2:6] = np.frombuffer(f"{t.year % 100:02d}{t.month:02d}".encode(), dtype=np.uint8)
    body[:, 6:20] = pop.cnpj[est]
    body[:, 20:22] = ascii_digits(model.astype(np.int64), 2)
    body[:, 22:25] = np.frombuffer(b"001", dtype=np.uint8)
    body[:, 25:34] = ascii_digits(nnf, 9)
    body[:, 34] = tp_emis + 48
    body[:, 35:43] = ascii_digits(rng.integers(0, 100_000_000, n), 8)
    keys = np.column_stack([body, access_key_check_digits_array(body)])

    op = _operations(rng, pop, est, ~nfce)
    recipient = _recipients(rng, cat, pop, est, op)
    instants = local_to_instants(t.year, t.month, local)

    # Items: one row per line, in invoice order (so already sorted).
    inv = np.repeat(np.arange(n), lines)
    it_est, it_nfe = est[inv], ~nfce[inv]
    pool = cat.sub_pool[pop.subclass[it_est]]
    size = cat.pool_len[pool]
    # Each establishment has its own best sellers: a skewed draw from an offset in its pool.
    k = (rng.random(len(inv)) ** 3 * size).astype(np.int64)
    ncm = cat.pool_items[cat.pool_start[pool] + (pop.ncm_offset[it_est] + k) % size]
    chapter, unit = cat.ncm_chapter[ncm], cat.ncm_unit[ncm]
    it_recipient = recipient[inv]
    intrastate = it_recipient == pop.uf[it_est]
    cfop = _cfops(rng, pop.kind[it_est], cat.sub_fuel[pop.subclass[it_est]], op[inv], intrastate)

    qty = _quantities(rng, unit, chapter, it_nfe)
    price = cat.ncm_price[ncm] * rng.lognormal(0.0, 0.15, len(inv)) * np.where(it_nfe, 0.7, 1.0)
    value = np.maximum(np.round(qty * price), 1).astype(np.int64)
    oos = pop.out_of_state[it_est]
    to_12 = np.isin(it_recipient, [cat.uf_index(u) for u in profiles.INTERSTATE_12])
    rate = np.where(intrastate & ~oos, cat.ncm_rate[ncm], np.where(oos | to_12, 12, 7))
    rate = np.where(np.isin(cfop, _NO_OWN_ICMS), 0, rate)
    icms = (value * rate + 50) // 100

    recipients = from_strings((*cat.ufs, "EX"), 2)
    cnpj = pop.cnpj[it_est]
    facts = pa.Table.from_arrays(
        [
            fixed_width_strings(keys[inv]),
            pa.array(model[inv], pa.int16()),
            timestamps(instants[inv]),
            fixed_width_strings(cnpj),
            fixed_width_strings(cnpj[:, :8]),
            fixed_width_strings(from_strings(cat.subclasses, 7)[pop.subclass[it_est]]),
            fixed_width_strings(from_strings(cat.ufs, 2)[pop.uf[it_est]]),
            fixed_width_strings(ascii_digits(pop.municipality[it_est], 7)),
            fixed_width_strings(recipients[it_recipient]),
            fixed_width_strings(from_strings(profiles.CFOPS, 4)[cfop]),
            fixed_width_strings(cat.ncm[ncm]),
            pa.array(qty, pa.float64()),
            fixed_width_strings(from_strings(profiles.UNITS, 2)[unit]),
            cents_to_money(value),
            cents_to_money(icms),
        ],
        schema=FACT_SCHEMA,
    )

    starts = np.concatenate([[0], np.cumsum(lines)[:-1]])
    totals = np.add.reduceat(value, starts)
    by_issuer = np.lexsort((nnf, local, pop.cnpj_rank[est]))
    invoices = pa.Table.from_arrays(
        [
            fixed_width_strings(keys[by_issuer]),
            pa.array(model[by_issuer], pa.int16()),
            timestamps(instants[by_issuer]),
            fixed_width_strings(pop.cnpj[est[by_issuer]]),
            cents_to_money(totals[by_issuer]),
            fixed_width_strings(np.broadcast_to(np.frombuffer(b"authorized", np.uint8), (n, 10))),
        ],
        schema=INVOICE_SCHEMA,
    )
    return ChunkResult(
        facts=facts,
        invoices=invoices,
        nfce_invoices=int(nfce.sum()),
        out_of_state_items=int(oos.sum()),
        alnum_invoices=int(pop.alnum[est].sum()),
    )
