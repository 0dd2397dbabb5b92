"""Contract terms: the TOML of DESIGN §10 (prices, franchise, bands, readjustment, amendments).

The control plane stores and validates them; billing reads them to price a month.
"""

from __future__ import annotations

import functools
import re
import tomllib
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path

import msgspec

from dataflow.contracts.errors import ContractInvalid
from dataflow.contracts.models import Plan

__all__ = [
    "MONTHLY_FLOOR_UFEMG",
    "Amendment",
    "Band",
    "ContractTerms",
    "Readjustment",
    "ReadjustmentKind",
    "franchise_value",
]

# Art. 10 II: the monthly consumption value is at least 3,000 UFEMG.
MONTHLY_FLOOR_UFEMG = Decimal("3000")

_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


class ReadjustmentKind(StrEnum):
    PERCENT = "percent"  # a fixed percentage each anniversary
    INDEX = "index"  # the 12-month change of an index table (datasets/readjustment_indices…)


class Band(msgspec.Struct, frozen=True, kw_only=True):
    up_to: int  # inclusive upper bound of accesses
    price_ufemg: Decimal


class Readjustment(msgspec.Struct, frozen=True, kw_only=True):
    """Art. 11 IV / 13 V: how prices move on each anniversary of `start`."""

    kind: ReadjustmentKind
    percent: Decimal | None = None
    index: str | None = None


class Amendment(msgspec.Struct, frozen=True, kw_only=True):
    """A change of prices from `effective` on; fields left out keep their value."""

    effective: date
    unit_price_ufemg: Decimal | None = None
    franchise_accesses: int | None = None
    support_ufemg: Decimal | None = None
    bands: list[Band] | None = None
    note: str = ""


class ContractTerms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    kind: Plan  # continuous or sandbox
    start: date  # first day of (paid) supply; for a migrated contract, the migration date
    end: date | None = None
    unit_price_ufemg: Decimal = Decimal(0)
    franchise_accesses: int = 0
    support_ufemg: Decimal = Decimal(0)
    bands: list[Band] = []
    cap: int | None = None
    # who pays (printed on the DAE); the partner's name when absent
    payer_name: str | None = None
    payer_cnpj: str | None = None
    # Art. 13 I: development cost, paid at once or in monthly instalments
    development_cost_ufemg: Decimal = Decimal(0)
    development_instalments: int = 1
    development_first_month: str | None = None  # YYYY-MM; the month of `start` when absent
    readjustment: Readjustment | None = None
    amendments: list[Amendment] = []
    # partial first/last months: the franchise by days (support too if prorate_support). The
    # 3,000-UFEMG floor is not prorated (Art. 10 II has no proration) unless the contract opts in
    # with prorate_floor, a CGMD deliberation the invoice line names.
    prorate: bool = True
    prorate_support: bool = False
    prorate_floor: bool = False
    # sandbox → paid migration: the sandbox authorization began here and ended the day before
    # `start`; its cap applies to that part of the migration month
    sandbox_from: date | None = None
    sandbox_cap: int | None = None

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<toml>") -> ContractTerms:
        return _parse_terms(text, source)

    @classmethod
    def _from_toml(cls, text: str, source: str) -> ContractTerms:
        try:
            terms = msgspec.convert(tomllib.loads(text), cls, strict=False)
        except (tomllib.TOMLDecodeError, msgspec.ValidationError) as e:
            raise ContractInvalid(source, str(e)) from None
        return terms.validated(source)

    @classmethod
    def from_file(cls, path: Path) -> ContractTerms:
        return cls.from_toml(path.read_text(encoding="utf-8"), source=str(path))

    def validated(self, source: str) -> ContractTerms:
        if self.end is not None and self.end < self.start:
            raise ContractInvalid(source, f"end {self.end} is before start {self.start}")
        if self.unit_price_ufemg < 0 or self.support_ufemg < 0 or self.franchise_accesses < 0:
            raise ContractInvalid(source, "prices and franchise must not be negative")
        _check_bands(source, self.bands, self.unit_price_ufemg)
        for a in self.amendments:
            if a.effective < self.start:
                raise ContractInvalid(source, f"amendment {a.effective} is before start")
            if a.bands is not None:
                _check_bands(source, a.bands, a.unit_price_ufemg or self.unit_price_ufemg)
        if self.development_cost_ufemg < 0 or self.development_instalments < 1:
            raise ContractInvalid(source, "development cost ≥ 0 and instalments ≥ 1 expected")
        first = self.development_first_month
        if first is not None and not _MONTH.fullmatch(first):
            raise ContractInvalid(source, f"development_first_month {first!r}: expected YYYY-MM")
        r = self.readjustment
        if r is not None and r.kind is ReadjustmentKind.PERCENT and r.percent is None:
            raise ContractInvalid(source, "readjustment kind 'percent' needs `percent`")
        if r is not None and r.kind is ReadjustmentKind.INDEX and not r.index:
            raise ContractInvalid(source, "readjustment kind 'index' needs `index` (e.g. 'IPCA')")
        if self.sandbox_from is not None and self.sandbox_from >= self.start:
            raise ContractInvalid(source, "sandbox_from must come before start (the migration)")
        if self.payer_cnpj is not None and not re.fullmatch(r"[0-9A-Z]{12}[0-9]{2}", _cnpj(self)):
            raise ContractInvalid(source, f"payer_cnpj {self.payer_cnpj!r} is not a CNPJ")
        return self

    def warnings(self) -> list[str]:
        """Things finance should look at when the contract is created (they do not block it)."""
        out: list[str] = []
        if self.kind is Plan.CONTINUOUS:
            value = franchise_value(self.franchise_accesses, self.unit_price_ufemg, self.bands)
            if value < MONTHLY_FLOOR_UFEMG:
                out.append(
                    f"franchise value {value} UFEMG ({self.franchise_accesses:,} accesses) is "
                    f"under the {MONTHLY_FLOOR_UFEMG} UFEMG monthly minimum (Art. 10 II): the "
                    "floor will bind every month the partner stays near the franchise"
                )
        return out


@functools.lru_cache(maxsize=65_536)
def _parse_terms(text: str, source: str) -> ContractTerms:
    """Terms are immutable: a long-lived scheduler parses each contract's TOML once."""
    return ContractTerms._from_toml(text, source)


def _cnpj(terms: ContractTerms) -> str:
    return re.sub(r"[./-]", "", terms.payer_cnpj or "").upper()


def franchise_value(franchise: int, unit: Decimal, bands: list[Band]) -> Decimal:
    """The consumption value of exactly the franchise (band price when a band holds it)."""
    band = next((b for b in bands if franchise <= b.up_to), None)
    return band.price_ufemg if band is not None else unit * franchise


def _check_bands(source: str, bands: list[Band], unit: Decimal) -> None:
    bounds = [b.up_to for b in bands]
    if bounds != sorted(set(bounds)):
        raise ContractInvalid(source, "bands must have strictly increasing up_to")
    prices = [b.price_ufemg for b in bands]
    if prices != sorted(prices):
        raise ContractInvalid(source, "band prices must not decrease as up_to grows")
    # Above the last band every access is priced linearly: it must not cost less than the band.
    if bands and unit * (bands[-1].up_to + 1) < bands[-1].price_ufemg:
        raise ContractInvalid(
            source,
            f"above the last band ({bands[-1].up_to:,}) the linear price "
            f"{unit} × {bands[-1].up_to + 1:,} is under the band price {bands[-1].price_ufemg}: "
            "the bill would drop as usage grows",
        )
