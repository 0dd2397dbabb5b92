"""What finance reads: a month's close, revenue by month, pages of invoices, payments.

Read-only queries for the console and the public transparency page; every change goes through
``lifecycle`` and ``service``. Aggregates are computed by the database (GROUP BY), pages are
bounded, so each read costs the same with ten or ten thousand invoices.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Engine,
    String,
    and_,
    case,
    cast,
    func,
    or_,
    select,
    type_coerce,
)

from dataflow.billing.repository import StoredInvoice, recent_runs
from dataflow.billing.tables import billing_invoices, billing_payments
from dataflow.contracts.tables import partners

__all__ = [
    "BillingReports",
    "InvoicePage",
    "MonthClose",
    "MonthRevenue",
    "Payment",
    "StatusTotals",
]

STATUSES = ("draft", "issued", "overdue", "paid", "void")
BILLED = ("issued", "overdue", "paid")  # issued invoices, whatever became of them but voiding


class Payment(msgspec.Struct, frozen=True, kw_only=True):
    """A DAE payment as recorded."""

    dae_reference: str
    amount_brl: Decimal
    paid_on: date
    note: str | None = None
    recorded_by: str | None = None


class StatusTotals(msgspec.Struct, frozen=True, kw_only=True):
    status: str  # draft | issued (not yet due) | overdue (issued, past due) | paid | void
    count: int
    total_ufemg: Decimal
    total_brl: Decimal


class MonthClose(msgspec.Struct, frozen=True, kw_only=True):
    month: str
    statuses: list[StatusTotals]  # every status, zeros included
    runs: list[dict[str, object]]  # the month's billing runs, newest first
    accesses: int  # billed accesses (non-void invoices)

    def of(self, status: str) -> StatusTotals:
        return next(s for s in self.statuses if s.status == status)

    @property
    def billed(self) -> StatusTotals:
        """Everything not void: what the month is worth."""
        live = [s for s in self.statuses if s.status != "void"]
        return StatusTotals(
            status="billed",
            count=sum(s.count for s in live),
            total_ufemg=sum((s.total_ufemg for s in live), Decimal(0)),
            total_brl=sum((s.total_brl for s in live), Decimal(0)),
        )


class MonthRevenue(msgspec.Struct, frozen=True, kw_only=True):
    month: str
    invoices: int
    billed_brl: Decimal  # issued invoices (open, overdue or paid)
    paid_brl: Decimal  # of which paid
    billed_ufemg: Decimal
    accesses: int


class InvoiceRow(msgspec.Struct, frozen=True, kw_only=True):
    invoice: StoredInvoice
    partner_name: str | None
    overdue: bool


class InvoicePage(msgspec.Struct, frozen=True, kw_only=True):
    rows: list[InvoiceRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _scaled(text: Any) -> Any:
    """A fixed-point decimal text as an integer of its last place: ``'24896.57'`` → 2489657."""
    return cast(func.replace(text, ".", ""), BigInteger)


def _status_filter(status: str | None, today: date) -> list[ColumnElement[bool]]:
    inv = billing_invoices.c
    if status == "overdue":  # marked so by the run, or past due since
        return [or_(inv.status == "overdue", and_(inv.status == "issued", inv.due_date < today))]
    if status == "issued":
        return [inv.status == "issued", or_(inv.due_date.is_(None), inv.due_date >= today)]
    if status:
        return [inv.status == status]
    return []


class BillingReports:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def month_close(self, month: str, today: date) -> MonthClose:
        inv = billing_invoices.c
        label = case(
            (and_(inv.status == "issued", inv.due_date < today), "overdue"), else_=inv.status
        )
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    label,
                    type_coerce(inv.total_ufemg, String),
                    type_coerce(inv.total_brl, String),
                    inv.accesses,
                ).where(inv.month == month, inv.invoice_kind == "monthly")
            ).all()
            runs = [r for r in recent_runs(conn, 200) if r["month"] == month][:10]
        # Amounts are exact decimal text: they are added here, not by the database (a float on
        # SQLite), over at most one row per partner.
        acc: dict[str, list[Decimal]] = {s: [Decimal(0), Decimal(0), Decimal(0)] for s in STATUSES}
        accesses = 0
        for st, ufemg, brl, n in rows:
            acc[st][0] += 1
            acc[st][1] += Decimal(str(ufemg))
            acc[st][2] += Decimal(str(brl))
            if st != "void":
                accesses += int(n)
        return MonthClose(
            month=month,
            statuses=[
                StatusTotals(status=s, count=int(c), total_ufemg=u, total_brl=b)
                for s, (c, u, b) in acc.items()
            ],
            runs=runs,
            accesses=accesses,
        )

    def revenue_by_month(self, months: int = 12) -> list[MonthRevenue]:
        """Issued monthly invoices (open, overdue, paid) per billing month, the latest ``months``.

        Summed by the database, exactly: amounts are stored as decimal text with their fixed
        places (BRL 2, UFEMG 4), so dropping the point gives integer centavos (and 10⁻⁴ UFEMG)
        to add. A row that breaks that form (none should) sends the month to a Decimal sum in
        Python instead. Converting 10⁴ rows to ``Decimal`` here cost ~250 ms; this, ~30 ms.
        """
        inv = billing_invoices.c
        live = (inv.invoice_kind == "monthly", inv.status.in_(BILLED))
        with self.engine.connect() as conn:
            recent = [
                r[0]
                for r in conn.execute(
                    select(inv.month)
                    .where(*live)
                    .group_by(inv.month)
                    .order_by(inv.month.desc())
                    .limit(months)
                )
            ]
            if not recent:
                return []
            brl, ufemg = type_coerce(inv.total_brl, String), type_coerce(inv.total_ufemg, String)
            paid = inv.status == "paid"
            rows = conn.execute(
                select(
                    inv.month,
                    func.count(),
                    func.sum(_scaled(brl)),
                    func.sum(case((paid, _scaled(brl)), else_=0)),
                    func.sum(_scaled(ufemg)),
                    func.sum(inv.accesses),
                    func.sum(case((or_(~brl.like("%.__"), ~ufemg.like("%.____")), 1), else_=0)),
                )
                .where(*live, inv.month.in_(recent))
                .group_by(inv.month)
            ).all()
            odd = [r[0] for r in rows if r[6]]
            exact = self._decimal_sums(conn, odd) if odd else {}
        out = []
        for month, count, cents, paid_cents, units, accesses, _ in sorted(rows):
            billed, paid_brl, ufemg_total = exact.get(
                month,
                (
                    Decimal(int(cents)).scaleb(-2),
                    Decimal(int(paid_cents)).scaleb(-2),
                    Decimal(int(units)).scaleb(-4),
                ),
            )
            out.append(
                MonthRevenue(
                    month=month,
                    invoices=int(count),
                    billed_brl=billed,
                    paid_brl=paid_brl,
                    billed_ufemg=ufemg_total,
                    accesses=int(accesses or 0),
                )
            )
        return out

    @staticmethod
    def _decimal_sums(conn: Any, months: list[str]) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
        inv = billing_invoices.c
        rows = conn.execute(
            select(inv.month, inv.status, inv.total_brl, inv.total_ufemg).where(
                inv.invoice_kind == "monthly",
                inv.status.in_(BILLED),
                inv.month.in_(months),
            )
        ).all()
        sums: dict[str, list[Decimal]] = {m: [Decimal(0)] * 3 for m in months}
        for month, status, brl, ufemg in rows:
            t = sums[month]
            t[0] += brl
            t[1] += brl if status == "paid" else 0
            t[2] += ufemg
        return {m: (t[0], t[1], t[2]) for m, t in sums.items()}

    def invoices(
        self,
        *,
        today: date,
        month: str | None = None,
        status: str | None = None,
        partner_id: int | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> InvoicePage:
        inv = billing_invoices.c
        where = _status_filter(status, today)
        if month:
            where.append(inv.month == month)
        if partner_id is not None:
            where.append(inv.partner_id == partner_id)
        page = max(1, page)
        with self.engine.connect() as conn:
            total = int(
                conn.execute(
                    select(func.count()).select_from(billing_invoices).where(*where)
                ).scalar_one()
            )
            rows = (
                conn.execute(
                    select(billing_invoices, partners.c.name.label("partner_name"))
                    .outerjoin(partners, partners.c.id == inv.partner_id)
                    .where(*where)
                    .order_by(inv.month.desc(), inv.id.desc())
                    .limit(per_page)
                    .offset((page - 1) * per_page)
                )
                .mappings()
                .all()
            )
        out = []
        for r in rows:
            stored = StoredInvoice.from_row(r)
            past_due = stored.due_date is not None and stored.due_date < today
            out.append(
                InvoiceRow(
                    invoice=stored,
                    partner_name=r["partner_name"],
                    overdue=stored.status == "overdue" or (stored.status == "issued" and past_due),
                )
            )
        return InvoicePage(rows=out, total=total, page=page, per_page=per_page)

    def payments(self, invoice_id: int) -> list[Payment]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(billing_payments)
                .where(billing_payments.c.invoice_id == invoice_id)
                .order_by(billing_payments.c.id)
            ).mappings()
            return [
                Payment(
                    dae_reference=r["dae_reference"],
                    amount_brl=r["amount_brl"],
                    paid_on=r["paid_on"],
                    note=r["note"],
                    recorded_by=r["recorded_by"],
                )
                for r in rows
            ]
