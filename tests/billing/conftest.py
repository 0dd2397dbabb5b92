"""Billing fixtures: real SQL databases (SQLite and PostgreSQL), the shipped reference data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from dataflow.billing.reference import BillingReference
from dataflow.billing.service import BillingService
from dataflow.contracts.models import Plan
from dataflow.contracts.repository import make_engine
from dataflow.contracts.schema import ensure_schema
from dataflow.contracts.service import ContractsService

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def billing_reference() -> BillingReference:
    return BillingReference.load(REPO / "datasets")


@pytest.fixture
def billing_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def billing(billing_engine: Engine, billing_reference: BillingReference) -> BillingService:
    return BillingService(billing_engine, billing_reference, grace_days=3)


def add_partner(
    engine: Engine,
    toml: str | None,
    *,
    name: str = "Acme",
    plan: Plan = Plan.CONTINUOUS,
    cap: int | None = None,
) -> int:
    return (
        ContractsService(engine).create_partner(name, plan, monthly_cap=cap, contract_toml=toml).id
    )


def set_usage(engine: Engine, partner_id: int, month: str, accesses: int) -> None:
    ContractsService(engine).record_usage(partner_id, month, accesses)
