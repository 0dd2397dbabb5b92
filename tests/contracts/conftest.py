"""Control-plane fixtures: a real database (SQLite and PostgreSQL) and a clock tests can move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService


class Clock:
    """A settable clock: lifecycle rules are about dates, so tests choose the date."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))  # noon in São Paulo


@pytest.fixture
def service(database_url: str, clock: Clock) -> ContractsService:
    return ContractsService(make_engine(database_url), clock=clock)
