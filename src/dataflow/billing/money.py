"""Money in ``Decimal``: UFEMG (4 places) and BRL (2 places) are different types.

One rounding function, ROUND_HALF_UP, used everywhere an amount is quantized.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["Brl", "Ufemg", "round_half_up"]


def round_half_up(value: Decimal, places: int) -> Decimal:
    """The project's only rounding: half away from zero, to ``places`` decimals."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True, order=True)
class Ufemg:
    """An amount in UFEMG, kept to 4 decimals."""

    amount: Decimal

    PLACES = 4

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"Ufemg needs a Decimal, got {type(self.amount).__name__}")
        object.__setattr__(self, "amount", round_half_up(self.amount, self.PLACES))

    @classmethod
    def of(cls, value: str | int | Decimal) -> Ufemg:
        return cls(Decimal(value))

    def __add__(self, other: Ufemg) -> Ufemg:
        return Ufemg(self.amount + other.amount)

    def __sub__(self, other: Ufemg) -> Ufemg:
        return Ufemg(self.amount - other.amount)

    def __neg__(self) -> Ufemg:
        return Ufemg(-self.amount)

    @classmethod
    def zero(cls) -> Ufemg:
        return cls(Decimal(0))

    @classmethod
    def total(cls, amounts: Iterable[Ufemg]) -> Ufemg:
        # amounts are already at 4 places: their exact sum needs no intermediate rounding
        return cls(sum((a.amount for a in amounts), Decimal(0)))

    def times(self, factor: Decimal | int) -> Ufemg:
        return Ufemg(self.amount * Decimal(factor))

    def to_brl(self, brl_per_ufemg: Decimal) -> Brl:
        return Brl(self.amount * brl_per_ufemg)

    def __str__(self) -> str:
        return f"{self.amount:.4f}"


@dataclass(frozen=True, slots=True, order=True)
class Brl:
    """An amount in reais, kept to 2 decimals."""

    amount: Decimal

    PLACES = 2

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"Brl needs a Decimal, got {type(self.amount).__name__}")
        object.__setattr__(self, "amount", round_half_up(self.amount, self.PLACES))

    @classmethod
    def of(cls, value: str | int | Decimal) -> Brl:
        return cls(Decimal(value))

    @classmethod
    def zero(cls) -> Brl:
        return cls(Decimal(0))

    @classmethod
    def total(cls, amounts: Iterable[Brl]) -> Brl:
        return cls(sum((a.amount for a in amounts), Decimal(0)))

    def __add__(self, other: Brl) -> Brl:
        return Brl(self.amount + other.amount)

    def __sub__(self, other: Brl) -> Brl:
        return Brl(self.amount - other.amount)

    def __neg__(self) -> Brl:
        return Brl(-self.amount)

    @property
    def cents(self) -> int:
        """Integer centavos, exact (no float on the way: 0.29 → 29)."""
        return int((self.amount * 100).to_integral_value(rounding=ROUND_HALF_UP))

    def __str__(self) -> str:
        return f"{self.amount:.2f}"
