"""The billing month and day of an access (cached per minute) match the Sao Paulo calendar."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from dataflow.contracts.models import Entitlement, Plan
from dataflow.metering.models import SAO_PAULO, access_for, billing_month


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
)
def test_access_month_and_day_are_the_sao_paulo_calendar(at: datetime) -> None:
    access = access_for(Entitlement(partner_id=1, plan=Plan.SANDBOX), key_id="k", table="t", at=at)
    assert access.month == billing_month(at)
    assert access.day == at.astimezone(SAO_PAULO).date()


def test_midnight_in_sao_paulo_switches_the_month() -> None:
    entitlement = Entitlement(partner_id=1, plan=Plan.SANDBOX)
    before = access_for(
        entitlement, key_id="k", table="t", at=datetime(2026, 12, 1, 2, 59, tzinfo=UTC)
    )
    after = access_for(
        entitlement, key_id="k", table="t", at=datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    )
    assert (before.month, after.month) == ("2026-11", "2026-12")
