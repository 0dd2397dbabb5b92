"""Invoices and fines: what the monthly job computes (contract terms: `contracts.terms`)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec

from dataflow.contracts.models import Plan
from dataflow.contracts.terms import MONTHLY_FLOOR_UFEMG

__all__ = [
    "ANALYSIS_FEE_UFEMG",
    "MONTHLY_FLOOR_UFEMG",
    "Fine",
    "Invoice",
    "InvoiceLine",
]

# Art. 9 I: a request starts with a DAE of 50 UFEMG (analysis of feasibility and budget).
ANALYSIS_FEE_UFEMG = Decimal("50")


class Fine(msgspec.Struct, frozen=True, kw_only=True):
    """Art. 45 III: a fine decided by the CGMD-SEF (a sanction), billed on a month's invoice.

    Either a fixed amount or a percentage of the month's supply value (consumption + support).
    """

    reason: str
    amount_ufemg: Decimal | None = None
    percent: Decimal | None = None
    sanction_id: int | None = None  # the Art. 45 sanction that decided it
    bill_month: str | None = None  # the month it was decided for (a later draft may bill it)


class InvoiceLine(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    description: str
    quantity: int | None
    unit_price_ufemg: Decimal | None
    amount_ufemg: Decimal
    amount_brl: Decimal
    sanction_id: int | None = None  # fine lines: the sanction billed
    # What the description says, as values: people-facing wording (``billing.reading.wording``) is
    # rendered from the code and these, in Portuguese; ``description`` stays the English record.
    params: dict[str, str] = {}


class Invoice(msgspec.Struct, frozen=True, kw_only=True):
    month: str
    kind: Plan
    accesses: int
    brl_per_ufemg: Decimal
    lines: list[InvoiceLine]
    total_ufemg: Decimal
    total_brl: Decimal
    period_start: date | None = None
    period_end: date | None = None
