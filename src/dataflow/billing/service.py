"""The monthly run: bill every contract for a month, idempotently.

A rerun never duplicates or alters an issued invoice: drafts are recomputed (late usage still
lands during the grace period); for an issued month the difference becomes an adjustment carried
onto the partner's next draft, or a credit note when the partner was over-billed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import Engine, insert, update

from dataflow.billing.compute import Carried, MonthOutsideContract, compute_invoice
from dataflow.billing.errors import BillingError
from dataflow.billing.lifecycle import InvoiceLifecycle
from dataflow.billing.models import Invoice
from dataflow.billing.reference import BillingReference
from dataflow.billing.repository import (
    BillableContract,
    StoredInvoice,
    adjustments_rows,
    billable_contracts,
    fines_to_bill,
    invoice_lines,
    invoices_for_month,
    lifted_billed_fines,
    line_rows,
    monthly_usage,
    replace_lines,
)
from dataflow.billing.tables import (
    billing_adjustments,
    billing_invoice_lines,
    billing_invoices,
    billing_runs,
)
from dataflow.contracts.actors import SYSTEM, Actor
from dataflow.contracts.models import Role
from dataflow.contracts.repository import ContractsRepository as Repo
from dataflow.contracts.schema import ensure_schema

__all__ = ["BillingService", "RunSummary", "compute_invoice"]

Progress = Callable[[int, int], None]


class RunSummary(msgspec.Struct, kw_only=True):
    month: str
    run_id: int = 0
    contracts: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    outside: int = 0
    adjustments: int = 0
    credit_notes: int = 0
    issued: int = 0
    skipped: list[tuple[int, str]] = []
    draft_total_ufemg: Decimal = Decimal(0)
    # reference values that are examples (datasets/dae.toml): the drafts' DAEs will carry them
    example_values: list[str] = []
    fine_credits: int = 0  # fines lifted after an issued invoice billed them, credited now
    overdue: list[str] = []  # invoice numbers that became overdue in this run
    warning_proposals: list[str] = []  # Art. 45 I warnings to consider (never imposed here)


def _carried(row: Any, number: str | None) -> Carried:
    where = f" after invoice {number} was issued" if number else ""
    return Carried(
        code="adjustment",
        description=(
            f"Adjustment for {row['for_month']}: settled accesses {row['accesses_from']:,} → "
            f"{row['accesses_to']:,}{where}"
        ),
        amount_ufemg=row["amount_ufemg"],
        amount_brl=row["amount_brl"],
        params={
            "for_month": row["for_month"],
            "from": str(row["accesses_from"]),
            "to": str(row["accesses_to"]),
            **({"number": number} if number else {}),
        },
    )


def _invoice_row(
    pid: int, payer: tuple[str, str | None], inv: Invoice, now: datetime
) -> dict[str, object]:
    return {
        "partner_id": pid,
        "invoice_kind": "monthly",
        "month": inv.month,
        "contract_kind": inv.kind.value,
        "status": "draft",
        "payer_name": payer[0],
        "payer_cnpj": payer[1],
        "accesses": inv.accesses,
        "brl_per_ufemg": inv.brl_per_ufemg,
        "total_ufemg": inv.total_ufemg,
        "total_brl": inv.total_brl,
        "period_start": inv.period_start,
        "period_end": inv.period_end,
        "created_at": now,
        "updated_at": now,
    }


def _audit_run(conn: Any, action: str, summary: RunSummary, actor: Actor, at: datetime) -> None:
    Repo.audit(
        conn,
        actor=actor.name,
        action=action,
        entity="billing_run",
        entity_id=summary.run_id,
        partner_id=None,
        after=summary,
        at=at,
    )


class BillingService:
    """Stateless but for the engine and reference data; each call owns its transactions."""

    def __init__(
        self,
        engine: Engine,
        reference: BillingReference,
        *,
        grace_days: int = 5,
        overdue_warning_days: int | None = None,
    ):
        self.engine = engine
        self.ref = reference
        self.grace_days = grace_days
        # off by default: with N, invoices overdue more than N days propose an Art. 45 warning
        self.overdue_warning_days = overdue_warning_days
        ensure_schema(engine)  # Alembic: billing tables are revisions like every other table
        self.lifecycle = InvoiceLifecycle(engine, reference, grace_days=grace_days)

    def run_month(
        self,
        month: str,
        *,
        trigger: str = "cli",
        now: datetime | None = None,
        progress: Progress | None = None,
        chunk: int = 2000,
        actor: Actor = SYSTEM,
    ) -> RunSummary:
        actor.require(Role.FINANCE, action="a billing run")
        now = now or datetime.now(UTC)
        summary = RunSummary(month=month, example_values=self.ref.example_values())
        with self.engine.begin() as conn:
            summary.run_id = int(
                conn.execute(
                    insert(billing_runs)
                    .values(month=month, trigger=trigger, started_at=now, actor=actor.name)
                    .returning(billing_runs.c.id)
                ).scalar_one()
            )
            _audit_run(conn, "billing.run.start", summary, actor, now)
            self._credit_lifted_fines(conn, now, summary, actor)
        summary.overdue = [
            i.number or str(i.id) for i in self.lifecycle.mark_overdue(now=now, actor=actor)
        ]
        if self.overdue_warning_days is not None:
            summary.warning_proposals = self.lifecycle.warning_proposals(
                self.overdue_warning_days, now=now
            )
        with self.engine.connect() as conn:
            contracts = billable_contracts(conn)
            usage = monthly_usage(conn, month)
            existing = invoices_for_month(conn, month)
            fines = fines_to_bill(conn, month, existing)
            ids = [i.id for i in existing.values()]
            drafts = [i.id for i in existing.values() if i.status == "draft"]
            stored_lines = invoice_lines(conn, drafts)
            applied: dict[int, list[Any]] = {}
            pending: dict[int, list[Any]] = {}
            month_adjs: dict[int, list[Any]] = {}
            for row in adjustments_rows(conn):
                if row["applied_invoice_id"] in ids:
                    applied.setdefault(row["applied_invoice_id"], []).append(row)
                elif (
                    row["applied_invoice_id"] is None
                    and row["credit_note_id"] is None
                    and row["for_month"] < month
                ):
                    pending.setdefault(row["partner_id"], []).append(row)
                if row["for_month"] == month:
                    month_adjs.setdefault(row["partner_id"], []).append(row)
            numbers = self.lifecycle.numbers_of(
                {r["for_month"] for rs in pending.values() for r in rs}
            )
        summary.contracts = len(contracts)
        for start in range(0, len(contracts), chunk):
            part = contracts[start : start + chunk]
            with self.engine.begin() as conn:
                self._bill_chunk(
                    conn,
                    part,
                    month,
                    usage,
                    existing,
                    fines,
                    stored_lines,
                    applied,
                    pending,
                    month_adjs,
                    numbers,
                    now,
                    summary,
                    actor,
                )
            if progress is not None:
                progress(min(start + chunk, len(contracts)), len(contracts))
        with self.engine.begin() as conn:
            conn.execute(
                update(billing_runs)
                .where(billing_runs.c.id == summary.run_id)
                .values(
                    finished_at=datetime.now(UTC),
                    created=summary.created,
                    updated=summary.updated,
                    unchanged=summary.unchanged,
                    adjustments=summary.adjustments,
                    credit_notes=summary.credit_notes + summary.fine_credits,
                    skipped=len(summary.skipped),
                    overdue=len(summary.overdue),
                    detail="; ".join(
                        [f"{p}: {why}" for p, why in summary.skipped]
                        + [f"overdue: {', '.join(summary.overdue)}"] * bool(summary.overdue)
                        + summary.warning_proposals
                    )
                    or None,
                )
            )
            _audit_run(conn, "billing.run.finish", summary, actor, datetime.now(UTC))
        return summary

    def _credit_lifted_fines(
        self, conn: Any, now: datetime, summary: RunSummary, actor: Actor
    ) -> None:
        """A fine lifted after an issued invoice billed it is credited back, once (Art. 45 III
        decisions can be withdrawn; an issued invoice is never edited)."""
        for row in lifted_billed_fines(conn):
            inv = self.lifecycle.get_in(conn, row.invoice_id)
            self.lifecycle.credit_note_in(
                conn,
                inv,
                row.amount_ufemg,
                row.amount_brl,
                f"fine withdrawn (sanction {row.sanction_id} lifted): {row.reason}",
                now,
                sanction_id=row.sanction_id,
                actor=actor,
            )
            summary.fine_credits += 1

    def _bill_chunk(
        self,
        conn: Any,
        part: list[BillableContract],
        month: str,
        usage: dict[int, int],
        existing: dict[int, StoredInvoice],
        fines: dict[int, list[Any]],
        stored_lines: dict[int, list[Any]],
        applied: dict[int, list[Any]],
        pending: dict[int, list[Any]],
        month_adjs: dict[int, list[Any]],
        numbers: dict[tuple[int, str], str | None],
        now: datetime,
        summary: RunSummary,
        actor: Actor,
    ) -> None:
        new_rows: list[dict[str, object]] = []
        new_invoices: list[tuple[int, Invoice, list[Any]]] = []
        for c in part:
            pid = c.partner_id
            if c.terms is None:
                summary.skipped.append((pid, c.problem or "no terms"))
                continue
            ex = existing.get(pid)
            carry_rows = (applied.get(ex.id, []) if ex else []) + (
                pending.get(pid, []) if ex is None or ex.status == "draft" else []
            )
            carried = [_carried(r, numbers.get((pid, r["for_month"]))) for r in carry_rows]
            try:
                inv = compute_invoice(
                    c.terms,
                    accesses=usage.get(pid, 0),
                    month=month,
                    ufemg=self.ref.ufemg,
                    indices=self.ref.indices,
                    fines=fines.get(pid, []),
                    carried=carried,
                )
            except MonthOutsideContract:
                summary.outside += 1
                for fine in fines.get(pid, []):  # never dropped silently: the run log says so
                    summary.skipped.append(
                        (pid, f"fine (sanction {fine.sanction_id}) waits: no supply in {month}")
                    )
                continue
            except BillingError as e:
                summary.skipped.append((pid, str(e)))
                continue
            payer = (c.terms.payer_name or c.partner_name, c.terms.payer_cnpj)
            if ex is None:
                new_rows.append(_invoice_row(pid, payer, inv, now))
                new_invoices.append((pid, inv, carry_rows))
                summary.draft_total_ufemg += inv.total_ufemg
            elif ex.status == "draft":
                summary.draft_total_ufemg += inv.total_ufemg
                same = (
                    stored_lines.get(ex.id) == inv.lines
                    and ex.accesses == inv.accesses
                    and ex.total_brl == inv.total_brl
                )
                if same:
                    summary.unchanged += 1
                    continue
                row = _invoice_row(pid, payer, inv, now)
                del row["created_at"], row["status"]
                conn.execute(
                    update(billing_invoices)
                    .where(billing_invoices.c.id == ex.id, billing_invoices.c.status == "draft")
                    .values(**row)
                )
                replace_lines(conn, ex.id, inv.lines)
                self._mark_applied(conn, ex.id, carry_rows)
                summary.updated += 1
            elif ex.status in ("issued", "overdue", "paid"):
                try:
                    self._late_usage(conn, ex, inv, month_adjs.get(pid, []), now, summary, actor)
                except BillingError as e:  # checked before any write: the chunk stays sound
                    summary.skipped.append((pid, str(e)))
            else:  # void: finance cancelled it; a rerun must not bring it back
                summary.unchanged += 1
        if new_rows:
            got = conn.execute(
                insert(billing_invoices).returning(
                    billing_invoices.c.id,
                    billing_invoices.c.partner_id,
                    sort_by_parameter_order=True,
                ),
                new_rows,
            ).all()
            lines: list[dict[str, object]] = []
            for (inv_id, _pid), (_, inv, carry_rows) in zip(got, new_invoices, strict=True):
                lines += line_rows(inv_id, inv.lines)
                self._mark_applied(conn, inv_id, carry_rows)
            if lines:
                conn.execute(insert(billing_invoice_lines), lines)
            summary.created += len(got)

    @staticmethod
    def _mark_applied(conn: Any, invoice_id: int, rows: list[Any]) -> None:
        fresh = [r["id"] for r in rows if r["applied_invoice_id"] != invoice_id]
        if fresh:
            conn.execute(
                update(billing_adjustments)
                .where(billing_adjustments.c.id.in_(fresh))
                .values(applied_invoice_id=invoice_id)
            )

    def _late_usage(
        self,
        conn: Any,
        ex: StoredInvoice,
        inv: Invoice,
        adjs: list[Any],
        now: datetime,
        summary: RunSummary,
        actor: Actor,
    ) -> None:
        """The month was issued: bill only the difference, as an adjustment or a credit note."""
        billed_ufemg = ex.total_ufemg + sum((r["amount_ufemg"] for r in adjs), Decimal(0))
        billed_brl = ex.total_brl + sum((r["amount_brl"] for r in adjs), Decimal(0))
        last = adjs[-1]["accesses_to"] if adjs else ex.accesses
        d_ufemg, d_brl = inv.total_ufemg - billed_ufemg, inv.total_brl - billed_brl
        if inv.accesses == last or (d_ufemg == 0 and d_brl == 0):
            summary.unchanged += 1
            return
        credit_id = None
        if d_ufemg < 0:
            credit_id = self.lifecycle.credit_note_in(
                conn,
                ex,
                -d_ufemg,
                -d_brl,
                f"settled accesses for {ex.month} fell from {last:,} to {inv.accesses:,}",
                now,
                limit_ufemg=billed_ufemg,
                actor=actor,
            )
            summary.credit_notes += 1
        conn.execute(
            insert(billing_adjustments).values(
                partner_id=ex.partner_id,
                for_month=ex.month,
                accesses_from=last,
                accesses_to=inv.accesses,
                amount_ufemg=d_ufemg,
                amount_brl=d_brl,
                credit_note_id=credit_id,
                created_at=now,
            )
        )
        summary.adjustments += 1
