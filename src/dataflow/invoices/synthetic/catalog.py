"""The reference code lists as numpy arrays the generator indexes: NCM, CNAE, CFOP, geography."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dataflow.invoices.reference import ReferenceData
from dataflow.invoices.synthetic import profiles
from dataflow.invoices.synthetic.text import Chars, from_strings

__all__ = ["Catalog", "build_catalog"]


@dataclass(frozen=True, slots=True)
class Catalog:
    # NCM items (8 digits) with their chapter, unit of trade, base price (centavos), ICMS rate (%)
    ncm: Chars
    ncm_chapter: npt.NDArray[np.int16]
    ncm_unit: npt.NDArray[np.int8]
    ncm_price: npt.NDArray[np.float64]
    ncm_rate: npt.NDArray[np.int16]
    # Assortments: pool p is pool_items[pool_start[p] : pool_start[p] + pool_len[p]] (NCM indices)
    pool_items: npt.NDArray[np.int32]
    pool_start: npt.NDArray[np.int64]
    pool_len: npt.NDArray[np.int64]
    # CNAE subclasses, sorted by code, with what the generator needs about each
    subclasses: tuple[str, ...]
    sub_code: npt.NDArray[np.int64]
    sub_weight: npt.NDArray[np.float64]  # probability that a taxpayer has this main activity
    sub_size: npt.NDArray[np.float64]  # odds multiplier of being big
    sub_kind: npt.NDArray[np.int8]
    sub_pool: npt.NDArray[np.int32]
    sub_fuel: npt.NDArray[np.bool_]
    sub_basket: npt.NDArray[np.float64]  # (n, 2): NFC-e basket size (median, sigma)
    # States in IBGE order: abbreviation, cUF, capital; MG municipalities with their size proxy
    ufs: tuple[str, ...]
    uf_code: npt.NDArray[np.int16]
    uf_capital: npt.NDArray[np.int64]
    mg_codes: npt.NDArray[np.int64]
    mg_population: npt.NDArray[np.float64]

    def uf_index(self, uf: str) -> int:
        return self.ufs.index(uf)


def _check(ref: ReferenceData) -> None:
    known = {code for code, _ in ref.cfop}
    missing = sorted(set(profiles.CFOPS) - known)
    if missing:
        raise ValueError(f"CFOPs {missing} are not in datasets/cfop.csv")
    ufs = {s.uf for s in ref.states}
    for table in (profiles.RECIPIENT_STATE_WEIGHTS, profiles.ISSUER_STATE_WEIGHTS):
        unknown = sorted(set(table) - ufs)
        if unknown:
            raise ValueError(f"UFs {unknown} are not in datasets/br_states.csv")
    if not ref.municipalities or any(m.population <= 0 for m in ref.municipalities):
        raise ValueError("every MG municipality needs a positive population proxy")


def build_catalog(ref: ReferenceData, rng: np.random.Generator) -> Catalog:
    """Arrays over the reference data; ``rng`` only draws each NCM item's base price."""
    _check(ref)
    ncm_codes = sorted(code for code, _ in ref.ncm)
    chapter = np.array([int(c[:2]) for c in ncm_codes], dtype=np.int16)
    unit_of_chapter = {ch: profiles.chapter_unit(ch) for ch in set(chapter.tolist())}
    base_brl = np.array([profiles.PRICE_BRL.get(int(ch), 30.0) for ch in chapter])
    price = np.round(base_brl * 100 * rng.lognormal(0.0, 0.8, len(chapter)), 0)
    rate = np.array([profiles.ICMS_CHAPTER_RATES.get(int(ch), 18) for ch in chapter], np.int16)

    subs = sorted(e.code for e in ref.cnae_level("subclass"))
    divisions = [s[:2] for s in subs]
    per_division: dict[str, int] = {}
    for d in divisions:
        per_division[d] = per_division.get(d, 0) + 1
    sub_weight = np.array([profiles.division_weight(d) / per_division[d] for d in divisions])
    sub_weight = sub_weight * rng.lognormal(0.0, 1.0, len(subs))  # some activities are common
    shops = [profiles.shop_weight(s) for s in subs]
    sub_weight = np.array(
        [w if sw is None else sw for w, sw in zip(sub_weight, shops, strict=True)]
    )
    sub_weight /= sub_weight.sum()

    pools: dict[tuple[int, ...], int] = {}
    chunks: list[npt.NDArray[np.int32]] = []
    sub_pool = np.empty(len(subs), dtype=np.int32)
    for i, code in enumerate(subs):
        chapters = profiles.ncm_chapters_for(code)
        key = tuple(chapters) if chapters is not None else ()
        if key not in pools:
            items = (
                np.flatnonzero(np.isin(chapter, key)) if key else np.arange(len(ncm_codes))
            ).astype(np.int32)
            if len(items) == 0:
                raise ValueError(f"CNAE {code}: no NCM item in chapters {key}")
            pools[key] = len(chunks)
            chunks.append(items)
        sub_pool[i] = pools[key]
    pool_len = np.array([len(c) for c in chunks], dtype=np.int64)
    states = sorted(ref.states, key=lambda s: s.code)
    mg = sorted(ref.municipalities, key=lambda m: m.code)
    return Catalog(
        ncm=from_strings(ncm_codes, 8),
        ncm_chapter=chapter,
        ncm_unit=np.array([unit_of_chapter[int(c)] for c in chapter], dtype=np.int8),
        ncm_price=price,
        ncm_rate=rate,
        pool_items=np.concatenate(chunks),
        pool_start=np.concatenate([[0], np.cumsum(pool_len)[:-1]]).astype(np.int64),
        pool_len=pool_len,
        subclasses=tuple(subs),
        sub_code=np.array([int(s) for s in subs], dtype=np.int64),
        sub_weight=sub_weight,
        sub_size=np.array([profiles.size_factor(s) for s in subs]),
        sub_kind=np.array([profiles.kind_of(d) for d in divisions], dtype=np.int8),
        sub_pool=sub_pool,
        sub_fuel=np.array([s.startswith("4731") for s in subs]),
        sub_basket=np.array([profiles.basket(s) for s in subs], dtype=np.float64),
        ufs=tuple(s.uf for s in states),
        uf_code=np.array([int(s.code) for s in states], dtype=np.int16),
        uf_capital=np.array([int(s.capital) for s in states], dtype=np.int64),
        mg_codes=np.array([int(m.code) for m in mg], dtype=np.int64),
        mg_population=np.array([m.population for m in mg], dtype=np.float64),
    )
