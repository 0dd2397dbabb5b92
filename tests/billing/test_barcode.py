"""FEBRABAN arrecadação barcode: check digits, layout, cents from Decimal."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataflow.billing.barcode import (
    amount_of,
    arrecadacao_barcode,
    barcode_is_valid,
    mod10,
    reference_number,
    typeable_line,
)
from dataflow.billing.money import Brl


@pytest.mark.parametrize(
    ("digits", "dv"),
    [
        ("7992739871", 3),  # the textbook Luhn example: FEBRABAN mod 10 is the same rule
        ("0", 0),
        ("1", 8),  # 1×2 = 2 → 10 − 2 = 8
        ("9", 1),  # 9×2 = 18 → 1+8 = 9 → 10 − 9 = 1
        ("19", 0),  # 9×2 = 18 → 9; 1×1 = 1 → 10 → 0
        ("85600000000", 5),  # from the right: zeros; 6×2 = 12 → 3; 5×1 = 5; 8×2 = 16 → 7; 15 → 5
    ],
)
def test_mod10(digits: str, dv: int) -> None:
    assert mod10(digits) == dv


def test_layout_and_worked_check_digits() -> None:
    code = arrecadacao_barcode(
        Brl(Decimal("24896.57")),
        agency_code="0000",
        due=date(2026, 4, 24),
        revenue_code="9999-9",
        reference="2026000000011",
    )
    assert len(code) == 44
    assert code[:3] == "856"  # product 8 (arrecadação), segment 5 (government), value id 6
    assert code[4:15] == "00002489657"  # integer centavos
    assert code[15:19] == "0000"  # agency
    assert code[19:] == "20260424" + "9999" + "2026000000011"  # free field: due, revenue, ref
    assert code == "85650000248965700002026042499992026000000011"
    assert barcode_is_valid(code)
    line = typeable_line(code)
    assert line == "85650000248-5 96570000202-9 60424999920-1 26000000011-7"
    assert len(line.replace(" ", "").replace("-", "")) == 48


def test_cents_never_go_through_float() -> None:
    # float(0.29) * 100 = 28.999999999999996: int() of it is the classic lost centavo
    code = arrecadacao_barcode(
        Brl(Decimal("0.29")),
        agency_code="1234",
        due=date(2026, 1, 5),
        revenue_code="1",
        reference="1",
    )
    assert code[4:15] == "00000000029"
    assert amount_of(code) == Brl(Decimal("0.29"))


def test_reference_number_has_check_digit() -> None:
    ref = reference_number(2026, 1)
    assert ref == "2026000000011" and mod10(ref[:-1]) == int(ref[-1])


def test_corrupted_barcode_is_rejected() -> None:
    code = "85650000248965700002026042499992026000000011"
    bad = code[:20] + str((int(code[20]) + 1) % 10) + code[21:]
    assert not barcode_is_valid(bad)
    assert not barcode_is_valid(code[:-1])


@given(
    st.decimals(min_value=0, max_value=Decimal("999999999.99"), places=2),
    st.dates(min_value=date(2024, 1, 1), max_value=date(2099, 12, 31)),
    st.integers(1, 99_999_999),
)
def test_every_barcode_checks(amount: Decimal, due: date, seq: int) -> None:
    ref = reference_number(due.year, seq)
    code = arrecadacao_barcode(
        Brl(amount), agency_code="0000", due=due, revenue_code="9999-9", reference=ref
    )
    assert barcode_is_valid(code)
    assert amount_of(code).amount == amount
    blocks = typeable_line(code).split(" ")
    assert "".join(b[:11] for b in blocks) == code
    assert all(mod10(b[:11]) == int(b[-1]) for b in blocks)
