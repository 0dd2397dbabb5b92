"""Billing errors: they carry what they are about and know nothing of HTTP."""

from __future__ import annotations

from datetime import date

__all__ = [
    "BillingError",
    "ContractNotBillable",
    "CostItemUnknown",
    "IndexUnknown",
    "InvoiceNotFound",
    "InvoiceStateError",
    "PaymentMismatch",
    "UfemgUnknown",
]


class BillingError(Exception):
    """Base of billing errors."""


class ContractNotBillable(BillingError):
    def __init__(self, partner_id: int, why: str) -> None:
        super().__init__(f"partner {partner_id} cannot be billed: {why}")
        self.partner_id = partner_id
        self.why = why


class UfemgUnknown(BillingError):
    def __init__(self, year: int, known: list[int]) -> None:
        super().__init__(
            f"no UFEMG value for {year} (known: {', '.join(map(str, known))}); "
            "add the value SEF/MG published for that year to datasets/ufemg.csv"
        )
        self.year = year


class IndexUnknown(BillingError):
    def __init__(self, index: str, month: str) -> None:
        super().__init__(
            f"no 12-month value of index {index!r} for {month}: add it to "
            "datasets/readjustment_indices.csv before billing the anniversary"
        )
        self.index = index
        self.month = month


class CostItemUnknown(BillingError):
    def __init__(self, item: str, on: date) -> None:
        super().__init__(
            f"no unit value for cost item {item!r} in force on {on} "
            "(items I–VI of Art. 6; see datasets/cost_items.csv)"
        )
        self.item = item
        self.on = on


class InvoiceNotFound(BillingError):
    def __init__(self, ref: object) -> None:
        super().__init__(f"no invoice {ref} (see `dataflow billing invoices`)")
        self.ref = ref


class InvoiceStateError(BillingError):
    def __init__(self, invoice_id: int, status: str, wanted: str) -> None:
        super().__init__(f"invoice {invoice_id} is {status}: cannot {wanted}")
        self.invoice_id = invoice_id
        self.status = status
        self.wanted = wanted


class PaymentMismatch(BillingError):
    def __init__(self, reference: str, problem: str) -> None:
        super().__init__(f"payment for DAE {reference}: {problem}")
        self.reference = reference
        self.problem = problem
