from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataflow.billing.money import Brl, Ufemg, round_half_up


def test_round_half_up() -> None:
    assert round_half_up(Decimal("0.125"), 2) == Decimal("0.13")
    assert round_half_up(Decimal("-0.125"), 2) == Decimal("-0.13")
    assert round_half_up(Decimal("1.00005"), 4) == Decimal("1.0001")


def test_types_quantize_and_refuse_float() -> None:
    assert Ufemg(Decimal("1.23456")).amount == Decimal("1.2346")
    assert Brl(Decimal("0.295")).amount == Decimal("0.30")
    assert Brl(Decimal("0.29")).cents == 29  # the classic float bug gives 28
    with pytest.raises(TypeError):
        Ufemg(0.1)  # type: ignore[arg-type]


@given(
    st.decimals(min_value=0, max_value=10**9, places=4),
    st.decimals(min_value=1, max_value=10, places=4),
)
def test_conversion_is_one_rounding(amount: Decimal, rate: Decimal) -> None:
    brl = Ufemg(amount).to_brl(rate)
    assert brl.amount == round_half_up(amount * rate, 2)
