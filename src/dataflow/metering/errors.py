"""Metering errors: domain facts, no HTTP."""

from __future__ import annotations

__all__ = ["MeterError", "MeterUnavailable", "ReconcileMismatch"]


class MeterError(Exception):
    """Base of metering errors."""


class MeterUnavailable(MeterError):
    """The meter could not count in time (Redis down or slow): nothing may be served uncounted."""

    def __init__(self, reason: str, *, retry_after: int = 2) -> None:
        super().__init__(f"the access meter is unavailable: {reason}")
        self.reason = reason
        self.retry_after = retry_after


class ReconcileMismatch(MeterError):
    """Counters, stream and ledger disagree for a partner and month."""

    def __init__(self, partner_id: int, month: str, figures: dict[str, int]) -> None:
        parts = ", ".join(f"{k}={v}" for k, v in figures.items())
        super().__init__(f"partner {partner_id}, {month}: {parts}")
        self.partner_id = partner_id
        self.month = month
        self.figures = figures
