"""The monthly billing job on APScheduler 3: thin — it finds the month and calls the service.

Persistent SQLAlchemy job store (the control-plane database), America/Sao_Paulo, cron on day 1.
Misfires (the process was down at 06:00 on day 1) still run within the grace time, coalesced into
one run; the run itself is idempotent, so running late or twice is harmless.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine

from dataflow.billing.lifecycle import SAO_PAULO
from dataflow.billing.reference import BillingReference
from dataflow.billing.service import BillingService
from dataflow.contracts.actors import SCHEDULER
from dataflow.contracts.repository import make_engine

__all__ = [
    "JOBS_TABLE",
    "JOB_ID",
    "MISFIRE_GRACE_SECONDS",
    "create_job_table",
    "make_scheduler",
    "monthly_billing",
    "previous_month",
    "schedule_monthly",
]

JOB_ID = "billing-monthly"
JOBS_TABLE = "billing_scheduler_jobs"
MISFIRE_GRACE_SECONDS = 3 * 24 * 3600  # a job missed by up to 3 days still runs (once)


def previous_month(now: datetime) -> str:
    local = now.astimezone(SAO_PAULO)
    y, m = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{y:04d}-{m:02d}"


def monthly_billing(
    database_url: str,
    datasets_dir: str,
    grace_days: int,
    month: str | None = None,
    trigger: str = "scheduler",
) -> dict[str, Any]:
    """Bill the previous month (São Paulo time) and issue drafts whose grace period is over.

    Module-level with plain arguments so the persistent job store can pickle its reference.
    """
    engine = make_engine(database_url)
    try:
        service = BillingService(
            engine, BillingReference.load(Path(datasets_dir)), grace_days=grace_days
        )
        now = datetime.now(UTC)
        summary = service.run_month(
            month or previous_month(now), trigger=trigger, now=now, actor=SCHEDULER
        )
        issued = service.lifecycle.issue_due(now=now, actor=SCHEDULER)
        return {"month": summary.month, "created": summary.created, "issued": len(issued)}
    finally:
        engine.dispose()


def create_job_table(owner_engine: Engine) -> None:
    """APScheduler's job table (it is APScheduler's, not a revision), made by the schema owner:
    the app's least-privilege role may not create tables (README, "Security")."""
    store = SQLAlchemyJobStore(engine=owner_engine, tablename=JOBS_TABLE)
    store.jobs_t.create(owner_engine, checkfirst=True)


def make_scheduler(engine: Engine, *, blocking: bool = False) -> BaseScheduler:
    cls = BlockingScheduler if blocking else BackgroundScheduler
    return cls(
        timezone=SAO_PAULO,
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": MISFIRE_GRACE_SECONDS,
        },
    )


def schedule_monthly(
    scheduler: BaseScheduler,
    *,
    database_url: str,
    datasets_dir: Path,
    grace_days: int,
    trigger: Any = None,
    month: str | None = None,
) -> None:
    """Add (or replace) the monthly job: day 1 at 06:00 São Paulo unless a trigger is given.

    ``month`` pins the billed month (tests, catch-up); by default each run bills the previous one.
    """
    scheduler.add_job(
        monthly_billing,
        trigger or CronTrigger(day=1, hour=6, minute=0, timezone=SAO_PAULO),
        id=JOB_ID,
        name="monthly billing (previous month) + issue drafts past grace",
        replace_existing=True,
        # stored with the job itself, so they hold whichever scheduler later loads it
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
        coalesce=True,
        max_instances=1,
        kwargs={
            "database_url": database_url,
            "datasets_dir": str(datasets_dir),
            "grace_days": grace_days,
            "month": month,
        },
    )
