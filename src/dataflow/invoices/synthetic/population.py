"""Taxpayers and their establishments: Zipf-like sizes, CNPJs, activities and locations.

A taxpayer is a CNPJ root (8 characters); an establishment is a full CNPJ (root + 4-character order
+ 2 check digits). Sizes follow a Zipf law over ranks (a few giants, a long tail), and big retailers
run many shops, so disclosure control meets both dominated and thin cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dataflow.invoices.checkdigits import cnpj_check_digits_array
from dataflow.invoices.synthetic import profiles
from dataflow.invoices.synthetic.catalog import Catalog
from dataflow.invoices.synthetic.profiles import Kind
from dataflow.invoices.synthetic.text import Chars, ascii_digits

__all__ = [
    "ALNUM_FROM",
    "MG_ISSUERS",
    "OFFICIAL_EXAMPLE",
    "Population",
    "build_population",
    "default_taxpayers",
]

# Taxpayers (CNPJ roots) issuing NF-e/NFC-e in MG in a month: an ESTIMATE (datasets/README.md,
# "Monthly shape"): IBGE's CEMPRE counted 614,040 active local units in MG in 2019, about half of
# them in industry and trade (the ICMS taxpayers that issue NF-e/NFC-e), fewer CNPJ roots than
# establishments. A month of ~10⁹ items then averages ~4,000 items per issuer.
MG_ISSUERS = 250_000
ZIPF_EXPONENT = 1.07
HQ_CONCENTRATION = 1.1
# Alphanumeric CNPJs exist from July 2026 (NT Conjunta 2025.001): new, small taxpayers only.
ALNUM_FROM = 2026 * 12 + 6  # month index (year * 12 + month - 1) of 2026-07
OFFICIAL_EXAMPLE = "12ABC34501DE35"  # the NT's own example, issued by one synthetic shop
_ALNUM = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class Population:
    """Establishments, sorted by (municipality, CNAE, CNPJ) — the facts' sort order."""

    n_taxpayers: int
    cnpj: Chars  # (E, 14)
    taxpayer: npt.NDArray[np.int32]
    municipality: npt.NDArray[np.int64]  # IBGE code
    uf: npt.NDArray[np.int8]  # index into Catalog.ufs
    subclass: npt.NDArray[np.int32]  # index into Catalog.subclasses
    kind: npt.NDArray[np.int8]
    multi: npt.NDArray[np.bool_]  # the taxpayer has other establishments
    first_month: npt.NDArray[np.int64]  # month index from which it issues
    w_nfce: npt.NDArray[np.float64]  # share of the taxpayer's NFC-e items (0 if not retail)
    w_nfe: npt.NDArray[np.float64]
    ncm_offset: npt.NDArray[np.int64]  # where its assortment starts in its NCM pool
    group: npt.NDArray[np.int64]  # (municipality, CNAE) group number, increasing
    cnpj_rank: npt.NDArray[np.int64]  # rank of the CNPJ in text order
    alnum: npt.NDArray[np.bool_]
    out_of_state: npt.NDArray[np.bool_]

    @property
    def size(self) -> int:
        return len(self.taxpayer)


def _numeric_roots(rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
    roots = np.unique(rng.integers(1_000_000, 100_000_000, n + n // 10 + 16))
    while len(roots) < n:  # practically never: collisions among 10⁸ values
        roots = np.unique(np.concatenate([roots, rng.integers(1_000_000, 100_000_000, n)]))
    return rng.permutation(roots)[:n]


def _alnum_roots(rng: np.random.Generator, n: int) -> Chars:
    """``n`` distinct 8-character roots of ``0-9A-Z`` with at least one letter each."""
    chars = _ALNUM[rng.integers(0, 36, (n, 8))]
    no_letter = (chars < 65).all(axis=1)
    chars[no_letter, rng.integers(0, 8, int(no_letter.sum()))] = _ALNUM[
        rng.integers(10, 36, int(no_letter.sum()))
    ]
    chars[0] = np.frombuffer(OFFICIAL_EXAMPLE[:8].encode(), dtype=np.uint8)
    as_text = chars.view("S8").ravel()
    _, first = np.unique(as_text, return_index=True)
    dup = np.setdiff1d(np.arange(n), first)
    while len(dup):  # redraw the rare duplicates (never the official example, row 0)
        chars[dup] = _ALNUM[rng.integers(10, 36, (len(dup), 8))]
        _, first = np.unique(chars.view("S8").ravel(), return_index=True)
        dup = np.setdiff1d(np.arange(n), first)
    return chars


def _ranks(score: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    rank = np.empty(len(score), dtype=np.float64)
    rank[np.argsort(-score, kind="stable")] = np.arange(1, len(score) + 1)
    return rank


def default_taxpayers(items: int) -> int:
    """About 120 items per taxpayer, up to the active issuers of a real month (``MG_ISSUERS``)."""
    return int(np.clip(items // 120, 120, MG_ISSUERS))


def build_population(
    rng: np.random.Generator, cat: Catalog, items: int, taxpayers: int | None = None
) -> Population:
    n_tax = taxpayers if taxpayers is not None else default_taxpayers(items)
    if n_tax < 2:
        raise ValueError(f"taxpayers must be at least 2, got {n_tax}")
    sub = rng.choice(len(cat.subclasses), n_tax, p=cat.sub_weight).astype(np.int32)
    kind = cat.sub_kind[sub]
    retail = kind == Kind.RETAIL
    # Zipf over ranks; big sectors are more likely to rank high.
    rank = _ranks(np.log(cat.sub_size[sub]) + rng.gumbel(0.0, 1.2, n_tax))
    w = rank**-ZIPF_EXPONENT
    # Weights are shares of items: a shop's invoices × its basket size (long trolleys, one-line fuel
    # sales), so Zipf ranks count customers rather than lines.
    baskets = cat.sub_basket[sub]
    w_nfce = np.where(retail, w * profiles.basket_mean(baskets[:, 0], baskets[:, 1]), 0.0)
    w_nfe = np.where(retail, 0.12 * w, w)
    out_of_state = ~retail & (rng.random(n_tax) < 0.10)
    alnum = (rank > n_tax / 2) & ~out_of_state & (rng.random(n_tax) < 0.03)
    tail = np.flatnonzero((rank > n_tax / 2) & ~out_of_state)
    alnum[tail[np.argmin(rank[tail])]] = True  # at least one, carrying the official example

    # Establishments: giant retailers run hundreds of shops, giant industries a few dozen plants,
    # and nobody has more shops than its volume can keep busy.
    share = profiles.NFCE_ITEM_SHARE * w_nfce / max(w_nfce.sum(), 1e-300) + (
        1 - profiles.NFCE_ITEM_SHARE
    ) * w_nfe / max(w_nfe.sum(), 1e-300)
    reach = np.where(retail, 300.0, 25.0) * (w / w.max()) ** 0.75
    n_est = np.clip(np.round(reach), 1, None).astype(np.int64)
    n_est = np.minimum(n_est, np.maximum(1, (items * share) // 400).astype(np.int64))
    n_est[out_of_state | alnum] = 1

    roots = np.empty((n_tax, 8), dtype=np.uint8)
    numeric = np.flatnonzero(~alnum)
    roots[numeric] = ascii_digits(_numeric_roots(rng, len(numeric)), 8)
    alnum_idx = np.flatnonzero(alnum)
    order = np.argsort(rank[alnum_idx], kind="stable")  # the biggest one gets the example
    roots[alnum_idx[order]] = _alnum_roots(rng, len(alnum_idx))

    est_tax = np.repeat(np.arange(n_tax, dtype=np.int32), n_est)
    start = np.concatenate([[0], np.cumsum(n_est)[:-1]])
    branch = np.arange(len(est_tax)) - start[est_tax] + 1
    bases = np.column_stack([roots[est_tax], ascii_digits(branch, 4)])
    example = start[alnum_idx[order[0]]]
    bases[example, 8:] = np.frombuffer(OFFICIAL_EXAMPLE[8:12].encode(), dtype=np.uint8)
    cnpj = np.column_stack([bases, cnpj_check_digits_array(bases)])

    where, uf = _locate(rng, cat, est_tax, branch, out_of_state, retail)
    split = rng.lognormal(0.0, 0.6, len(est_tax)) * np.where(branch == 1, 1.5, 1.0)
    split /= np.bincount(est_tax, weights=split)[est_tax]
    est_nfce = w_nfce[est_tax] * split
    # Consumers buy where they live: each municipality's NFC-e volume follows its population,
    # shared among its shops by their (Zipf) weights — giants still dominate, no town is empty.
    in_mg = where >= 0
    local = np.bincount(where[in_mg], weights=est_nfce[in_mg], minlength=len(cat.mg_codes))
    pop_share = cat.mg_population / cat.mg_population.sum()
    scale = np.divide(pop_share, local, out=np.zeros_like(local), where=local > 0)
    est_nfce = np.where(in_mg, est_nfce * scale[np.maximum(where, 0)], 0.0)
    muni = np.where(in_mg, cat.mg_codes[np.maximum(where, 0)], cat.uf_capital[uf])

    est_sub = sub[est_tax]
    text = cnpj.view("S14").ravel()
    sort = np.lexsort((text, cat.sub_code[est_sub], muni))
    muni_s, code_s = muni[sort], cat.sub_code[est_sub][sort]
    new_group = np.concatenate([[True], (muni_s[1:] != muni_s[:-1]) | (code_s[1:] != code_s[:-1])])
    cnpj_rank = np.empty(len(sort), dtype=np.int64)
    cnpj_rank[np.argsort(text[sort], kind="stable")] = np.arange(len(sort))
    t = est_tax[sort]
    return Population(
        n_taxpayers=n_tax,
        cnpj=np.ascontiguousarray(cnpj[sort]),
        taxpayer=t,
        municipality=muni_s,
        uf=uf[sort],
        subclass=est_sub[sort],
        kind=kind[t],
        multi=n_est[t] > 1,
        first_month=np.where(alnum[t], ALNUM_FROM, 0).astype(np.int64),
        w_nfce=est_nfce[sort],
        w_nfe=(w_nfe[est_tax] * split)[sort],
        ncm_offset=rng.integers(0, 2**31, len(sort)),
        group=np.cumsum(new_group) - 1,
        cnpj_rank=cnpj_rank,
        alnum=alnum[t],
        out_of_state=out_of_state[t],
    )


def _systematic(
    rng: np.random.Generator,
    who: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
    *,
    one_each: bool = False,
) -> npt.NDArray[np.int64]:
    """Indices into ``weights`` for ``who``, by systematic sampling proportional to ``weights``.

    Each category gets the floor or the ceiling of its expected count, handed to ``who`` in random
    order; with ``one_each`` (and enough of ``who``) every category gets one first.
    """
    n, k = len(who), len(weights)
    first = np.arange(k) if one_each and n >= k else np.empty(0, dtype=np.int64)
    m = n - len(first)
    positions = (np.arange(m) + rng.random()) / max(m, 1)
    cum = np.cumsum(weights / weights.sum())
    picks = np.minimum(np.searchsorted(cum, positions, side="right"), k - 1)
    out = np.empty(n, dtype=np.int64)
    out[rng.permutation(n)] = np.concatenate([first, picks])
    return out


def _locate(
    rng: np.random.Generator,
    cat: Catalog,
    est_tax: npt.NDArray[np.int32],
    branch: npt.NDArray[np.int64],
    out_of_state: npt.NDArray[np.bool_],
    retail: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int8]]:
    """Municipality (index into ``cat.mg_codes``, or -1 abroad) and UF of each establishment.

    Shops follow people: retail head offices are spread proportionally to population, at least
    one per municipality (every town has a shop) once there are enough of them. Other
    businesses concentrate a little more (population to the power 1.1: Belo Horizonte holds ~14%
    of the people, ~20% of those head offices). Branches follow population at random; out-of-state
    issuers sit in their state's capital.
    """
    n_tax = len(out_of_state)
    p = cat.mg_population / cat.mg_population.sum()
    home = np.full(n_tax, -1, dtype=np.int64)
    shops = np.flatnonzero(~out_of_state & retail)
    others = np.flatnonzero(~out_of_state & ~retail)
    home[shops] = _systematic(rng, shops, p, one_each=True)
    home[others] = _systematic(rng, others, p**HQ_CONCENTRATION)
    weights = np.array([profiles.ISSUER_STATE_WEIGHTS.get(u, 0.0) for u in cat.ufs])
    oos = np.flatnonzero(out_of_state)
    state = rng.choice(len(cat.ufs), len(oos), p=weights / weights.sum())
    tax_uf = np.full(n_tax, cat.uf_index("MG"), dtype=np.int8)
    tax_uf[oos] = state

    muni = home[est_tax]
    branches = np.flatnonzero(branch > 1)
    muni[branches] = rng.choice(len(p), len(branches), p=p)
    return muni, tax_uf[est_tax]
