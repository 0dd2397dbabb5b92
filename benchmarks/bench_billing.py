"""Monthly billing run over 10,000 contracts vs one SQL aggregation of that month's ledger.

Figures: invoices/s of `run_month` (compute + write drafts), issues/s (gap-free numbering, one
transaction per invoice), DAE PDF statements/s, and the ratio of the run to a single
`SELECT partner_id, SUM(accesses) … GROUP BY partner_id` over the same ledger, in the same run.
Measured on SQLite and, when the local PostgreSQL answers, on PostgreSQL (a throw-away schema).
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

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


def _measure(url: str, tmp: str) -> dict[str, object]:
    rng = random.Random(8)
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

    out = Path(tmp) / f"dae-{uuid.uuid4().hex[:6]}"
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
    print(
        f"{url.split(':')[0]}: run {run:.2f}s, aggregation {aggregation * 1000:.1f} ms",
        file=sys.stderr,
    )
    return {
        "run_seconds": round(run, 3),
        "invoices_per_s": round(CONTRACTS / run, 1),
        "rerun_seconds": round(rerun, 3),
        "issue_per_s": round(CONTRACTS / issuing, 1),
        "pdf_statements_per_s": round(len(sample) / pdf, 1),
        "ledger_aggregation_ms": round(aggregation * 1000, 2),
        "ratio_run_over_aggregation": round(run / aggregation, 1),
    }


@contextmanager
def _postgres_schema() -> Iterator[str | None]:
    """A throw-away schema on the local PostgreSQL (the tests' server), or None if unreachable."""
    base = os.environ.get(
        "DATAFLOW_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    schema = f"dfbench_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(base)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except SQLAlchemyError as e:
        print(f"PostgreSQL not reachable ({e}); measuring SQLite only", file=sys.stderr)
        yield None
        return
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    runs: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs["sqlite"] = _measure(f"sqlite:///{tmp}/bench.db", tmp)
        with _postgres_schema() as pg:
            if pg is not None:
                runs["postgresql"] = _measure(pg, tmp)
    write_result(
        "billing",
        {
            "what": (
                f"monthly run over {CONTRACTS:,} contracts (linear, banded, partial first month, "
                f"sandbox) and {CONTRACTS:,} ledger rows; PDF figure over {PDF_SAMPLE} statements"
            ),
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
