"""Invoice lifecycle: draft → issued (immutable, numbered) → overdue → paid | void; credit notes;
payments.

Numbers are allocated inside the issuing transaction from a per-year series, so a failed issue
gives its number back and the series has no gaps. Every change is finance's (or the scheduler's)
and writes its audit entry, naming the actor, in its own transaction. The payment of a request's
DAE moves the request on (Art. 9 IV fee → ``pay_fee``, Art. 14 budget → ``accept``) in the same
transaction.
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
    billing_invoice_lines,
    billing_invoices,
    billing_payments,
)
from dataflow.contracts.actors import SYSTEM, Actor
from dataflow.contracts.errors import ForbiddenTransition
from dataflow.contracts.lifecycle import Event, allowed_events, next_state
from dataflow.contracts.models import Role
from dataflow.contracts.repository import ContractsRepository as Repo
from dataflow.contracts.service import ContractsService

__all__ = ["OPEN", "SAO_PAULO", "CreditNote", "InvoiceLifecycle"]

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
OPEN = ("issued", "overdue")  # issued and not paid: payable, voidable
# the request event a paid request DAE fires
_PAID_MOVES = {"analysis_fee": Event.PAY_FEE, "on_demand": Event.ACCEPT}


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


def _audit(
    conn: Connection,
    actor: Actor,
    action: str,
    after: msgspec.Struct,
    *,
    before: msgspec.Struct | None = None,
    entity: str = "invoice",
    entity_id: object = None,
    partner_id: int | None = None,
    at: datetime,
) -> None:
    Repo.audit(
        conn,
        actor=actor.name,
        action=action,
        entity=entity,
        entity_id=entity_id if entity_id is not None else getattr(after, "id", ""),
        partner_id=partner_id if partner_id is not None else getattr(after, "partner_id", None),
        before=before,
        after=after,
        at=at,
    )


class InvoiceLifecycle:
    def __init__(
        self,
        engine: Engine,
        reference: BillingReference,
        *,
        grace_days: int = 5,
        contracts: ContractsService | None = None,
    ):
        self.engine = engine
        self.ref = reference
        self.grace_days = grace_days
        self.contracts = contracts or ContractsService(engine, migrate=False)

    # -- reading ---------------------------------------------------------------------------

    def get(self, invoice_id: int) -> tuple[StoredInvoice, list[InvoiceLine]]:
        with self.engine.connect() as conn:
            inv = _get(conn, invoice_id)
            return inv, invoice_lines(conn, [invoice_id])[invoice_id]

    def get_in(self, conn: Connection, invoice_id: int) -> StoredInvoice:
        return _get(conn, invoice_id, lock=True)

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

    def issue(
        self, invoice_id: int, *, now: datetime | None = None, actor: Actor = SYSTEM
    ) -> StoredInvoice:
        """Number the draft, give it a DAE reference and a due date; from now on it is frozen."""
        actor.require(Role.FINANCE, action="issuing an invoice")
        with self.engine.begin() as conn:
            # _issue_in takes the locks in the one order every issuer uses: series, then rows
            if not self._issue_in(conn, [invoice_id], now or datetime.now(UTC), actor):
                inv = _get(conn, invoice_id)
                raise InvoiceStateError(invoice_id, inv.status, "issue (only drafts are issued)")
            return _get(conn, invoice_id)

    def issue_many(
        self,
        invoice_ids: list[int],
        *,
        now: datetime | None = None,
        batch: int = 500,
        actor: Actor = SYSTEM,
    ) -> list[StoredInvoice]:
        """Issue drafts in the given order, a batch per transaction (numbers stay gap-free)."""
        actor.require(Role.FINANCE, action="issuing invoices")
        now = now or datetime.now(UTC)
        out: list[StoredInvoice] = []
        for start in range(0, len(invoice_ids), batch):
            with self.engine.begin() as conn:
                done = self._issue_in(conn, invoice_ids[start : start + batch], now, actor)
                rows = conn.execute(
                    select(billing_invoices)
                    .where(billing_invoices.c.id.in_(done))
                    .order_by(billing_invoices.c.number)
                ).mappings()
                out += [StoredInvoice.from_row(r) for r in rows]
        return out

    def _issue_in(
        self, conn: Connection, invoice_ids: list[int], now: datetime, actor: Actor
    ) -> list[int]:
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
                issued_by=actor.name,
            ),
            params,
        )
        rows = conn.execute(select(billing_invoices).where(billing_invoices.c.id.in_(drafts)))
        for row in rows.mappings():
            _audit(conn, actor, "invoice.issue", StoredInvoice.from_row(row), at=now)
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

    def issue_due(
        self, *, now: datetime | None = None, actor: Actor = SYSTEM
    ) -> list[StoredInvoice]:
        now = now or datetime.now(UTC)
        return self.issue_many(self.due_for_issue(now), now=now, actor=actor)

    def mark_overdue(
        self, *, now: datetime | None = None, actor: Actor = SYSTEM
    ) -> list[StoredInvoice]:
        """Issued invoices whose due date has passed (America/Sao_Paulo) become ``overdue``.

        Nothing else happens to the partner: an Art. 45 warning is only ever proposed
        (``warning_proposals``), never imposed or turned into a suspension here.
        """
        actor.require(Role.FINANCE, action="marking invoices overdue")
        now = now or datetime.now(UTC)
        today = now.astimezone(SAO_PAULO).date()
        with self.engine.begin() as conn:
            late = conn.execute(
                select(billing_invoices)
                .where(billing_invoices.c.status == "issued", billing_invoices.c.due_date < today)
                .order_by(billing_invoices.c.id)
                .with_for_update()
            ).mappings()
            before = [StoredInvoice.from_row(r) for r in late]
            if not before:
                return []
            conn.execute(
                update(billing_invoices)
                .where(
                    billing_invoices.c.id.in_([i.id for i in before]),
                    billing_invoices.c.status == "issued",
                )
                .values(status="overdue", updated_at=now)
            )
            out = []
            for inv in before:
                after = _get(conn, inv.id)
                _audit(conn, actor, "invoice.overdue", after, before=inv, at=now)
                out.append(after)
            return out

    def overdue(self, *, partner_id: int | None = None) -> list[StoredInvoice]:
        q = select(billing_invoices).where(billing_invoices.c.status == "overdue")
        if partner_id is not None:
            q = q.where(billing_invoices.c.partner_id == partner_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(billing_invoices.c.due_date)).mappings()
            return [StoredInvoice.from_row(r) for r in rows]

    def warning_proposals(self, after_days: int, *, now: datetime | None = None) -> list[str]:
        """Art. 45 I warnings to consider for invoices overdue more than ``after_days`` days.

        Proposals only: a person decides (``partner warn``); nothing is imposed.
        """
        today = (now or datetime.now(UTC)).astimezone(SAO_PAULO).date()
        return [
            f"partner {inv.partner_id}: invoice {inv.number} (DAE {inv.dae_reference}) is "
            f"{(today - inv.due_date).days} days overdue: consider an Art. 45 I warning "
            f"(`dataflow partner warn {inv.partner_id} --reason …`)"
            for inv in self.overdue()
            if inv.partner_id is not None
            and inv.due_date is not None
            and (today - inv.due_date).days > after_days
        ]

    def void(
        self,
        invoice_id: int,
        reason: str,
        *,
        now: datetime | None = None,
        actor: Actor = SYSTEM,
    ) -> StoredInvoice:
        actor.require(Role.FINANCE, action="voiding an invoice")
        now = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            inv = _get(conn, invoice_id, lock=True)
            if inv.status not in ("draft", *OPEN):
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
                .values(
                    status="void",
                    voided_at=now,
                    updated_at=now,
                    void_reason=reason,
                    voided_by=actor.name,
                )
            )
            after = _get(conn, invoice_id)
            _audit(conn, actor, "invoice.void", after, before=inv, at=now)
            return after

    def record_payment(
        self,
        dae_reference: str,
        amount_brl: Decimal,
        *,
        paid_on: date,
        note: str | None = None,
        now: datetime | None = None,
        actor: Actor = SYSTEM,
    ) -> StoredInvoice:
        """Record a DAE payment; the invoice is paid once payments cover total minus credits.

        A request's DAE that becomes paid moves its request on in the same transaction: the
        analysis fee (Art. 9 IV) fires ``pay_fee``, the budget (Art. 14) ``accept``.
        """
        actor.require(Role.FINANCE, action="recording a payment")
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
            if inv.status not in OPEN:
                raise PaymentMismatch(dae_reference, f"invoice {inv.number} is {inv.status}")
            pay_id = int(
                conn.execute(
                    insert(billing_payments)
                    .values(
                        invoice_id=inv.id,
                        dae_reference=dae_reference,
                        amount_brl=amount.amount,
                        paid_on=paid_on,
                        recorded_at=now,
                        note=note,
                        recorded_by=actor.name,
                    )
                    .returning(billing_payments.c.id)
                ).scalar_one()
            )
            payment = _Payment(
                id=pay_id, invoice_id=inv.id, dae_reference=dae_reference, amount_brl=amount.amount
            )
            _audit(
                conn,
                actor,
                "payment.record",
                payment,
                entity="payment",
                partner_id=inv.partner_id,
                at=now,
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
                _audit(conn, actor, "invoice.paid", _get(conn, inv.id), before=inv, at=now)
                self._move_request(conn, inv, actor)
            return _get(conn, inv.id)

    def _move_request(self, conn: Connection, inv: StoredInvoice, actor: Actor) -> None:
        """A paid fee or budget DAE fires its request's event, if the request still waits for it
        (a paper payment recorded by hand with ``contract pay-fee``/``accept`` came first)."""
        event = _PAID_MOVES.get(inv.invoice_kind)
        if inv.contract_id is None or event is None:
            return
        contract = self.contracts.contract_in(conn, inv.contract_id)
        if next_state(contract.kind, contract.state, event) is not None:
            self.contracts.transition_in(conn, contract.id, event, actor=actor)

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
        sanction_id: int | None = None,
        actor: Actor = SYSTEM,
    ) -> int:
        """Create a credit note inside the caller's transaction; returns its id.

        Credits never exceed what was billed for the invoice: its total by default, or
        ``limit_ufemg`` when later adjustments billed more for the same month.
        """
        if inv.status not in (*OPEN, "paid"):
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
        cid = int(
            conn.execute(
                insert(billing_credit_notes)
                .values(
                    number=f"NC-{year}/{seq:06d}",
                    invoice_id=inv.id,
                    amount_ufemg=Ufemg(amount_ufemg).amount,
                    amount_brl=Brl(amount_brl).amount,
                    reason=reason,
                    created_at=now,
                    created_by=actor.name,
                    sanction_id=sanction_id,
                )
                .returning(billing_credit_notes.c.id)
            ).scalar_one()
        )
        note = _credit(conn, cid)
        _audit(
            conn,
            actor,
            "credit_note.create",
            note,
            entity="credit_note",
            partner_id=inv.partner_id,
            at=now,
        )
        return cid

    def credit_note(
        self,
        invoice_id: int,
        amount_ufemg: Decimal,
        reason: str,
        *,
        now: datetime | None = None,
        actor: Actor = SYSTEM,
    ) -> CreditNote:
        """A credit note against an issued invoice, converted at that invoice's UFEMG value."""
        actor.require(Role.FINANCE, action="issuing a credit note")
        now = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            inv = _get(conn, invoice_id, lock=True)
            brl = Ufemg(amount_ufemg).to_brl(inv.brl_per_ufemg).amount
            cid = self.credit_note_in(conn, inv, amount_ufemg, brl, reason, now, actor=actor)
            return _credit(conn, cid)

    def create_request_invoice(
        self,
        *,
        kind: str,
        payer_name: str,
        payer_cnpj: str | None,
        lines: list[InvoiceLine],
        brl_per_ufemg: Decimal,
        partner_id: int | None = None,
        contract_id: int | None = None,
        budget_ufemg: Decimal | None = None,
        now: datetime | None = None,
        actor: Actor = SYSTEM,
    ) -> StoredInvoice:
        """A one-off invoice (Art. 9 analysis fee, Art. 12/14 on-demand budget), issued at once.

        With ``contract_id`` it belongs to that request: its payment moves the request on, and
        a budget's DAE records the budget on the request (``issue_budget``) as it is issued.
        """
        actor.require(Role.FINANCE, action="issuing a request DAE")
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
            "contract_id": contract_id,
        }
        with self.engine.begin() as conn:
            if contract_id is not None:
                self._check_request(conn, contract_id, kind, row, budget_ufemg, actor)
            inv_id = int(
                conn.execute(
                    insert(billing_invoices).values(**row).returning(billing_invoices.c.id)
                ).scalar_one()
            )
            conn.execute(insert(billing_invoice_lines), line_rows(inv_id, lines))
            self._issue_in(conn, [inv_id], now, actor)
            return _get(conn, inv_id)

    def _check_request(
        self,
        conn: Connection,
        contract_id: int,
        kind: str,
        row: dict[str, Any],
        budget_ufemg: Decimal | None,
        actor: Actor,
    ) -> None:
        """The request must be waiting for this DAE; a budget is recorded on it at once."""
        contract = self.contracts.contract_in(conn, contract_id)
        row["partner_id"] = contract.partner_id
        waits = Event.PAY_FEE if kind == "analysis_fee" else Event.ISSUE_BUDGET
        if next_state(contract.kind, contract.state, waits) is None:
            allowed = [e.value for e in allowed_events(contract.kind, contract.state)]
            raise ForbiddenTransition(contract.id, contract.state.value, waits.value, allowed)
        if waits is Event.ISSUE_BUDGET:
            self.contracts.transition_in(
                conn, contract_id, Event.ISSUE_BUDGET, actor=actor, budget_ufemg=budget_ufemg
            )


class _Payment(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    invoice_id: int
    dae_reference: str
    amount_brl: Decimal


def _credit(conn: Connection, cid: int) -> CreditNote:
    row = (
        conn.execute(select(billing_credit_notes).where(billing_credit_notes.c.id == cid))
        .mappings()
        .one()
    )
    return CreditNote(**{f: row[f] for f in CreditNote.__struct_fields__})
