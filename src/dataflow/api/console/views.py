"""What the pages show, read from the services (synchronous: handlers run these in a thread)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from litestar.exceptions import NotFoundException

from dataflow.api.console.context import ConsoleState
from dataflow.billing.compute import MonthOutsideContract, compute_invoice, month_bounds
from dataflow.billing.errors import BillingError, InvoiceNotFound
from dataflow.billing.schedule import schedules
from dataflow.contracts.errors import ContractInvalid, ContractNotFound, PartnerNotFound
from dataflow.contracts.models import Contract, ContractKind, Plan
from dataflow.contracts.terms import ContractTerms
from dataflow.metering.records import count_records
from dataflow.ptbr import SAO_PAULO

__all__ = [
    "ACCESS_LINES",
    "contract_terms",
    "contract_view",
    "invoice_view",
    "month_param",
    "next_month",
    "projected_invoice",
    "today",
]

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
# Lines whose quantity is the month's counted accesses (split by days in a migration month).
ACCESS_LINES = ("usage", "consumption_band", "sandbox_usage")


def today() -> date:
    return datetime.now(UTC).astimezone(SAO_PAULO).date()


def month_param(raw: str | None) -> str | None:
    return raw if raw and _MONTH.match(raw) else None


def next_month(month: str) -> str:
    last = month_bounds(month)[1]
    return f"{last + timedelta(days=1):%Y-%m}"


def invoice_view(
    console: ConsoleState, invoice_id: int, *, partner_id: int | None = None
) -> dict[str, Any]:
    """An invoice with its lines, payments, credit notes and the access records behind it.

    ``partner_id``: the reader's own partner; any other partner's invoice is "not found".
    """
    try:
        inv, lines = console.billing.lifecycle.get(invoice_id)
    except InvoiceNotFound:
        raise NotFoundException(f"fatura {invoice_id}") from None
    if partner_id is not None and inv.partner_id != partner_id:
        raise NotFoundException(f"fatura {invoice_id}")
    records = None
    if inv.partner_id is not None and inv.month:
        with console.contracts.engine.connect() as conn:
            records = count_records(conn, inv.partner_id, inv.month)
    payments = console.reports.payments(invoice_id)
    credits = console.billing.lifecycle.credit_notes(invoice_id)
    paid = sum((p.amount_brl for p in payments), start=inv.total_brl * 0)
    credited = sum((c.amount_brl for c in credits), start=inv.total_brl * 0)
    counted = [line for line in lines if line.code in ACCESS_LINES]
    return {
        "invoice": inv,
        "lines": lines,
        "payments": payments,
        "credits": credits,
        "paid": paid,
        "credited": credited,
        "remaining": max(inv.total_brl - credited - paid, inv.total_brl * 0),
        "records": records,
        "counted_lines": counted,
        "overdue": inv.status == "overdue"
        or (inv.status == "issued" and inv.due_date is not None and inv.due_date < today()),
        "dae": console.reference.dae,
    }


def contract_terms(contract: Contract) -> ContractTerms | None:
    """The terms billing prices a contract by (a sandbox without a file: its window and cap)."""
    if contract.terms_toml:
        return ContractTerms.from_toml(contract.terms_toml, source=f"of contract {contract.id}")
    if contract.kind is ContractKind.SANDBOX and contract.start_date is not None:
        return ContractTerms(
            kind=Plan.SANDBOX,
            start=contract.start_date,
            end=contract.end_date,
            cap=contract.monthly_cap,
        )
    return None


def projected_invoice(
    console: ConsoleState, terms: ContractTerms, month: str, accesses: int
) -> tuple[Any, str | None]:
    """(invoice, why none): what ``month`` would bill for ``accesses`` under ``terms``."""
    ref = console.reference
    try:
        inv = compute_invoice(
            terms, accesses=accesses, month=month, ufemg=ref.ufemg, indices=ref.indices
        )
    except MonthOutsideContract:
        return None, "o mês está fora da vigência do contrato"
    except BillingError as e:
        return None, str(e)
    return inv, None


def contract_view(console: ConsoleState, contract_id: int, accesses: int | None) -> dict[str, Any]:
    try:
        contract = console.contracts.contract(contract_id)
        partner = console.contracts.partner(contract.partner_id)
    except (ContractNotFound, PartnerNotFound):
        raise NotFoundException(f"contrato {contract_id}") from None
    problem = None
    try:
        terms = contract_terms(contract)
    except ContractInvalid as e:
        terms, problem = None, e.problem
    this_month = f"{today():%Y-%m}"
    following = next_month(this_month)
    used = console.contracts.usage(partner.id, this_month)
    first, _, days = month_bounds(this_month)
    elapsed = (today() - first).days + 1
    estimate = round(used * days / elapsed) if elapsed else used
    chosen = accesses if accesses is not None else estimate
    found: list[Any] = []
    preview, why = None, None
    if terms is not None:
        until = terms.end or (today() + timedelta(days=366))
        try:
            found = schedules(terms, until, console.reference.indices)
        except BillingError as e:
            problem = str(e)
        preview, why = projected_invoice(console, terms, following, chosen)
    return {
        "contract": contract,
        "partner": partner,
        "terms": terms,
        "problem": problem,
        "schedules": found,
        "preview": preview,
        "preview_why": why,
        "preview_month": following,
        "accesses": chosen,
        "estimate": estimate,
        "used": used,
        "this_month": this_month,
    }
