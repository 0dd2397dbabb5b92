"""Monthly billing run over 10,000 contracts vs one SQL aggregation of that month's ledger.

Figures: invoices/s of `run_month` (compute + write drafts), issues/s (gap-free numbering, one
transaction per invoice), DAE PDF statements/s, and the ratio of the run to a single
`SELECT partner_id, SUM(accesses) … GROUP BY partner_id` over the same ledger, in the same run.
SQLite by default; set DATAFLOW_BENCH_DATABASE_URL to a PostgreSQL URL to run there.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select

from benchmarks.common import write_result
from dataflow.billing.dae import Statement, statement_csv, write_statement_pdf
from dataflow.billing.reference import BillingReference
from dataflow.billing.service import BillingService
from dataflow.contracts.repository import ContractsRepository, make_engine
from dataflow.contracts.tables import partners, usage_ledger

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = 10_000
MONTH = "2026-03"
PDF_SAMPLE = 300


def _contract(rng: random.Random, i: int) -> tuple[str, str, int | None]:
    """A mix of contract shapes: linear, banded, partial first month, sandbox."""
    shape = i % 10
    if shape == 9:
        return "sandbox", 'kind = "sandbox"\nstart = 2026-01-01\nend = 2026-12-31\n', 50_000
    start = "2026-03-12" if shape == 8 else "2025-06-01"
    unit = rng.choice(["0.01", "0.015", "0.02", "0.03"])
    franchise = rng.choice([100_000, 150_000, 200_000, 300_000])
    toml = (
        f'kind = "continuous"\nstart = {start}\nunit_price_ufemg = "{unit}"\n'
        f'franchise_accesses = {franchise}\nsupport_ufemg = "300"\n'
        f'payer_name = "Parceiro {i:05d} Ltda"\n'
        '[readjustment]\nkind = "percent"\npercent = "4.5"\n'
    )
    if shape in (3, 4):
        toml += f'[[bands]]\nup_to = {franchise * 2}\nprice_ufemg = "{franchise * 2 * 0.8 * float(unit):.0f}"\n'  # noqa: E501
    return "continuous", toml, None


def _seed(engine: object, rng: random.Random) -> None:
    now = datetime.now(UTC)
    rows, ledger = [], []
    for i in range(CONTRACTS):
        plan, toml, cap = _contract(rng, i)
        rows.append(
            {
                "id": i + 1,
                "name": f"Partner {i}",
                "plan": plan,
                "monthly_cap": cap,
                "contract_toml": toml,
                "created_at": now,
            }
        )
        ledger.append(
            {
                "partner_id": i + 1,
                "month": MONTH,
                "accesses": int(rng.lognormvariate(11.5, 1.0)),
                "settled_at": now,
            }
        )
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(insert(partners), rows)
        conn.execute(insert(usage_ledger), ledger)


def main() -> None:
    rng = random.Random(8)
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("DATAFLOW_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.db"
        engine = make_engine(url)
        ContractsRepository.create_schema(engine)
        service = BillingService(engine, BillingReference.load(REPO / "datasets"), grace_days=0)
        _seed(engine, rng)

        aggregations = []
        for _ in range(5):
            t0 = time.perf_counter()
            with engine.connect() as conn:
                conn.execute(
                    select(usage_ledger.c.partner_id, func.sum(usage_ledger.c.accesses))
                    .where(usage_ledger.c.month == MONTH)
                    .group_by(usage_ledger.c.partner_id)
                ).all()
            aggregations.append(time.perf_counter() - t0)
        aggregation = min(aggregations)

        t0 = time.perf_counter()
        summary = service.run_month(MONTH, trigger="bench")
        run = time.perf_counter() - t0
        assert summary.created == CONTRACTS, summary
        t0 = time.perf_counter()
        rerun_summary = service.run_month(MONTH, trigger="bench")
        rerun = time.perf_counter() - t0
        assert rerun_summary.unchanged == CONTRACTS

        t0 = time.perf_counter()
        issued = service.lifecycle.issue_due(now=datetime(2026, 4, 10, 12, tzinfo=UTC))
        issuing = time.perf_counter() - t0
        assert len(issued) == CONTRACTS

        out = Path(tmp) / "dae"
        out.mkdir()
        sample = issued[:PDF_SAMPLE]
        t0 = time.perf_counter()
        statements = []
        for inv in sample:
            _, lines = service.lifecycle.get(inv.id)
            s = Statement(inv, lines, service.ref.dae)
            write_statement_pdf(s, out / f"dae-{inv.dae_reference}.pdf")
            statements.append(s)
        (out / "dae.csv").write_text(statement_csv(statements))
        pdf = time.perf_counter() - t0
        engine.dispose()
    backend = url.split(":", 1)[0]
    print(f"run {run:.2f}s, aggregation {aggregation * 1000:.1f} ms", file=sys.stderr)
    write_result(
        "billing",
        {
            "what": (
                f"monthly run over {CONTRACTS:,} contracts (linear, banded, partial, sandbox) "
                f"and {CONTRACTS:,} ledger rows on {backend}"
            ),
            "run_seconds": round(run, 3),
            "invoices_per_s": round(CONTRACTS / run, 1),
            "rerun_seconds": round(rerun, 3),
            "issue_per_s": round(CONTRACTS / issuing, 1),
            "pdf_statements_per_s": round(len(sample) / pdf, 1),
            "ledger_aggregation_ms": round(aggregation * 1000, 2),
            "ratio_run_over_aggregation": round(run / aggregation, 1),
        },
    )


if __name__ == "__main__":
    main()
