"""Worked cases, each with its arithmetic written out (Art. 10, 13, 29, 45; DESIGN §8).

Unless a case says otherwise: unit 0.02 UFEMG, franchise 200,000, support 300, start 2026-01-01,
billed month 2026-03 (31 days), UFEMG 2026 = R$ 5.7899.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflow.billing.compute import Carried, MonthOutsideContract, compute_invoice
from dataflow.billing.models import Fine
from dataflow.billing.money import Brl
from dataflow.billing.reference import BillingReference
from dataflow.contracts.models import Plan
from dataflow.contracts.terms import Amendment, Band, ContractTerms, Readjustment, ReadjustmentKind

from .conftest import REPO

REF = BillingReference.load(REPO / "datasets")
BANDS = [
    Band(up_to=200_000, price_ufemg=Decimal("3800")),
    Band(up_to=300_000, price_ufemg=Decimal("5400")),
]


def terms(**kw: Any) -> ContractTerms:
    base: dict[str, Any] = {
        "kind": Plan.CONTINUOUS,
        "start": date(2026, 1, 1),
        "unit_price_ufemg": Decimal("0.02"),
        "franchise_accesses": 200_000,
        "support_ufemg": Decimal("300"),
    }
    return ContractTerms(**{**base, **kw}).validated("test")


@dataclass
class Case:
    id: str
    terms: ContractTerms
    accesses: int
    total: str
    codes: list[str]
    month: str = "2026-03"
    fines: list[Fine] = field(default_factory=list)
    carried: list[Carried] = field(default_factory=list)


CASES = [
    # below the franchise: 150,000 × 0.02 = 3,000 + true-up 50,000 × 0.02 = 1,000 → 4,000 + 300
    Case("below-franchise", terms(), 150_000, "4300", ["usage", "franchise_true_up", "support"]),
    # at the franchise: 200,000 × 0.02 = 4,000 + 300 = 4,300 (no true-up)
    Case("at-franchise", terms(), 200_000, "4300", ["usage", "support"]),
    # one above: 200,001 × 0.02 = 4,000.02 + 300 = 4,300.02
    Case("above-franchise", terms(), 200_001, "4300.02", ["usage", "support"]),
    # nothing used: 0 + true-up 200,000 × 0.02 = 4,000 → + 300 = 4,300
    Case("zero-usage", terms(), 0, "4300", ["usage", "franchise_true_up", "support"]),
    # DESIGN §8: 260,000 × 0.02 = 5,200 + 300 = 5,500
    Case("design-above", terms(), 260_000, "5500", ["usage", "support"]),
    # floor binds: unit 0.01, franchise 100,000; 120,000 × 0.01 = 1,200 → +1,800 → 3,000 + 300
    Case(
        "floor-binds",
        terms(unit_price_ufemg=Decimal("0.01"), franchise_accesses=100_000),
        120_000,
        "3300",
        ["usage", "minimum_floor", "support"],
    ),
    # floor exactly met: franchise 150,000 × 0.02 = 3,000 → no floor line; + 300 = 3,300
    Case("floor-met", terms(franchise_accesses=150_000), 150_000, "3300", ["usage", "support"]),
    # floor short by one access: 149,999 × 0.02 = 2,999.98 → +0.02 → 3,000 + 300 = 3,300
    Case(
        "floor-by-a-hair",
        terms(franchise_accesses=149_999),
        149_999,
        "3300",
        ["usage", "minimum_floor", "support"],
    ),
    # floor no longer binds: unit 0.01; 310,000 × 0.01 = 3,100 + 300 = 3,400
    Case(
        "floor-not-binding",
        terms(unit_price_ufemg=Decimal("0.01"), franchise_accesses=100_000),
        310_000,
        "3400",
        ["usage", "support"],
    ),
    # bands, franchise 150,000: 100,000 used → chargeable 150,000 → band ≤ 200,000 = 3,800 + 300
    Case(
        "band-franchise",
        terms(franchise_accesses=150_000, bands=BANDS),
        100_000,
        "4100",
        ["consumption_band", "support"],
    ),
    # band edge, inclusive: 200,000 → band ≤ 200,000 = 3,800 + 300 = 4,100
    Case(
        "band1-upper-edge",
        terms(franchise_accesses=150_000, bands=BANDS),
        200_000,
        "4100",
        ["consumption_band", "support"],
    ),
    # next band: 200,001 → band ≤ 300,000 = 5,400 + 300 = 5,700
    Case(
        "band2-lower-edge",
        terms(franchise_accesses=150_000, bands=BANDS),
        200_001,
        "5700",
        ["consumption_band", "support"],
    ),
    # band edge, inclusive: 300,000 → 5,400 + 300 = 5,700
    Case(
        "band2-upper-edge",
        terms(franchise_accesses=150_000, bands=BANDS),
        300_000,
        "5700",
        ["consumption_band", "support"],
    ),
    # above the last band: linear 300,001 × 0.02 = 6,000.02 + 300 = 6,300.02
    Case(
        "above-last-band",
        terms(franchise_accesses=150_000, bands=BANDS),
        300_001,
        "6300.02",
        ["usage", "support"],
    ),
    # band under the floor: band ≤ 50,000 = 1,000 → +2,000 → 3,000 + 300 = 3,300
    Case(
        "band-floor-binds",
        terms(
            unit_price_ufemg=Decimal("0.03"),
            franchise_accesses=10_000,
            bands=[
                Band(up_to=50_000, price_ufemg=Decimal("1000")),
                Band(up_to=100_000, price_ufemg=Decimal("2500")),
            ],
        ),
        40_000,
        "3300",
        ["consumption_band", "minimum_floor", "support"],
    ),
    # first month from 2026-03-17 (15 of 31 days): franchise 200,000 × 15/31 = 96,774.19 → 96,774;
    # 50,000 × 0.02 = 1,000 + true-up 46,774 × 0.02 = 935.48 → 1,935.48; the floor is not
    # prorated (Art. 10 II): 3,000 − 1,935.48 = 1,064.52 added → 3,000; + 300 = 3,300
    Case(
        "partial-first-month",
        terms(start=date(2026, 3, 17)),
        50_000,
        "3300",
        ["usage", "franchise_true_up", "minimum_floor", "support"],
    ),
    # the same with unused franchise above the floor: 250,000 used ≥ the prorated franchise 96,774;
    # 250,000 × 0.02 = 5,000 ≥ 3,000; + 300 = 5,300
    Case(
        "partial-first-month-above-floor",
        terms(start=date(2026, 3, 17)),
        250_000,
        "5300",
        ["usage", "support"],
    ),
    # same start, unit 0.01, franchise 100,000 → 48,387 (48,387.10); 10,000 × 0.01 = 100 +
    # 38,387 × 0.01 = 383.87 → 483.87 < floor 3,000 (whole) → +2,516.13; + 300 = 3,300
    Case(
        "partial-month-floor",
        terms(
            start=date(2026, 3, 17), unit_price_ufemg=Decimal("0.01"), franchise_accesses=100_000
        ),
        10_000,
        "3300",
        ["usage", "franchise_true_up", "minimum_floor", "support"],
    ),
    # the contract opts in to a prorated floor (a CGMD deliberation, prorate_floor = true):
    # floor 3,000 × 15/31 = 1,451.6129; 483.87 → +967.7429 → 1,451.6129; + 300 = 1,751.6129
    Case(
        "partial-month-floor-prorated",
        terms(
            start=date(2026, 3, 17),
            unit_price_ufemg=Decimal("0.01"),
            franchise_accesses=100_000,
            prorate_floor=True,
        ),
        10_000,
        "1751.6129",
        ["usage", "franchise_true_up", "minimum_floor", "support"],
    ),
    # last month, ends 2026-04-10 (10 of 30 days): franchise 66,666.67 → 66,667; 80,000 used ×
    # 0.02 = 1,600 < floor 3,000 (whole) → +1,400; + 300 = 3,300
    Case(
        "partial-last-month",
        terms(end=date(2026, 4, 10)),
        80_000,
        "3300",
        ["usage", "minimum_floor", "support"],
        month="2026-04",
    ),
    # the contract says no proration: 2026-03-17 start still bills 4,000 + 300 = 4,300
    Case(
        "no-proration",
        terms(start=date(2026, 3, 17), prorate=False),
        50_000,
        "4300",
        ["usage", "franchise_true_up", "support"],
    ),
    # support prorated too: 1,935.48 → floor 3,000; + 300 × 15/31 = 145.1613 → 3,145.1613
    Case(
        "prorated-support",
        terms(start=date(2026, 3, 17), prorate_support=True),
        50_000,
        "3145.1613",
        ["usage", "franchise_true_up", "minimum_floor", "support"],
    ),
    # anniversary 2026-03-01, +10%: unit 0.022, support 330; 250,000 × 0.022 = 5,500 + 330 = 5,830
    Case(
        "anniversary-percent",
        terms(
            start=date(2025, 3, 1),
            readjustment=Readjustment(kind=ReadjustmentKind.PERCENT, percent=Decimal("10")),
        ),
        250_000,
        "5830",
        ["price_schedule", "usage", "support"],
    ),
    # the month before that anniversary: old prices, 250,000 × 0.02 = 5,000 + 300 = 5,300
    Case(
        "before-anniversary",
        terms(
            start=date(2025, 3, 1),
            readjustment=Readjustment(kind=ReadjustmentKind.PERCENT, percent=Decimal("10")),
        ),
        250_000,
        "5300",
        ["usage", "support"],
        month="2026-02",
    ),
    # IPCA anniversary 2025-01-01 (12 months to 2024-12: 4.83%): unit 0.02 × 1.0483 = 0.020966,
    # support 300 × 1.0483 = 314.49; 200,000 × 0.020966 = 4,193.2 + 314.49 = 4,507.69
    # (UFEMG 2025 = 5.5310)
    Case(
        "anniversary-ipca",
        terms(
            start=date(2024, 1, 1),
            readjustment=Readjustment(kind=ReadjustmentKind.INDEX, index="IPCA"),
        ),
        200_000,
        "4507.69",
        ["price_schedule", "usage", "support"],
        month="2025-01",
    ),
    # amendment from 2026-06-01: unit 0.015, franchise 250,000; 100,000 used → 250,000 × 0.015 =
    # 3,750 + 300 = 4,050
    Case(
        "amendment",
        terms(
            amendments=[
                Amendment(
                    effective=date(2026, 6, 1),
                    unit_price_ufemg=Decimal("0.015"),
                    franchise_accesses=250_000,
                )
            ]
        ),
        100_000,
        "4050",
        ["price_schedule", "usage", "franchise_true_up", "support"],
        month="2026-06",
    ),
    # sandbox: price waived (Art. 29), 12,345 of cap 50,000 shown → 0
    Case(
        "sandbox-month",
        ContractTerms(
            kind=Plan.SANDBOX, start=date(2026, 1, 1), end=date(2026, 12, 31), cap=50_000
        ),
        12_345,
        "0",
        ["sandbox_usage", "sandbox_window"],
    ),
    # migration on 2026-03-17: 16 sandbox days, 15 paid; 62,000 × 15/31 = 30,000 paid, 32,000
    # sandbox; paid part as partial-first-month: 96,774 × 0.02 = 1,935.48 → the whole floor
    # 3,000 (paid supply started: Art. 10 II, no proration) + 300 = 3,300
    Case(
        "migration-month",
        terms(start=date(2026, 3, 17), sandbox_from=date(2025, 10, 1), sandbox_cap=50_000),
        62_000,
        "3300",
        [
            "sandbox_usage",
            "sandbox_window",
            "migration",
            "usage",
            "franchise_true_up",
            "minimum_floor",
            "support",
        ],
    ),
    # fixed fine (Art. 45 III): 4,300 + 500 = 4,800
    Case(
        "fine-fixed",
        terms(),
        200_000,
        "4800",
        ["usage", "support", "fine"],
        fines=[Fine(reason="late report", amount_ufemg=Decimal("500"))],
    ),
    # percentage fine: 10% of the month's supply 5,500 = 550 → 6,050
    Case(
        "fine-percent",
        terms(),
        260_000,
        "6050",
        ["usage", "support", "fine"],
        fines=[Fine(reason="misuse", percent=Decimal("10"))],
    ),
    # development 12,000 in 3 instalments from 2026-03: 4,000 now → 4,300 + 4,000 = 8,300
    Case(
        "development-instalment",
        terms(
            development_cost_ufemg=Decimal("12000"),
            development_instalments=3,
            development_first_month="2026-03",
        ),
        200_000,
        "8300",
        ["usage", "support", "development"],
    ),
    # 10,000 in 3: 3,333.3333 twice, the last takes the rest 3,333.3334 → 4,300 + 3,333.3334
    Case(
        "development-last-instalment",
        terms(
            development_cost_ufemg=Decimal("10000"),
            development_instalments=3,
            development_first_month="2026-03",
        ),
        200_000,
        "7633.3334",
        ["usage", "support", "development"],
        month="2026-05",
    ),
    # late usage of an issued month carried here: 4,300 + 2,000 (R$ 11,579.80) = 6,300
    Case(
        "late-usage-carried",
        terms(),
        200_000,
        "6300",
        ["usage", "support", "adjustment"],
        carried=[
            Carried(
                code="adjustment",
                description="Adjustment for 2026-02: 200,000 → 300,000",
                amount_ufemg=Decimal("2000.0000"),
                amount_brl=Decimal("11579.80"),
            )
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_worked_case(case: Case) -> None:
    inv = compute_invoice(
        case.terms,
        accesses=case.accesses,
        month=case.month,
        ufemg=REF.ufemg,
        indices=REF.indices,
        fines=case.fines,
        carried=case.carried,
    )
    assert inv.total_ufemg == Decimal(case.total), inv.lines
    assert [line.code for line in inv.lines] == case.codes
    assert inv.total_brl == sum((line.amount_brl for line in inv.lines), Decimal(0))
    for line in inv.lines:
        if line.code != "adjustment":
            assert line.amount_brl == Brl(line.amount_ufemg * inv.brl_per_ufemg).amount


def test_at_least_25_worked_cases() -> None:
    assert len(CASES) >= 25


def test_migration_splits_accesses_by_days() -> None:
    case = next(c for c in CASES if c.id == "migration-month")
    inv = compute_invoice(case.terms, accesses=62_000, month="2026-03", ufemg=REF.ufemg)
    by_code = {line.code: line for line in inv.lines}
    assert by_code["sandbox_usage"].quantity == 32_000
    assert by_code["usage"].quantity == 30_000
    assert "50,000" in by_code["sandbox_usage"].description
    assert inv.period_start == date(2026, 3, 1) and inv.period_end == date(2026, 3, 31)


def test_sandbox_shows_cap_and_window() -> None:
    case = next(c for c in CASES if c.id == "sandbox-month")
    inv = compute_invoice(case.terms, accesses=12_345, month="2026-03", ufemg=REF.ufemg)
    assert "12,345 of cap 50,000 (24.7%)" in inv.lines[0].description
    assert "2026-01-01 → 2026-12-31: day 90 of 365" in inv.lines[1].description


def test_month_outside_contract() -> None:
    with pytest.raises(MonthOutsideContract):
        compute_invoice(terms(start=date(2026, 5, 1)), accesses=1, month="2026-03", ufemg=REF.ufemg)


def test_franchise_under_floor_is_flagged() -> None:
    low = terms(unit_price_ufemg=Decimal("0.01"), franchise_accesses=100_000)
    assert any("under the 3000 UFEMG" in w for w in low.warnings())
    assert terms().warnings() == []
    sandbox = ContractTerms(kind=Plan.SANDBOX, start=date(2026, 1, 1))
    assert sandbox.warnings() == []


paid_terms = st.builds(
    lambda unit, franchise, support: terms(
        unit_price_ufemg=unit, franchise_accesses=franchise, support_ufemg=support
    ),
    st.decimals(min_value="0.0001", max_value="0.5", places=4),
    st.integers(0, 2_000_000),
    st.decimals(min_value=0, max_value=2000, places=2),
)


@settings(max_examples=150)
@given(paid_terms, st.integers(0, 3_000_000), st.integers(0, 3_000_000))
def test_monthly_value_never_decreases_and_full_month_meets_floor(
    t: ContractTerms, a: int, b: int
) -> None:
    lo, hi = sorted((a, b))
    inv_lo = compute_invoice(t, accesses=lo, month="2026-05", ufemg=REF.ufemg)
    inv_hi = compute_invoice(t, accesses=hi, month="2026-05", ufemg=REF.ufemg)
    assert inv_lo.total_ufemg <= inv_hi.total_ufemg
    assert inv_lo.total_ufemg >= Decimal(3000) + t.support_ufemg
    assert inv_hi.total_brl == Brl.total(Brl(x.amount_brl) for x in inv_hi.lines).amount


@settings(max_examples=100)
@given(
    st.integers(1, 200_000),
    st.lists(st.integers(1, 1_000_000), min_size=1, max_size=4, unique=True),
    st.integers(0, 5_000_000),
    st.integers(0, 5_000_000),
)
def test_banded_value_never_decreases(franchise: int, bounds: list[int], a: int, b: int) -> None:
    unit = Decimal("0.02")
    bounds.sort()
    # band prices below the linear price of their bound keep the contract valid
    bands = [Band(up_to=u, price_ufemg=unit * u) for u in bounds]
    t = terms(franchise_accesses=franchise, bands=bands)
    lo, hi = sorted((a, b))
    v_lo = compute_invoice(t, accesses=lo, month="2026-05", ufemg=REF.ufemg).total_ufemg
    v_hi = compute_invoice(t, accesses=hi, month="2026-05", ufemg=REF.ufemg).total_ufemg
    assert v_lo <= v_hi
    assert v_lo >= Decimal(3000) + Decimal(300)  # a paid full month: floor + support at least


@settings(max_examples=100)
@given(
    st.integers(1, 31),
    st.integers(1, 31),
    st.booleans(),
    st.integers(0, 1_000_000),
    st.integers(0, 1_000_000),
)
def test_partial_and_migration_months_never_decrease(
    start_day: int, end_day: int, migrated: bool, a: int, b: int
) -> None:
    """Proration and the day split of a migration month keep the bill monotonic in accesses."""
    start = date(2026, 3, start_day)
    end = date(2026, 3, end_day) if end_day >= start_day and not migrated else None
    t = terms(
        start=start,
        end=end,
        sandbox_from=date(2025, 10, 1) if migrated and start_day > 1 else None,
    )
    lo, hi = sorted((a, b))
    inv_lo = compute_invoice(t, accesses=lo, month="2026-03", ufemg=REF.ufemg)
    inv_hi = compute_invoice(t, accesses=hi, month="2026-03", ufemg=REF.ufemg)
    assert inv_lo.total_ufemg <= inv_hi.total_ufemg
    days = ((end or date(2026, 3, 31)) - start).days + 1
    assert days >= 1
    # Art. 10 II: the paid part owes the whole floor however few its days, plus the support fee
    assert inv_lo.total_ufemg >= Decimal(3000) + Decimal(300)


def test_floor_proration_is_a_named_opt_in() -> None:
    """Art. 10 II: the floor line of a partial month says it was not prorated, or why it was."""
    whole = compute_invoice(
        terms(start=date(2026, 3, 17)), accesses=10, month="2026-03", ufemg=REF.ufemg
    )
    [floor] = [x for x in whole.lines if x.code == "minimum_floor"]
    assert "not prorated for 15/31 days" in floor.description
    opted = compute_invoice(
        terms(start=date(2026, 3, 17), franchise_accesses=10, prorate_floor=True),
        accesses=10,
        month="2026-03",
        ufemg=REF.ufemg,
    )
    [floor] = [x for x in opted.lines if x.code == "minimum_floor"]
    assert "CGMD deliberation" in floor.description and "prorate_floor" in floor.description
