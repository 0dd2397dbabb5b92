"""The monthly job runs for real under APScheduler (persistent SQL job store) on both databases."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, inspect

from dataflow.billing.jobs import (
    JOB_ID,
    JOBS_TABLE,
    make_scheduler,
    monthly_billing,
    previous_month,
    schedule_monthly,
)
from dataflow.billing.lifecycle import SAO_PAULO
from dataflow.billing.reference import BillingReference
from dataflow.billing.service import BillingService

from .conftest import REPO, add_partner, set_usage

CONTINUOUS = (REPO / "examples" / "contract-continuous.toml").read_text()


def test_previous_month_is_sao_paulo_time() -> None:
    # 02:00 UTC on 1 March is still 28 February in São Paulo (UTC−3)
    assert previous_month(datetime(2026, 3, 1, 2, tzinfo=UTC)) == "2026-01"
    assert previous_month(datetime(2026, 3, 1, 4, tzinfo=UTC)) == "2026-02"
    assert previous_month(datetime(2026, 1, 15, tzinfo=UTC)) == "2025-12"


@pytest.mark.slow
def test_job_runs_under_apscheduler(
    database_url: str, billing_engine: Engine, billing_reference: BillingReference
) -> None:
    month = "2026-03"  # pinned: the clock-dependent default is tested above
    pid = add_partner(billing_engine, CONTINUOUS)
    set_usage(billing_engine, pid, month, 260_000)
    scheduler = make_scheduler(billing_engine)
    schedule_monthly(
        scheduler,
        database_url=database_url,
        datasets_dir=REPO / "datasets",
        grace_days=0,
        trigger=IntervalTrigger(seconds=1, timezone=SAO_PAULO),
        month=month,
    )
    scheduler.start()
    try:
        assert JOBS_TABLE in inspect(billing_engine).get_table_names()
        assert scheduler.get_job(JOB_ID) is not None  # persisted in the SQL job store
        service = BillingService(billing_engine, billing_reference)
        deadline = time.monotonic() + 30
        invoices = []
        while time.monotonic() < deadline:
            invoices = service.lifecycle.list_invoices(month=month)
            if invoices and invoices[0].status == "issued":
                break
            time.sleep(0.2)
        time.sleep(1.5)  # let the job fire again: reruns must not duplicate
    finally:
        scheduler.shutdown(wait=True)
    invoices = service.lifecycle.list_invoices(month=month)
    assert len(invoices) == 1
    inv = invoices[0]
    # previous month ended more than 0 grace days ago → the job issued it too
    assert inv.status == "issued" and inv.number is not None
    assert inv.total_ufemg == Decimal("5500")  # 260,000 × 0.02 + 300


@pytest.mark.slow
def test_missed_run_fires_after_restart(
    database_url: str, billing_engine: Engine, billing_reference: BillingReference
) -> None:
    """The process was down at the cron time: the persisted job runs once on restart."""
    pid = add_partner(billing_engine, CONTINUOUS)
    set_usage(billing_engine, pid, "2026-03", 100_000)
    # The first process only registers the job: an asyncio scheduler whose loop never runs, so
    # nothing can fire before the "crash".
    loop = asyncio.new_event_loop()
    first = AsyncIOScheduler(
        event_loop=loop,
        timezone=SAO_PAULO,
        jobstores={"default": SQLAlchemyJobStore(engine=billing_engine, tablename=JOBS_TABLE)},
    )
    first.start(paused=True)
    schedule_monthly(
        first,
        database_url=database_url,
        datasets_dir=REPO / "datasets",
        grace_days=0,
        month="2026-03",
    )
    missed = datetime.now(SAO_PAULO) - timedelta(hours=2)
    first.modify_job(JOB_ID, next_run_time=missed)
    first.shutdown(wait=False)
    loop.close()
    service = BillingService(billing_engine, billing_reference)
    assert service.lifecycle.list_invoices(month="2026-03") == []
    second = make_scheduler(billing_engine)  # same SQL job store: the job survived the restart
    second.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not service.lifecycle.list_invoices(month="2026-03"):
            time.sleep(0.2)
        job = second.get_job(JOB_ID)
        assert job is not None and job.next_run_time > datetime.now(SAO_PAULO)  # back on cron
        assert job.next_run_time.day == 1 and job.next_run_time.hour == 6
    finally:
        second.shutdown(wait=True)
    [inv] = service.lifecycle.list_invoices(month="2026-03")
    assert inv.total_ufemg == Decimal("4300")


def test_job_function_is_idempotent(
    database_url: str, billing_engine: Engine, billing_reference: BillingReference
) -> None:
    pid = add_partner(billing_engine, CONTINUOUS)
    set_usage(billing_engine, pid, "2026-03", 1)
    args = {"database_url": database_url, "datasets_dir": str(REPO / "datasets"), "grace_days": 5}
    first = monthly_billing(**args, month="2026-03")
    second = monthly_billing(**args, month="2026-03")
    assert first["created"] == 1 and second["created"] == 0
    assert first["issued"] == 1 and second["issued"] == 0
