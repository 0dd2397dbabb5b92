"""What finance reads (month close, revenue, pages of invoices) and that every invoice action is
in the audit log with its actor, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import Engine

from dataflow.billing.reading.reports import BillingReports
from dataflow.billing.service import BillingService
from dataflow.contracts.actors import Actor
from dataflow.contracts.models import Plan, Role
from dataflow.contracts.service import ContractsService
from tests.billing.conftest import REPO, add_partner, set_usage

CONTINUOUS = (REPO / "examples" / "contract-continuous.toml").read_text()
NOW = datetime(2026, 4, 10, 12, tzinfo=UTC)
FIN = Actor("staff:Fernanda(finance)", Role.FINANCE)


def test_month_close_revenue_pages_and_the_audit_trail(
    billing: BillingService, billing_engine: Engine
) -> None:
    a = add_partner(billing_engine, CONTINUOUS, name="Acme")
    b = add_partner(billing_engine, CONTINUOUS, name="Beta")
    s = add_partner(
        billing_engine,
        'kind = "sandbox"\nstart = 2026-01-01\nend = 2026-12-31\ncap = 9\n',
        name="Sandy",
        plan=Plan.SANDBOX,
    )
    for pid, n in ((a, 150_000), (b, 260_000), (s, 5)):
        set_usage(billing_engine, pid, "2026-03", n)
    summary = billing.run_month("2026-03", now=NOW, actor=FIN)
    assert summary.created == 3
    life = billing.lifecycle
    by_partner = {i.partner_id: i for i in life.list_invoices(month="2026-03")}
    issued = life.issue_many([by_partner[a].id, by_partner[b].id], now=NOW, actor=FIN)
    assert len(issued) == 2
    paid = life.record_payment(
        issued[0].dae_reference or "", issued[0].total_brl, paid_on=date(2026, 4, 20), actor=FIN
    )
    assert paid.status == "paid"
    life.credit_note(issued[1].id, Decimal(100), "acerto", now=NOW, actor=FIN)
    life.void(by_partner[s].id, "teste", now=NOW, actor=FIN)

    reports = BillingReports(billing_engine)
    close = reports.month_close("2026-03", today=date(2026, 4, 30))  # past the due date
    assert close.of("paid").count == 1 and close.of("overdue").count == 1
    assert close.of("issued").count == 0 and close.of("void").count == 1
    # 4,300 + 5,500 UFEMG (DESIGN §8's worked example), the sandbox void
    assert close.billed.total_ufemg == Decimal("9800.0000")
    assert close.billed.total_brl == issued[0].total_brl + issued[1].total_brl
    assert close.accesses == 410_000
    assert close.runs[0]["trigger"] == "cli"
    early = reports.month_close("2026-03", today=date(2026, 4, 11))
    assert early.of("issued").count == 1 and early.of("overdue").count == 0

    (revenue,) = reports.revenue_by_month()
    assert revenue.month == "2026-03" and revenue.invoices == 2
    assert revenue.billed_brl == close.billed.total_brl and revenue.paid_brl == paid.total_brl

    page = reports.invoices(today=date(2026, 4, 30), month="2026-03", per_page=2)
    assert page.total == 3 and page.pages == 2 and len(page.rows) == 2
    overdue = reports.invoices(today=date(2026, 4, 30), status="overdue")
    assert [r.invoice.partner_id for r in overdue.rows] == [b] and overdue.rows[0].overdue
    assert [r.partner_name for r in reports.invoices(today=NOW.date(), partner_id=s).rows] == [
        "Sandy"
    ]
    assert len(reports.payments(paid.id)) == 1
    assert life.credit_notes(issued[1].id)[0].reason == "acerto"

    trail = ContractsService(billing_engine).audit(limit=1000)
    mine = [(e.action, e.entity_id) for e in trail if e.actor == FIN.name]
    assert ("billing.run.finish", str(summary.run_id)) in mine
    assert {("invoice.issue", str(i.id)) for i in issued} <= set(mine)
    assert ("invoice.paid", str(paid.id)) in mine and "payment.record" in {a for a, _ in mine}
    assert "credit_note.create" in {a for a, _ in mine}
    assert ("invoice.void", str(by_partner[s].id)) in mine
