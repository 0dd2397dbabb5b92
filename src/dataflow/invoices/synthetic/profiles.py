"""Economic profiles behind the synthetic data: who sells what, how, to whom, at what price.

These are modelling assumptions, not official figures; they only shape the synthetic facts. Codes
they name (CFOP, NCM chapters, CNAE divisions, UFs) are checked against ``datasets/`` at start-up.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import numpy.typing as npt

__all__ = [
    "CFOPS",
    "DEFAULT_BASKET",
    "DIVISION_WEIGHTS",
    "HOUR_WEIGHTS",
    "ICMS_CHAPTER_RATES",
    "INTERSTATE_12",
    "ISSUER_STATE_WEIGHTS",
    "NCM_CHAPTERS",
    "NFCE_BASKETS",
    "NFCE_ITEM_SHARE",
    "OTHER_DIVISION_WEIGHT",
    "PRICE_BRL",
    "RECIPIENT_STATE_WEIGHTS",
    "SEASON",
    "SHOP_WEIGHTS",
    "SIZE_FACTORS",
    "UNITS",
    "WEEKDAY_WEIGHTS",
    "Kind",
    "basket",
    "basket_mean",
    "chapter_unit",
    "division_weight",
    "kind_of",
    "ncm_chapters_for",
    "shop_weight",
    "size_factor",
]


class Kind(IntEnum):
    """What an issuer does, which decides its invoices' model, CFOPs and goods."""

    RETAIL = 0  # CNAE 47 and 56: NFC-e to consumers, some NF-e to businesses
    TRADE = 1  # CNAE 45 and 46: resale to businesses (NF-e)
    PRODUCER = 2  # CNAE 01-33: own production (NF-e, CFOP x101)
    OTHER = 3  # services that occasionally sell goods (NF-e)


def kind_of(division: str) -> Kind:
    d = int(division)
    if d in (47, 56):
        return Kind.RETAIL
    if d in (45, 46):
        return Kind.TRADE
    if d <= 33:
        return Kind.PRODUCER
    return Kind.OTHER


# Share of MG taxpayers issuing NF-e/NFC-e by CNAE division (relative; unnamed divisions get
# _OTHER_DIVISION_WEIGHT). Retail and wholesale dominate the count of issuers.
DIVISION_WEIGHTS: dict[str, float] = {
    "47": 10.0,
    "56": 9.0,
    "46": 12.0,
    "45": 6.0,
    "01": 3.0,
    "02": 0.3,
    "03": 0.1,
    "07": 0.2,
    "08": 0.5,
    "10": 4.0,
    "11": 0.8,
    "14": 2.0,
    "15": 0.8,
    "16": 0.8,
    "18": 0.5,
    "20": 0.8,
    "22": 1.0,
    "23": 1.5,
    "24": 0.6,
    "25": 2.0,
    "28": 0.8,
    "29": 0.5,
    "31": 1.0,
    "32": 0.6,
}
OTHER_DIVISION_WEIGHT = 0.4

# The common kinds of shop, by CNAE prefix: their share of taxpayers (same scale as above),
# replacing the division's even split (supermarkets, corner shops, pharmacies, fuel, clothes...).
SHOP_WEIGHTS: dict[str, float] = {
    "4711": 3.0, "4712": 7.0, "4721": 3.0, "4722": 1.0, "4723": 0.5, "4729": 1.0, "4731": 2.0,
    "4744": 3.0, "4753": 1.0, "4754": 1.5, "4755": 1.0, "4757": 0.5, "4761": 0.5, "4763": 0.5,
    "4771": 3.0, "4772": 1.0, "4781": 5.0, "4782": 1.5, "4789": 3.0, "5611": 6.0, "5612": 1.0,
    "5620": 1.0,
}  # fmt: skip

# Sectors whose firms tend to be big (mining, steel, cars, fuel, supermarkets, pharmacy chains):
# a multiplier on the odds of a high Zipf rank. Keys are CNAE prefixes (longest match wins).
SIZE_FACTORS: dict[str, float] = {
    "07": 60.0,
    "24": 30.0,
    "29": 30.0,
    "19": 20.0,
    "4681": 25.0,
    "4711": 40.0,
    "4712": 2.0,
    "4771": 15.0,
    "4781": 2.0,
    "4731": 1.5,
    "11": 10.0,
    "10": 5.0,
    "20": 5.0,
    "46": 3.0,
    "56": 0.5,
}

# NCM chapters each activity sells, by CNAE prefix (longest match wins; default: every chapter).
_FOOD = "02-04,07-12,15-22"
NCM_CHAPTERS: dict[str, str] = {
    "01": "01-12,23,52",
    "02": "44",
    "03": "03",
    "05": "27",
    "06": "27",
    "07": "26",
    "08": "25",
    "09": "25-27",
    "10": "02,04,07-11,15-21",
    "11": "22",
    "12": "24",
    "13": "50-60",
    "14": "61-63",
    "15": "41-43,64",
    "16": "44",
    "17": "47,48",
    "18": "49",
    "19": "27",
    "20": "28-38",
    "21": "30",
    "22": "39,40",
    "23": "25,68-70",
    "24": "72-81",
    "25": "73,82,83",
    "26": "85,90",
    "27": "85",
    "28": "84",
    "29": "87",
    "30": "86,88,89",
    "31": "94",
    "32": "71,90-97",
    "33": "84,85",
    "45": "40,84,85,87",
    "462": "01-12,23",
    "463": _FOOD,
    "464": "30,33,34,61-64,85,94",
    "465": "84,85",
    "466": "73,84,85",
    "467": "25,39,44,68-73,76",
    "468": "27-38,72",
    "471": _FOOD + ",33,34,48,96",
    "472": _FOOD,
    "473": "27",
    "474": "25,32,39,44,68-73,76,83,85,94",
    "475": "63,69,70,84,85,94",
    "476": "48,49,95",
    "477": "30,33,34,90",
    "478": "42,61-64,71,91",
    "56": "04,16,19-22",
}

# Unit of trade (uCom) by NCM chapter; every other chapter trades in units.
UNITS = ("UN", "KG", "LT", "PC", "M2")
_UNIT_CHAPTERS = {
    "KG": "01-03,07,08,10,12,23,25,26,31,72-81",
    "LT": "22,27",
    "PC": "73,83",
    "M2": "69",
}

# Typical consumer price (BRL per unit of trade) by NCM chapter; default 30.
PRICE_BRL: dict[int, float] = {
    1: 2500, 2: 35, 3: 45, 4: 12, 7: 8, 8: 10, 9: 20, 10: 6, 11: 8, 15: 12, 16: 18, 17: 6,
    19: 10, 20: 12, 21: 15, 22: 9, 24: 12, 25: 2, 26: 0.5, 27: 6, 30: 35, 33: 25, 34: 12,
    39: 20, 40: 80, 44: 45, 48: 15, 49: 40, 61: 70, 62: 90, 63: 60, 64: 150, 69: 55, 70: 40,
    71: 300, 72: 7, 73: 30, 84: 400, 85: 250, 87: 600, 90: 200, 94: 500, 95: 90, 96: 15,
}  # fmt: skip

# ICMS rates (%) inside MG that differ from the 18% standard, by NCM chapter.
ICMS_CHAPTER_RATES: dict[int, int] = {7: 7, 10: 7, 2: 12, 4: 12, 11: 12, 22: 25, 24: 25, 33: 25}

# Interstate ICMS from MG: 12% to S/SE (except ES), 7% to N/NE/CO and ES; into MG always 12%.
INTERSTATE_12 = frozenset({"SP", "RJ", "PR", "SC", "RS"})

# Where MG's interstate sales go, and where out-of-state issuers selling into MG sit.
RECIPIENT_STATE_WEIGHTS: dict[str, float] = {
    "SP": 30, "RJ": 14, "ES": 8, "BA": 8, "GO": 8, "DF": 5, "PR": 6, "SC": 4, "RS": 4,
    "MT": 2, "MS": 2, "PE": 2, "CE": 2, "PA": 2, "TO": 1, "MA": 0.5, "PI": 0.5, "RN": 0.5,
    "PB": 0.5, "AL": 0.5, "SE": 0.5, "AM": 0.5, "RO": 0.3, "AC": 0.1, "AP": 0.1, "RR": 0.1,
}  # fmt: skip
ISSUER_STATE_WEIGHTS: dict[str, float] = {
    "SP": 40, "RJ": 12, "PR": 8, "GO": 7, "ES": 6, "BA": 6, "SC": 5, "RS": 5, "DF": 4,
    "MT": 2, "MS": 2, "PE": 2, "CE": 1, "PA": 1,
}  # fmt: skip

# Every CFOP the generator writes (validated against datasets/cfop.csv).
CFOPS = (
    "5101", "5102", "5151", "5152", "5201", "5202", "5401", "5405", "5656", "5910",
    "6101", "6102", "6108", "6201", "6202", "6401", "6403", "6910", "7101", "7102",
)  # fmt: skip

# Items per NFC-e (basket): lognormal (median, sigma) by retail activity, rounded up. A supermarket
# trolley is long, a fuel sale is one line. The mix gives DESIGN §4's ~5 items at the median and
# 12-15 on average.
NFCE_BASKETS: dict[str, tuple[float, float]] = {
    "4711": (12.0, 1.35),
    "4712": (6.0, 1.2),
    "472": (5.0, 1.0),
    "4731": (1.0, 0.3),
    "4771": (4.0, 0.9),
    "56": (4.0, 0.9),
}
DEFAULT_BASKET = (4.5, 1.05)


def basket_mean(median: npt.ArrayLike, sigma: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Mean lines per invoice of ``draw_lines`` (lognormal mean, plus ~0.5 for rounding up)."""
    m, s = np.asarray(median, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    out: npt.NDArray[np.float64] = m * np.exp(s**2 / 2) + 0.5
    return out


def basket(cnae: str) -> tuple[float, float]:
    for n in (4, 3, 2):
        found = NFCE_BASKETS.get(cnae[:n])
        if found is not None:
            return found
    return DEFAULT_BASKET


# NFC-e share of items: with ~13 items per NFC-e and ~5.5 per NF-e this gives the ~88% NFC-e share
# of invoices of DESIGN §4 (100-150 M NFC-e against 10-20 M NF-e a month).
NFCE_ITEM_SHARE = 0.94

# Monthly seasonality (Jan..Dec): December sales, November Black Friday, slow February.
SEASON = (0.9, 0.85, 0.95, 0.95, 1.0, 0.98, 1.0, 1.02, 1.0, 1.05, 1.15, 1.4)

# Day of week (Mon..Sun) and hour of day, per channel (0 = NFC-e retail, 1 = NF-e business).
WEEKDAY_WEIGHTS = (
    (0.95, 0.95, 1.0, 1.0, 1.15, 1.35, 0.6),
    (1.1, 1.1, 1.1, 1.1, 1.05, 0.3, 0.05),
)
HOUR_WEIGHTS = (
    (0.1, 0.05, 0.03, 0.03, 0.05, 0.2, 0.6, 1.5, 3, 4, 5, 6, 6.5, 5, 4.5, 4.5, 5, 6, 6.5, 5.5,
     4, 2.5, 1.2, 0.4),
    (0.02, 0.01, 0.01, 0.01, 0.02, 0.05, 0.3, 2, 5, 7, 7.5, 7, 4, 5.5, 7, 7, 6.5, 5, 2.5, 1,
     0.5, 0.2, 0.1, 0.05),
)  # fmt: skip


def _expand(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def ncm_chapters_for(cnae: str) -> list[int] | None:
    """NCM chapters sold by a CNAE subclass; ``None`` means any chapter."""
    for n in (4, 3, 2):
        spec = NCM_CHAPTERS.get(cnae[:n])
        if spec is not None:
            return _expand(spec)
    return None


def chapter_unit(chapter: int) -> int:
    """Index into ``UNITS`` of the unit of trade of an NCM chapter."""
    for unit, spec in _UNIT_CHAPTERS.items():
        if chapter in _expand(spec):
            return UNITS.index(unit)
    return 0


def size_factor(cnae: str) -> float:
    for n in (4, 3, 2):
        factor = SIZE_FACTORS.get(cnae[:n])
        if factor is not None:
            return factor
    return 1.0


def division_weight(division: str) -> float:
    return DIVISION_WEIGHTS.get(division, OTHER_DIVISION_WEIGHT)


def shop_weight(cnae: str) -> float | None:
    """Share of taxpayers of a common kind of shop, or ``None`` (use the division's split)."""
    return SHOP_WEIGHTS.get(cnae[:4])
