"""The monthly run and the invoice lifecycle against real SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.pool import StaticPool

from dataflow.billing.barcode import barcode_is_valid
from dataflow.billing.dae import Statement, statement_csv, write_statement_pdf
from dataflow.billing.errors import InvoiceStateError, PaymentMismatch
from dataflow.billing.reference import BillingReference
from dataflow.billing.service import BillingService
from dataflow.billing.tables import billing_invoice_lines, billing_invoices, billing_sequences
from dataflow.contracts.models import Plan
from dataflow.contracts.schema import ensure_schema
from dataflow.contracts.service import ContractsService

from .conftest import REPO, add_partner, set_usage

CONTINUOUS = (REPO / "examples" / "contract-continuous.toml").read_text()
ISSUE_TIME = datetime(2026, 4, 10, 12, tzinfo=UTC)


def _snapshot(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        invs = conn.execute(select(billing_invoices).order_by(billing_invoices.c.id)).all()
        lines = conn.execute(
            select(billing_invoice_lines).order_by(
                billing_invoice_lines.c.invoice_id, billing_invoice_lines.c.position
            )
        ).all()
    # updated_at moves only when a draft changes; keep every column
    return [tuple(r) for r in invs] + [tuple(r) for r in lines]


def test_run_is_idempotent_and_drafts_follow_late_usage(
    billing: BillingService, billing_engine: Engine
) -> None:
    p = add_partner(billing_engine, CONTINUOUS)
    sandbox = 'kind = "sandbox"\nstart = 2026-01-01\nend = 2026-12-31\ncap = 1000\n'
    s = add_partner(billing_engine, sandbox, name="Sandy", plan=Plan.SANDBOX, cap=1000)
    late = add_partner(billing_engine, None, name="Sandy later", plan=Plan.SANDBOX, cap=1)
    set_usage(billing_engine, p, "2026-03", 150_000)
    set_usage(billing_engine, s, "2026-03", 10)
    first = billing.run_month("2026-03", now=ISSUE_TIME)
    assert (first.created, first.updated, first.outside) == (2, 0, 1)  # created after March
    assert late not in {i.partner_id for i in billing.lifecycle.list_invoices()}
    before = _snapshot(billing_engine)
    again = billing.run_month("2026-03", now=ISSUE_TIME)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert _snapshot(billing_engine) == before
    set_usage(billing_engine, p, "2026-03", 260_000)  # late usage during the grace period
    assert billing.run_month("2026-03", now=ISSUE_TIME).updated == 1
    inv = next(i for i in billing.lifecycle.list_invoices(month="2026-03") if i.partner_id == p)
    assert inv.status == "draft" and inv.total_ufemg == Decimal("5500")


def test_issued_invoice_never_changes_late_usage_is_carried(
    billing: BillingService, billing_engine: Engine
) -> None:
    p = add_partner(billing_engine, CONTINUOUS)
    set_usage(billing_engine, p, "2026-03", 200_000)
    billing.run_month("2026-03", now=ISSUE_TIME)
    [issued] = billing.lifecycle.issue_due(now=ISSUE_TIME)
    assert issued.number == "2026/000001" and issued.total_ufemg == Decimal("4300")
    frozen = _snapshot(billing_engine)
    # 60,000 late accesses: 260,000 × 0.02 + 300 = 5,500 → 1,200 UFEMG more, on April's invoice
    set_usage(billing_engine, p, "2026-03", 260_000)
    run = billing.run_month("2026-03", now=ISSUE_TIME)
    assert run.adjustments == 1 and run.credit_notes == 0
    assert _snapshot(billing_engine) == frozen  # the issued invoice is untouched
    assert billing.run_month("2026-03", now=ISSUE_TIME).adjustments == 0  # rerun: nothing new
    set_usage(billing_engine, p, "2026-04", 200_000)
    billing.run_month("2026-04", now=ISSUE_TIME)
    april = next(i for i in billing.lifecycle.list_invoices(month="2026-04"))
    _, lines = billing.lifecycle.get(april.id)
    adj = [x for x in lines if x.code == "adjustment"]
    assert len(adj) == 1 and adj[0].amount_ufemg == Decimal("1200.0000")
    assert "2026/000001" in adj[0].description
    assert april.total_ufemg == Decimal("5500")  # 4,300 + 1,200
    # the ledger drops back to 230,000: 4,900 instead of 5,500 billed → credit note of 600
    set_usage(billing_engine, p, "2026-03", 230_000)
    run = billing.run_month("2026-03", now=ISSUE_TIME)
    assert run.credit_notes == 1
    [note] = billing.lifecycle.credit_notes(issued.id)
    assert note.amount_ufemg == Decimal("600.0000") and note.number == "NC-2026/000001"
    assert note.amount_brl == Decimal("3473.94")  # 6,100 × 5.7899 − 5,500 × 5.7899 (per line)
    # a big late count carried (+14,800), then the ledger falls to zero: the credit of 16,000
    # exceeds the invoice's own 4,300 but not what was billed for March (4,300 + 1,200 − 600 +
    # 15,400 = 20,300)
    set_usage(billing_engine, p, "2026-03", 1_000_000)  # 20,300 → +15,400 over the 4,900 billed
    assert billing.run_month("2026-03", now=ISSUE_TIME).adjustments == 1
    set_usage(billing_engine, p, "2026-03", 0)  # 4,300 (franchise): 16,000 to credit
    run = billing.run_month("2026-03", now=ISSUE_TIME)
    assert run.credit_notes == 1 and not run.skipped
    assert [n.amount_ufemg for n in billing.lifecycle.credit_notes(issued.id)] == [
        Decimal("600.0000"),
        Decimal("16000.0000"),
    ]


def test_numbering_has_no_gaps_and_lifecycle(
    billing: BillingService, billing_engine: Engine
) -> None:
    ids = [add_partner(billing_engine, CONTINUOUS, name=f"P{i}") for i in range(4)]
    for pid in ids:
        set_usage(billing_engine, pid, "2026-03", 100_000)
    billing.run_month("2026-03", now=ISSUE_TIME)
    drafts = billing.lifecycle.list_invoices(month="2026-03", status="draft")
    first = billing.lifecycle.issue(drafts[0].id, now=ISSUE_TIME)  # finance issues early
    with pytest.raises(InvoiceStateError):
        billing.lifecycle.issue(drafts[0].id, now=ISSUE_TIME)  # a failed issue takes no number
    billing.lifecycle.void(drafts[1].id, "duplicate partner")  # a void draft never had a number
    rest = billing.lifecycle.issue_due(now=ISSUE_TIME)
    numbers = [first.number] + [i.number for i in rest]
    assert numbers == ["2026/000001", "2026/000002", "2026/000003"]
    with billing_engine.connect() as conn:
        nxt = conn.execute(
            select(billing_sequences.c.next_value).where(billing_sequences.c.name == "invoice-2026")
        ).scalar_one()
    assert nxt == 4
    # payments against the DAE reference; partial then full
    inv = rest[0]
    assert inv.dae_reference is not None
    with pytest.raises(PaymentMismatch):
        billing.lifecycle.record_payment("999", Decimal("1"), paid_on=date(2026, 4, 20))
    half = (inv.total_brl / 2).quantize(Decimal("0.01"))
    assert (
        billing.lifecycle.record_payment(inv.dae_reference, half, paid_on=date(2026, 4, 20)).status
        == "issued"
    )
    paid = billing.lifecycle.record_payment(
        inv.dae_reference, inv.total_brl - half, paid_on=date(2026, 4, 21)
    )
    assert paid.status == "paid"
    with pytest.raises(InvoiceStateError):
        billing.lifecycle.void(inv.id, "too late")
    # issued invoices are never recomputed by a rerun, void ones never come back
    before = _snapshot(billing_engine)
    run = billing.run_month("2026-03", now=ISSUE_TIME)
    assert run.created == 0 and _snapshot(billing_engine) == before


def test_fine_request_invoices_and_statement(
    billing: BillingService, billing_engine: Engine, tmp_path: Path
) -> None:
    p = add_partner(billing_engine, CONTINUOUS)
    set_usage(billing_engine, p, "2026-03", 200_000)
    contracts = ContractsService(billing_engine)
    contracts.fine(p, "report late (CGMD decision 1/2026)", percent=Decimal(5), month="2026-03")
    billing.run_month("2026-03", now=ISSUE_TIME)
    [inv] = billing.lifecycle.issue_due(now=ISSUE_TIME)
    assert inv.total_ufemg == Decimal("4515")  # 4,300 + 5% of 4,300
    # a fine decided for a month already issued lands on the next draft, never on the issued one
    again = contracts.fine(p, "again", Decimal(1), month="2026-03")
    assert billing.run_month("2026-03", now=ISSUE_TIME).adjustments == 0
    set_usage(billing_engine, p, "2026-04", 200_000)
    billing.run_month("2026-04", now=ISSUE_TIME)
    [april] = billing.lifecycle.list_invoices(month="2026-04")
    [carried] = [x for x in billing.lifecycle.get(april.id)[1] if x.code == "fine"]
    assert carried.sanction_id == again.id and carried.amount_ufemg == Decimal(1)
    assert "decided for 2026-03" in carried.description
    _, lines = billing.lifecycle.get(inv.id)
    st_ = Statement(inv, lines, billing.ref.dae)
    assert barcode_is_valid(st_.barcode)
    assert st_.barcode[4:15] == f"{int(inv.total_brl * 100):011d}"
    pdf = write_statement_pdf(st_, tmp_path / "dae.pdf")
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 2000
    csv_text = statement_csv([st_])
    assert csv_text.count("\n") == len(lines) + 1 and st_.barcode in csv_text
    note = billing.lifecycle.credit_note(inv.id, Decimal("100"), "goodwill")
    assert note.amount_brl == Decimal("578.99")
    with pytest.raises(InvoiceStateError):
        billing.lifecycle.credit_note(inv.id, Decimal("5000"), "more than billed")


def _memory_engine() -> Engine:
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    ensure_schema(engine)
    return engine


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 600_000), min_size=1, max_size=5), st.booleans())
def test_rerunning_a_month_changes_nothing(usages: list[int], issue_between: bool) -> None:
    engine = _memory_engine()
    service = BillingService(engine, BillingReference.load(REPO / "datasets"))
    for n, accesses in enumerate(usages):
        pid = add_partner(engine, CONTINUOUS, name=f"P{n}")
        set_usage(engine, pid, "2026-03", accesses)
    service.run_month("2026-03", now=ISSUE_TIME)
    if issue_between:
        service.lifecycle.issue_due(now=ISSUE_TIME)
    before = _snapshot(engine)
    summary = service.run_month("2026-03", now=ISSUE_TIME)
    assert summary.created == summary.updated == summary.adjustments == 0
    assert _snapshot(engine) == before
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(billing_invoices)).scalar_one() == len(
            usages
        )
    engine.dispose()


def test_concurrent_issuers_never_share_or_skip_a_number(
    billing: BillingService, billing_engine: Engine
) -> None:
    """Finance issuing by hand while the job issues the rest: numbers stay 1..n, each once."""
    for i in range(12):
        pid = add_partner(billing_engine, CONTINUOUS, name=f"P{i}")
        set_usage(billing_engine, pid, "2026-03", 100_000 + i)
    billing.run_month("2026-03", now=ISSUE_TIME)
    ids = [i.id for i in billing.lifecycle.list_invoices(month="2026-03")]

    def issue_one(invoice_id: int) -> None:
        with contextlib.suppress(InvoiceStateError):  # the batch got there first
            billing.lifecycle.issue(invoice_id, now=ISSUE_TIME)

    with ThreadPoolExecutor(max_workers=6) as pool:
        batch = pool.submit(billing.lifecycle.issue_many, ids[::-1], now=ISSUE_TIME, batch=3)
        list(pool.map(issue_one, ids))
        batch.result()
    issued = billing.lifecycle.list_invoices(month="2026-03")
    assert {i.status for i in issued} == {"issued"}
    numbers = sorted(int(str(i.number).split("/")[1]) for i in issued)
    assert numbers == list(range(1, 13))
    assert len({i.dae_reference for i in issued}) == 12
