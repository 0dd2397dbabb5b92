"""Invoice lifecycle: draft → issued (immutable, numbered) → paid | void; credit notes; payments.

Numbers are allocated inside the issuing transaction from a per-year series, so a failed issue
gives its number back and the series has no gaps.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from dataflow.billing.barcode import reference_number
from dataflow.billing.compute import month_bounds
from dataflow.billing.errors import InvoiceNotFound, InvoiceStateError, PaymentMismatch
from dataflow.billing.models import InvoiceLine
from dataflow.billing.money import Brl, Ufemg
from dataflow.billing.reference import BillingReference
from dataflow.billing.repository import (
    StoredInvoice,
    invoice_lines,
    line_rows,
    next_in_sequence,
)
from dataflow.billing.tables import (
    billing_credit_notes,
    billing_fines,
    billing_invoice_lines,
    billing_invoices,
    billing_payments,
)

__all__ = ["SAO_PAULO", "CreditNote", "InvoiceLifecycle"]

SAO_PAULO = ZoneInfo("America/Sao_Paulo")


class CreditNote(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    number: str
    invoice_id: int
    amount_ufemg: Decimal
    amount_brl: Decimal
    reason: str


def _get(conn: Connection, invoice_id: int, *, lock: bool = False) -> StoredInvoice:
    q = select(billing_invoices).where(billing_invoices.c.id == invoice_id)
    if lock:
        q = q.with_for_update()
    row = conn.execute(q).mappings().first()
    if row is None:
        raise InvoiceNotFound(invoice_id)
    return StoredInvoice.from_row(row)


class InvoiceLifecycle:
    def __init__(self, engine: Engine, reference: BillingReference, *, grace_days: int = 5):
        self.engine = engine
        self.ref = reference
        self.grace_days = grace_days

    # -- reading ---------------------------------------------------------------------------

    def get(self, invoice_id: int) -> tuple[StoredInvoice, list[InvoiceLine]]:
        with self.engine.connect() as conn:
            inv = _get(conn, invoice_id)
            return inv, invoice_lines(conn, [invoice_id])[invoice_id]

    def by_reference(self, dae_reference: str) -> StoredInvoice:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(billing_invoices).where(
                        billing_invoices.c.dae_reference == dae_reference
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise InvoiceNotFound(f"with DAE reference {dae_reference}")
        return StoredInvoice.from_row(row)

    def list_invoices(
        self, *, month: str | None = None, status: str | None = None
    ) -> list[StoredInvoice]:
        q = select(billing_invoices).order_by(billing_invoices.c.id)
        if month:
            q = q.where(billing_invoices.c.month == month)
        if status:
            q = q.where(billing_invoices.c.status == status)
        with self.engine.connect() as conn:
            return [StoredInvoice.from_row(r) for r in conn.execute(q).mappings().all()]

    def credit_notes(self, invoice_id: int) -> list[CreditNote]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(billing_credit_notes).where(billing_credit_notes.c.invoice_id == invoice_id)
            ).mappings()
            return [CreditNote(**{f: r[f] for f in CreditNote.__struct_fields__}) for r in rows]

    def numbers_of(self, months: Iterable[str]) -> dict[tuple[int, str], str | None]:
        months = sorted(set(months))
        if not months:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    billing_invoices.c.partner_id,
                    billing_invoices.c.month,
                    billing_invoices.c.number,
                ).where(
                    billing_invoices.c.invoice_kind == "monthly",
                    billing_invoices.c.month.in_(months),
                )
            ).all()
        return {(int(p), str(m)): n for p, m, n in rows}

    # -- transitions -----------------------------------------------------------------------

    def issue(self, invoice_id: int, *, now: datetime | None = None) -> StoredInvoice:
        """Number the draft, give it a DAE reference and a due date; from now on it is frozen."""
        with self.engine.begin() as conn:
            # _issue_in takes the locks in the one order every issuer uses: series, then rows
            if not self._issue_in(conn, [invoice_id], now or datetime.now(UTC)):
                inv = _get(conn, invoice_id)
                raise InvoiceStateError(invoice_id, inv.status, "issue (only drafts are issued)")
            return _get(conn, invoice_id)

    def issue_many(
        self, invoice_ids: list[int], *, now: datetime | None = None, batch: int = 500
    ) -> list[StoredInvoice]:
        """Issue drafts in the given order, a batch per transaction (numbers stay gap-free)."""
        now = now or datetime.now(UTC)
        out: list[StoredInvoice] = []
        for start in range(0, len(invoice_ids), batch):
            with self.engine.begin() as conn:
                done = self._issue_in(conn, invoice_ids[start : start + batch], now)
                rows = conn.execute(
                    select(billing_invoices)
                    .where(billing_invoices.c.id.in_(done))
                    .order_by(billing_invoices.c.number)
                ).mappings()
                out += [StoredInvoice.from_row(r) for r in rows]
        return out

    def _issue_in(self, conn: Connection, invoice_ids: list[int], now: datetime) -> list[int]:
        """Issue the drafts among ``invoice_ids`` inside the caller's transaction."""
        local = now.astimezone(SAO_PAULO)
        series = f"invoice-{local.year}"
        # Lock the series first (a zero increment): issuers queue here on both databases, so the
        # statuses read next are current and no two transactions number the same draft.
        next_in_sequence(conn, series, 0)
        status = dict(
            conn.execute(
                select(billing_invoices.c.id, billing_invoices.c.status)
                .where(billing_invoices.c.id.in_(invoice_ids))
                .with_for_update()
            ).all()
        )
        drafts = [i for i in invoice_ids if status.get(i) == "draft"]
        if not drafts:
            return []
        first = next_in_sequence(conn, series, len(drafts))
        due = local.date() + timedelta(days=self.ref.dae.due_days)
        params = [
            {
                "b_id": inv_id,
                "b_number": f"{local.year}/{first + k:06d}",
                "b_reference": reference_number(local.year, first + k),
            }
            for k, inv_id in enumerate(drafts)
        ]
        conn.execute(
            update(billing_invoices)
            .where(billing_invoices.c.id == bindparam("b_id"), billing_invoices.c.status == "draft")
            .values(
                status="issued",
                number=bindparam("b_number"),
                dae_reference=bindparam("b_reference"),
                issued_at=now,
                updated_at=now,
                due_date=due,
            ),
            params,
        )
        return drafts

    def due_for_issue(self, now: datetime) -> list[int]:
        """Monthly drafts whose grace period (days after the billed month) is over."""
        today = now.astimezone(SAO_PAULO).date()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(billing_invoices.c.id, billing_invoices.c.month)
                .where(
                    billing_invoices.c.status == "draft",
                    billing_invoices.c.invoice_kind == "monthly",
                )
                .order_by(billing_invoices.c.month, billing_invoices.c.partner_id)
            ).all()
        return [i for i, m in rows if month_bounds(m)[1] + timedelta(days=self.grace_days) < today]

    def issue_due(self, *, now: datetime | None = None) -> list[StoredInvoice]:
        now = now or datetime.now(UTC)
        return self.issue_many(self.due_for_issue(now), now=now)

    def void(self, invoice_id: int, reason: str, *, now: datetime | None = None) -> StoredInvoice:
        now = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            inv = _get(conn, invoice_id, lock=True)
            if inv.status not in ("draft", "issued"):
                raise InvoiceStateError(
                    invoice_id, inv.status, "void (a paid invoice is corrected by a credit note)"
                )
            paid = conn.execute(
                select(func.count()).where(billing_payments.c.invoice_id == invoice_id)
            ).scalar_one()
            if paid:
                raise InvoiceStateError(invoice_id, "partly paid", "void")
            conn.execute(
                update(billing_invoices)
                .where(billing_invoices.c.id == invoice_id)
                .values(status="void", voided_at=now, updated_at=now, void_reason=reason)
            )
            return _get(conn, invoice_id)

    def record_payment(
        self,
        dae_reference: str,
        amount_brl: Decimal,
        *,
        paid_on: date,
        note: str | None = None,
        now: datetime | None = None,
    ) -> StoredInvoice:
        """Record a DAE payment; the invoice is paid once payments cover total minus credits."""
        now = now or datetime.now(UTC)
        amount = Brl(amount_brl)
        if amount.amount <= 0:
            raise PaymentMismatch(dae_reference, "amount must be positive")
        with self.engine.begin() as conn:
            inv_id = conn.execute(
                select(billing_invoices.c.id).where(
                    billing_invoices.c.dae_reference == dae_reference
                )
            ).scalar_one_or_none()
            if inv_id is None:
                raise PaymentMismatch(dae_reference, "no issued invoice has this DAE reference")
            inv = _get(conn, inv_id, lock=True)
            if inv.status != "issued":
                raise PaymentMismatch(dae_reference, f"invoice {inv.number} is {inv.status}")
            conn.execute(
                insert(billing_payments).values(
                    invoice_id=inv.id,
                    dae_reference=dae_reference,
                    amount_brl=amount.amount,
                    paid_on=paid_on,
                    recorded_at=now,
                    note=note,
                )
            )
            paid = Brl.total(
                Brl(v)
                for v in conn.execute(
                    select(billing_payments.c.amount_brl).where(
                        billing_payments.c.invoice_id == inv.id
                    )
                ).scalars()
            )
            credited = Brl.total(
                Brl(v)
                for v in conn.execute(
                    select(billing_credit_notes.c.amount_brl).where(
                        billing_credit_notes.c.invoice_id == inv.id
                    )
                ).scalars()
            )
            if paid.amount >= inv.total_brl - credited.amount:
                conn.execute(
                    update(billing_invoices)
                    .where(billing_invoices.c.id == inv.id)
                    .values(status="paid", paid_at=now, updated_at=now)
                )
            return _get(conn, inv.id)

    def credit_note_in(
        self,
        conn: Connection,
        inv: StoredInvoice,
        amount_ufemg: Decimal,
        amount_brl: Decimal,
        reason: str,
        now: datetime,
        *,
        limit_ufemg: Decimal | None = None,
    ) -> int:
        """Create a credit note inside the caller's transaction; returns its id.

        Credits never exceed what was billed for the invoice: its total by default, or
        ``limit_ufemg`` when later adjustments billed more for the same month.
        """
        if inv.status not in ("issued", "paid"):
            raise InvoiceStateError(inv.id, inv.status, "credit (only issued invoices are)")
        credited = sum(
            conn.execute(
                select(billing_credit_notes.c.amount_ufemg).where(
                    billing_credit_notes.c.invoice_id == inv.id
                )
            ).scalars(),
            Decimal(0),
        )
        limit = inv.total_ufemg if limit_ufemg is None else limit_ufemg
        if amount_ufemg <= 0 or credited + amount_ufemg > limit:
            raise InvoiceStateError(
                inv.id,
                f"credited {credited} of {limit} UFEMG",
                f"credit {amount_ufemg} UFEMG more",
            )
        year = now.astimezone(SAO_PAULO).year
        seq = next_in_sequence(conn, f"credit-{year}")
        return int(
            conn.execute(
                insert(billing_credit_notes)
                .values(
                    number=f"NC-{year}/{seq:06d}",
                    invoice_id=inv.id,
                    amount_ufemg=Ufemg(amount_ufemg).amount,
                    amount_brl=Brl(amount_brl).amount,
                    reason=reason,
                    created_at=now,
                )
                .returning(billing_credit_notes.c.id)
            ).scalar_one()
        )

    def credit_note(
        self, invoice_id: int, amount_ufemg: Decimal, reason: str, *, now: datetime | None = None
    ) -> CreditNote:
        """A credit note against an issued invoice, converted at that invoice's UFEMG value."""
        now = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            inv = _get(conn, invoice_id, lock=True)
            brl = Ufemg(amount_ufemg).to_brl(inv.brl_per_ufemg).amount
            cid = self.credit_note_in(conn, inv, amount_ufemg, brl, reason, now)
            row = (
                conn.execute(select(billing_credit_notes).where(billing_credit_notes.c.id == cid))
                .mappings()
                .one()
            )
            return CreditNote(**{f: row[f] for f in CreditNote.__struct_fields__})

    def add_fine(
        self,
        partner_id: int,
        month: str,
        reason: str,
        *,
        amount_ufemg: Decimal | None = None,
        percent: Decimal | None = None,
        now: datetime | None = None,
    ) -> int:
        """Record an Art. 45 III fine to be billed on `month`'s invoice (still a draft or new)."""
        if (amount_ufemg is None) == (percent is None):
            raise ValueError("a fine is either an amount in UFEMG or a percentage, not both")
        with self.engine.begin() as conn:
            status = conn.execute(
                select(billing_invoices.c.status).where(
                    billing_invoices.c.partner_id == partner_id,
                    billing_invoices.c.invoice_kind == "monthly",
                    billing_invoices.c.month == month,
                )
            ).scalar_one_or_none()
            if status not in (None, "draft"):
                raise InvoiceStateError(
                    0, f"{month} {status}", "add a fine to it: bill it on a later month"
                )
            return int(
                conn.execute(
                    insert(billing_fines)
                    .values(
                        partner_id=partner_id,
                        month=month,
                        reason=reason,
                        amount_ufemg=amount_ufemg,
                        percent=percent,
                        decided_at=now or datetime.now(UTC),
                    )
                    .returning(billing_fines.c.id)
                ).scalar_one()
            )

    def create_request_invoice(
        self,
        *,
        kind: str,
        payer_name: str,
        payer_cnpj: str | None,
        lines: list[InvoiceLine],
        brl_per_ufemg: Decimal,
        partner_id: int | None = None,
        now: datetime | None = None,
    ) -> StoredInvoice:
        """A one-off invoice (Art. 9 analysis fee, Art. 12/14 on-demand budget), issued at once."""
        now = now or datetime.now(UTC)
        row: dict[str, Any] = {
            "partner_id": partner_id,
            "invoice_kind": kind,
            "month": None,
            "contract_kind": None,
            "status": "draft",
            "payer_name": payer_name,
            "payer_cnpj": payer_cnpj,
            "accesses": 0,
            "brl_per_ufemg": brl_per_ufemg,
            "total_ufemg": Ufemg.total(Ufemg(x.amount_ufemg) for x in lines).amount,
            "total_brl": Brl.total(Brl(x.amount_brl) for x in lines).amount,
            "created_at": now,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            inv_id = int(
                conn.execute(
                    insert(billing_invoices).values(**row).returning(billing_invoices.c.id)
                ).scalar_one()
            )
            conn.execute(insert(billing_invoice_lines), line_rows(inv_id, lines))
        return self.issue(inv_id, now=now)
