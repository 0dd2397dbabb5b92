from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataflow.billing.errors import ContractInvalid, UfemgUnknown
from dataflow.billing.models import Band, ContractKind, ContractTerms
from dataflow.billing.money import Brl
from dataflow.billing.service import compute_invoice
from dataflow.billing.ufemg import UfemgTable

REPO = Path(__file__).resolve().parents[2]
UFEMG = UfemgTable.load(REPO / "datasets" / "ufemg.csv")


def _terms(
    unit: str = "0.02",
    franchise: int = 200_000,
    support: str = "300",
    bands: list[Band] | None = None,
) -> ContractTerms:
    return ContractTerms(
        kind=ContractKind.CONTINUOUS,
        start=date(2026, 1, 1),
        unit_price_ufemg=Decimal(unit),
        franchise_accesses=franchise,
        support_ufemg=Decimal(support),
        bands=bands or [],
    )


@pytest.mark.parametrize(
    ("unit", "franchise", "accesses", "total"),
    [
        # DESIGN §8 worked examples
        ("0.02", 200_000, 150_000, "4300"),  # 200,000 × 0.02 = 4,000 + 300
        ("0.02", 200_000, 260_000, "5500"),  # 260,000 × 0.02 = 5,200 + 300
        ("0.01", 100_000, 120_000, "3300"),  # 1,200 → floor 3,000 + 300
        ("0.02", 200_000, 200_000, "4300"),  # at the franchise
        ("0.02", 200_000, 0, "4300"),  # nothing used: the franchise is billed
        ("0.02", 150_000, 150_000, "3300"),  # 3,000 exactly: the floor does not bind
    ],
)
def test_worked_examples(unit: str, franchise: int, accesses: int, total: str) -> None:
    inv = compute_invoice(_terms(unit, franchise), accesses=accesses, month="2026-03", ufemg=UFEMG)
    assert inv.total_ufemg == Decimal(total)
    assert inv.total_brl == sum(line.amount_brl for line in inv.lines)
    assert inv.brl_per_ufemg == Decimal("5.7899")


def test_floor_is_its_own_line() -> None:
    inv = compute_invoice(_terms("0.01", 100_000), accesses=120_000, month="2026-03", ufemg=UFEMG)
    codes = {line.code: line.amount_ufemg for line in inv.lines}
    assert codes == {
        "usage": Decimal("1200.0000"),
        "minimum_floor": Decimal("1800.0000"),
        "support": Decimal("300.0000"),
    }


def test_brl_conversion_per_line() -> None:
    inv = compute_invoice(_terms(), accesses=150_000, month="2026-03", ufemg=UFEMG)
    # 3000 × 5.7899 = 17369.70; 1000 × 5.7899 = 5789.90; 300 × 5.7899 = 1736.97
    assert [line.amount_brl for line in inv.lines] == [
        Decimal("17369.70"),
        Decimal("5789.90"),
        Decimal("1736.97"),
    ]
    assert inv.total_brl == Decimal("24896.57")


def test_bands() -> None:
    bands = [
        Band(up_to=200_000, price_ufemg=Decimal("3800")),
        Band(up_to=300_000, price_ufemg=Decimal("5400")),
    ]
    terms = _terms(franchise=150_000, bands=bands)
    assert compute_invoice(
        terms, accesses=100_000, month="2026-03", ufemg=UFEMG
    ).total_ufemg == Decimal("4100")
    assert compute_invoice(
        terms, accesses=200_000, month="2026-03", ufemg=UFEMG
    ).total_ufemg == Decimal("4100")
    assert compute_invoice(
        terms, accesses=200_001, month="2026-03", ufemg=UFEMG
    ).total_ufemg == Decimal("5700")
    # above the last band: linear
    assert compute_invoice(
        terms, accesses=400_000, month="2026-03", ufemg=UFEMG
    ).total_ufemg == Decimal("8300")


def test_sandbox_is_free_but_shows_usage() -> None:
    terms = ContractTerms(kind=ContractKind.SANDBOX, start=date(2026, 1, 1), cap=50_000)
    inv = compute_invoice(terms, accesses=1234, month="2026-03", ufemg=UFEMG)
    assert inv.total_ufemg == 0 and inv.total_brl == 0
    assert inv.lines[0].quantity == 1234
    assert "50,000" in inv.lines[0].description


def test_unknown_ufemg_year() -> None:
    with pytest.raises(UfemgUnknown, match="2031"):
        compute_invoice(_terms(), accesses=1, month="2031-01", ufemg=UFEMG)


def test_contract_toml() -> None:
    terms = ContractTerms.from_file(REPO / "examples" / "contract-continuous.toml")
    assert terms.unit_price_ufemg == Decimal("0.02") and terms.franchise_accesses == 200_000
    with pytest.raises(ContractInvalid, match="increasing"):
        ContractTerms.from_toml(
            'kind="continuous"\nstart=2026-01-01\n[[bands]]\nup_to=5\nprice_ufemg="1"\n[[bands]]\nup_to=5\nprice_ufemg="2"'
        )
    with pytest.raises(ContractInvalid, match="kind"):
        ContractTerms.from_toml('kind="gift"\nstart=2026-01-01')


@given(
    st.decimals(min_value="0.0001", max_value="1", places=4),
    st.integers(0, 1_000_000),
    st.integers(0, 2_000_000),
    st.integers(0, 2_000_000),
)
def test_monotonic_and_floor(unit: Decimal, franchise: int, a: int, b: int) -> None:
    terms = _terms(str(unit), franchise, "250")
    lo, hi = sorted((a, b))
    inv_lo = compute_invoice(terms, accesses=lo, month="2026-05", ufemg=UFEMG)
    inv_hi = compute_invoice(terms, accesses=hi, month="2026-05", ufemg=UFEMG)
    assert inv_lo.total_ufemg <= inv_hi.total_ufemg
    assert inv_lo.total_ufemg >= Decimal(3000) + Decimal(250)
    assert Brl(sum(line.amount_brl for line in inv_hi.lines)).amount == inv_hi.total_brl
