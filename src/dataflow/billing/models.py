"""Contract terms (the TOML of DESIGN §10) and invoices."""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path

import msgspec

from dataflow.billing.errors import ContractInvalid

__all__ = ["MONTHLY_FLOOR_UFEMG", "Band", "ContractKind", "ContractTerms", "Invoice", "InvoiceLine"]

# Art. 10: the monthly consumption value is at least 3,000 UFEMG.
MONTHLY_FLOOR_UFEMG = Decimal("3000")


class ContractKind(StrEnum):
    CONTINUOUS = "continuous"
    SANDBOX = "sandbox"


class Band(msgspec.Struct, frozen=True, kw_only=True):
    up_to: int  # inclusive upper bound of accesses
    price_ufemg: Decimal


class ContractTerms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    kind: ContractKind
    start: date
    end: date | None = None
    unit_price_ufemg: Decimal = Decimal(0)
    franchise_accesses: int = 0
    support_ufemg: Decimal = Decimal(0)
    bands: list[Band] = []
    cap: int | None = None

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<toml>") -> ContractTerms:
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
        bounds = [b.up_to for b in self.bands]
        if bounds != sorted(set(bounds)):
            raise ContractInvalid(source, "bands must have strictly increasing up_to")
        prices = [b.price_ufemg for b in self.bands]
        if prices != sorted(prices):
            raise ContractInvalid(source, "band prices must not decrease as up_to grows")
        return self


class InvoiceLine(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    description: str
    quantity: int | None
    unit_price_ufemg: Decimal | None
    amount_ufemg: Decimal
    amount_brl: Decimal


class Invoice(msgspec.Struct, frozen=True, kw_only=True):
    month: str
    kind: ContractKind
    accesses: int
    brl_per_ufemg: Decimal
    lines: list[InvoiceLine]
    total_ufemg: Decimal
    total_brl: Decimal
