"""Billing's SQL: stateless functions, the caller owns the connection and the transaction.

Three functions read what other packages own, so they can be re-pointed when those change:
``billable_contracts`` (the ``partners`` table's contract TOML), ``monthly_usage`` (the
settled ``usage_ledger``) and ``fines_to_bill`` / ``lifted_billed_fines`` (Art. 45 III fines are
sanctions: the control plane records the decision, billing links its invoice line to it).
"""

from __future__ import annotations

import json
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
    billing_credit_notes,
    billing_invoice_lines,
    billing_invoices,
    billing_runs,
    billing_sequences,
)
from dataflow.contracts.errors import ContractInvalid
from dataflow.contracts.models import Plan, SanctionKind
from dataflow.contracts.tables import partners, sanctions, usage_ledger
from dataflow.contracts.terms import ContractTerms

__all__ = [
    "BillableContract",
    "StoredInvoice",
    "billable_contracts",
    "fines_to_bill",
    "invoice_lines",
    "invoices_for_month",
    "lifted_billed_fines",
    "monthly_usage",
    "next_in_sequence",
    "overdue_invoices",
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
    contract_id: int | None = None  # the request a fee or budget DAE belongs to

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
                    sanction_id=r["sanction_id"],
                    params=json.loads(r["params"]) if r["params"] else {},
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
            "sanction_id": line.sanction_id,
            "params": json.dumps(line.params, sort_keys=True) if line.params else None,
        }
        for i, line in enumerate(lines, start=1)
    ]


def replace_lines(conn: Connection, invoice_id: int, lines: Sequence[InvoiceLine]) -> None:
    conn.execute(
        delete(billing_invoice_lines).where(billing_invoice_lines.c.invoice_id == invoice_id)
    )
    if lines:
        conn.execute(insert(billing_invoice_lines), line_rows(invoice_id, lines))


def fines_to_bill(
    conn: Connection, month: str, existing: dict[int, StoredInvoice]
) -> dict[int, list[Fine]]:
    """Art. 45 III fines per partner for ``month``'s monthly invoice.

    A draft (or a new invoice) bills every fine in force decided for this month or an earlier
    one that no other invoice bills yet, so a fine decided for a month already issued lands on
    the next draft; a lifted fine leaves its draft. An issued invoice keeps exactly the fines
    on its lines (lifted or not): recomputing it for late usage never moves a fine.
    """
    rows = conn.execute(
        select(
            sanctions.c.id,
            sanctions.c.partner_id,
            sanctions.c.reason,
            sanctions.c.amount_ufemg,
            sanctions.c.percent,
            sanctions.c.bill_month,
            sanctions.c.lifted_at,
        )
        .where(sanctions.c.kind == SanctionKind.FINE.value, sanctions.c.bill_month <= month)
        .order_by(sanctions.c.id)
    ).all()
    billed: dict[int, int] = {}
    for start in range(0, len(rows), 500):
        ids = [r.id for r in rows[start : start + 500]]
        found = conn.execute(
            select(billing_invoice_lines.c.sanction_id, billing_invoice_lines.c.invoice_id).where(
                billing_invoice_lines.c.sanction_id.in_(ids)
            )
        ).all()
        billed.update((int(sid), int(iid)) for sid, iid in found)
    out: dict[int, list[Fine]] = {}
    for r in rows:
        ex = existing.get(int(r.partner_id))
        on = billed.get(r.id)
        if ex is not None and ex.status != "draft":
            keep = on == ex.id
        else:
            keep = r.lifted_at is None and (on is None or (ex is not None and on == ex.id))
        if keep:
            out.setdefault(int(r.partner_id), []).append(
                Fine(
                    reason=r.reason,
                    amount_ufemg=None if r.amount_ufemg is None else Decimal(r.amount_ufemg),
                    percent=None if r.percent is None else Decimal(r.percent),
                    sanction_id=r.id,
                    bill_month=r.bill_month,
                )
            )
    return out


def lifted_billed_fines(conn: Connection) -> list[Any]:
    """Fines lifted after an issued invoice billed them, not credited yet: (line, invoice id)."""
    credited = select(billing_credit_notes.c.sanction_id).where(
        billing_credit_notes.c.sanction_id.is_not(None)
    )
    return list(
        conn.execute(
            select(
                billing_invoice_lines.c.invoice_id,
                billing_invoice_lines.c.sanction_id,
                billing_invoice_lines.c.amount_ufemg,
                billing_invoice_lines.c.amount_brl,
                sanctions.c.reason,
            )
            .join(sanctions, sanctions.c.id == billing_invoice_lines.c.sanction_id)
            .join(billing_invoices, billing_invoices.c.id == billing_invoice_lines.c.invoice_id)
            .where(
                sanctions.c.lifted_at.is_not(None),
                billing_invoices.c.status.in_(("issued", "overdue", "paid")),
                billing_invoice_lines.c.sanction_id.not_in(credited),
            )
            .order_by(billing_invoice_lines.c.sanction_id)
        ).all()
    )


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


def overdue_invoices(
    conn: Connection, today: date, *, partner_id: int | None = None
) -> list[StoredInvoice]:
    """Issued, unpaid invoices whose due date is before ``today`` (marked overdue or not yet)."""
    q = select(billing_invoices).where(
        billing_invoices.c.status.in_(("issued", "overdue")), billing_invoices.c.due_date < today
    )
    if partner_id is not None:
        q = q.where(billing_invoices.c.partner_id == partner_id)
    rows = conn.execute(q.order_by(billing_invoices.c.due_date, billing_invoices.c.id))
    return [StoredInvoice.from_row(r) for r in rows.mappings()]


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
