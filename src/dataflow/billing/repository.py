"""Billing's SQL: stateless functions, the caller owns the connection and the transaction.

Two functions read what other packages own, so they can be re-pointed when those change:
``billable_contracts`` (the ``partners`` table's contract TOML) and ``monthly_usage`` (the
settled ``usage_ledger``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from dataflow.billing.models import Fine, InvoiceLine
from dataflow.billing.tables import (
    billing_adjustments,
    billing_fines,
    billing_invoice_lines,
    billing_invoices,
    billing_runs,
    billing_sequences,
)
from dataflow.contracts.errors import ContractInvalid
from dataflow.contracts.models import Plan
from dataflow.contracts.tables import partners, usage_ledger
from dataflow.contracts.terms import ContractTerms

__all__ = [
    "BillableContract",
    "StoredInvoice",
    "billable_contracts",
    "fines_for_month",
    "invoice_lines",
    "invoices_for_month",
    "monthly_usage",
    "next_in_sequence",
    "recent_runs",
    "replace_lines",
]


class BillableContract(msgspec.Struct, frozen=True, kw_only=True):
    partner_id: int
    partner_name: str
    terms: ContractTerms | None
    problem: str | None = None


class StoredInvoice(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    partner_id: int | None
    invoice_kind: str
    month: str | None
    contract_kind: str | None
    status: str
    number: str | None
    dae_reference: str | None
    payer_name: str
    payer_cnpj: str | None
    accesses: int
    brl_per_ufemg: Decimal
    total_ufemg: Decimal
    total_brl: Decimal
    period_start: date | None
    period_end: date | None
    due_date: date | None
    created_at: datetime
    issued_at: datetime | None
    paid_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> StoredInvoice:
        return cls(**{f: row[f] for f in cls.__struct_fields__})


def billable_contracts(conn: Connection) -> list[BillableContract]:
    """Every partner with the terms to bill it by (from ``partners.contract_toml``).

    A sandbox partner without a contract file is billed on its plan (zero price, its cap, a
    window from its creation); a paid one without terms is returned with the problem.
    """
    out: list[BillableContract] = []
    rows = conn.execute(
        select(
            partners.c.id,
            partners.c.name,
            partners.c.plan,
            partners.c.monthly_cap,
            partners.c.contract_toml,
            partners.c.created_at,
        ).order_by(partners.c.id)
    ).all()
    for pid, name, plan, cap, toml, created in rows:
        if toml:
            try:
                terms = ContractTerms.from_toml(toml, source=f"of partner {pid}")
            except ContractInvalid as e:
                out.append(
                    BillableContract(partner_id=pid, partner_name=name, terms=None, problem=str(e))
                )
                continue
            out.append(BillableContract(partner_id=pid, partner_name=name, terms=terms))
        elif plan == Plan.SANDBOX.value:
            terms = ContractTerms(kind=Plan.SANDBOX, start=created.date(), cap=cap)
            out.append(BillableContract(partner_id=pid, partner_name=name, terms=terms))
        else:
            out.append(
                BillableContract(
                    partner_id=pid,
                    partner_name=name,
                    terms=None,
                    problem="paid plan without contract terms (attach a contract TOML)",
                )
            )
    return out


def monthly_usage(conn: Connection, month: str) -> dict[int, int]:
    """Settled accesses per partner for ``YYYY-MM`` (partners without a row used nothing)."""
    rows = conn.execute(
        select(usage_ledger.c.partner_id, usage_ledger.c.accesses).where(
            usage_ledger.c.month == month
        )
    ).all()
    return {int(p): int(n) for p, n in rows}


def invoices_for_month(conn: Connection, month: str) -> dict[int, StoredInvoice]:
    rows = (
        conn.execute(
            select(billing_invoices).where(
                billing_invoices.c.month == month, billing_invoices.c.invoice_kind == "monthly"
            )
        )
        .mappings()
        .all()
    )
    return {int(r["partner_id"]): StoredInvoice.from_row(r) for r in rows}


def invoice_lines(conn: Connection, invoice_ids: Sequence[int]) -> dict[int, list[InvoiceLine]]:
    out: dict[int, list[InvoiceLine]] = {i: [] for i in invoice_ids}
    if not invoice_ids:
        return out
    for chunk_start in range(0, len(invoice_ids), 500):
        chunk = list(invoice_ids[chunk_start : chunk_start + 500])
        rows = (
            conn.execute(
                select(billing_invoice_lines)
                .where(billing_invoice_lines.c.invoice_id.in_(chunk))
                .order_by(billing_invoice_lines.c.invoice_id, billing_invoice_lines.c.position)
            )
            .mappings()
            .all()
        )
        for r in rows:
            out[int(r["invoice_id"])].append(
                InvoiceLine(
                    code=r["code"],
                    description=r["description"],
                    quantity=r["quantity"],
                    unit_price_ufemg=r["unit_price_ufemg"],
                    amount_ufemg=r["amount_ufemg"],
                    amount_brl=r["amount_brl"],
                )
            )
    return out


def line_rows(invoice_id: int, lines: Iterable[InvoiceLine]) -> list[dict[str, object]]:
    return [
        {
            "invoice_id": invoice_id,
            "position": i,
            "code": line.code,
            "description": line.description,
            "quantity": line.quantity,
            "unit_price_ufemg": line.unit_price_ufemg,
            "amount_ufemg": line.amount_ufemg,
            "amount_brl": line.amount_brl,
        }
        for i, line in enumerate(lines, start=1)
    ]


def replace_lines(conn: Connection, invoice_id: int, lines: Sequence[InvoiceLine]) -> None:
    conn.execute(
        delete(billing_invoice_lines).where(billing_invoice_lines.c.invoice_id == invoice_id)
    )
    if lines:
        conn.execute(insert(billing_invoice_lines), line_rows(invoice_id, lines))


def fines_for_month(conn: Connection, month: str) -> dict[int, list[Fine]]:
    out: dict[int, list[Fine]] = {}
    rows = conn.execute(
        select(
            billing_fines.c.partner_id,
            billing_fines.c.reason,
            billing_fines.c.amount_ufemg,
            billing_fines.c.percent,
        )
        .where(billing_fines.c.month == month)
        .order_by(billing_fines.c.id)
    ).all()
    for pid, reason, amount, pct in rows:
        out.setdefault(int(pid), []).append(Fine(reason=reason, amount_ufemg=amount, percent=pct))
    return out


def adjustments_rows(conn: Connection, *where: Any) -> list[Any]:
    return list(
        conn.execute(select(billing_adjustments).where(*where).order_by(billing_adjustments.c.id))
        .mappings()
        .all()
    )


def next_in_sequence(conn: Connection, name: str, count: int = 1) -> int:
    """The first of the next ``count`` numbers of a series, inside the caller's transaction.

    Gap-free: a rollback undoes the increment. On PostgreSQL the UPDATE locks the series' row
    until commit, so concurrent issuers queue instead of interleaving.
    """
    for _ in range(3):
        got = conn.execute(
            update(billing_sequences)
            .where(billing_sequences.c.name == name)
            .values(next_value=billing_sequences.c.next_value + count)
            .returning(billing_sequences.c.next_value)
        ).scalar_one_or_none()
        if got is not None:
            return int(got) - count
        try:
            with conn.begin_nested():
                conn.execute(insert(billing_sequences).values(name=name, next_value=1 + count))
            return 1
        except IntegrityError:  # another transaction created the series first: take the next
            continue
    raise RuntimeError(f"could not allocate a number in series {name!r}")


def recent_runs(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The latest monthly runs (who ran what, when, and what changed), newest first."""
    rows = conn.execute(
        select(billing_runs).order_by(billing_runs.c.id.desc()).limit(limit)
    ).mappings()
    return [dict(r) for r in rows]


def count_invoices(conn: Connection, **where: object) -> int:
    q = select(func.count()).select_from(billing_invoices)
    for k, v in where.items():
        q = q.where(billing_invoices.c[k] == v)
    return int(conn.execute(q).scalar_one())
