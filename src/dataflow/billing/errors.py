"""Billing errors: they carry what they are about and know nothing of HTTP."""

from __future__ import annotations

__all__ = ["BillingError", "ContractInvalid", "UfemgUnknown"]


class BillingError(Exception):
    """Base of billing errors."""


class ContractInvalid(BillingError):
    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"contract {source}: {problem}")
        self.source = source
        self.problem = problem


class UfemgUnknown(BillingError):
    def __init__(self, year: int, known: list[int]) -> None:
        super().__init__(
            f"no UFEMG value for {year} (known: {', '.join(map(str, known))}); "
            "add the value SEF/MG published for that year to datasets/ufemg.csv"
        )
        self.year = year
