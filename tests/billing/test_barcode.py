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
    decode,
    mod10,
    mod11,
    reference_number,
    revenue_digits,
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


@pytest.mark.parametrize(
    ("digits", "dv"),
    [
        # from the right ×2,×3,…: 3×2 + 3×3 + 5×4 + 1×5 + 6×6 + 2×7 = 90; 90 mod 11 = 2 → 11 − 2
        ("261533", 9),
        ("1", 9),  # 1×2 = 2 → 11 − 2 = 9
        ("5", 1),  # 5×2 = 10 → 11 − 10 = 1
        ("6", 0),  # 6×2 = 12, remainder 1 → 0
        ("0", 0),  # remainder 0 → 0
        ("111111111", 9),  # weights 2…9 then 2 again: 44 + 2 = 46; 46 mod 11 = 2 → 11 − 2
    ],
)
def test_mod11(digits: str, dv: int) -> None:
    assert mod11(digits) == dv


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
    # free field: the whole revenue code (6), the DAE reference (13), the due date AAMMDD (6)
    assert code[19:] == "099999" + "2026000000011" + "260424"
    assert code == "85690000248965700000999992026000000011260424"
    assert barcode_is_valid(code)
    line = typeable_line(code)
    assert line == "85690000248-1 96570000099-9 99920260000-6 00011260424-4"
    assert len(line.replace(" ", "").replace("-", "")) == 48


def test_revenue_code_is_encoded_whole() -> None:
    """The code 1234-5 used to become 2345 (its last four digits): every digit now travels."""
    code = arrecadacao_barcode(
        Brl(Decimal("10")),
        agency_code="0000",
        due=date(2026, 4, 24),
        revenue_code="1234-5",
        reference="2026000000011",
    )
    assert decode(code).revenue_code == "012345"
    assert "12345" in code[19:25]
    with pytest.raises(ValueError, match="1 to 6 digits"):
        revenue_digits("1234567-8")


def test_mod11_barcode() -> None:
    """Value identifier 8: effective value, every check digit modulo 11."""
    code = arrecadacao_barcode(
        Brl(Decimal("24896.57")),
        agency_code="0000",
        due=date(2026, 4, 24),
        revenue_code="1234-5",
        reference="2026000000011",
        value_id="8",
    )
    assert code[2] == "8" and int(code[3]) == mod11(code[:3] + code[4:])
    assert barcode_is_valid(code)
    # the same digits judged by modulo 10 would be another check digit: the identifier decides
    assert mod10(code[:3] + code[4:]) != mod11(code[:3] + code[4:])
    blocks = typeable_line(code).split(" ")
    assert all(mod11(b[:11]) == int(b[-1]) for b in blocks)


def test_cents_never_go_through_float() -> None:
    # float(0.29) * 100 = 28.999999999999996: int() of it is the classic lost centavo
    code = arrecadacao_barcode(
        Brl(Decimal("0.29")),
        agency_code="1234",
        due=date(2026, 1, 5),
        revenue_code="1",
        reference="2026000000011",
    )
    assert code[4:15] == "00000000029"
    assert amount_of(code) == Brl(Decimal("0.29"))


def test_reference_number_has_check_digit() -> None:
    ref = reference_number(2026, 1)
    assert ref == "2026000000011" and mod10(ref[:-1]) == int(ref[-1])


def test_corrupted_barcode_is_rejected() -> None:
    code = "85690000248965700000999992026000000011260424"
    bad = code[:20] + str((int(code[20]) + 1) % 10) + code[21:]
    assert not barcode_is_valid(bad)
    assert not barcode_is_valid(code[:-1])


@given(
    st.decimals(min_value=0, max_value=Decimal("999999999.99"), places=2),
    st.dates(min_value=date(2024, 1, 1), max_value=date(2099, 12, 31)),
    st.integers(1, 99_999_999),
    st.from_regex(r"[0-9]{1,5}-[0-9]", fullmatch=True),
    st.sampled_from(["6", "8"]),
)
def test_every_barcode_checks(
    amount: Decimal, due: date, seq: int, revenue: str, value_id: str
) -> None:
    ref = reference_number(due.year, seq)
    code = arrecadacao_barcode(
        Brl(amount),
        agency_code="0213",
        due=due,
        revenue_code=revenue,
        reference=ref,
        value_id=value_id,
    )
    assert barcode_is_valid(code)
    fields = decode(code)
    assert fields.amount.amount == amount and amount_of(code).amount == amount
    assert int(fields.revenue_code) == int(revenue.replace("-", ""))
    assert (fields.reference, fields.due, fields.agency_code) == (ref, due, "0213")
    check = mod10 if value_id == "6" else mod11
    blocks = typeable_line(code).split(" ")
    assert "".join(b[:11] for b in blocks) == code
    assert all(check(b[:11]) == int(b[-1]) for b in blocks)


@given(st.text("0123456789", min_size=43, max_size=43), st.sampled_from("6789"))
def test_validity_follows_the_value_identifier(body: str, value_id: str) -> None:
    """mod 10 for identifiers 6/7, mod 11 for 8/9 (FEBRABAN); other digits are refused."""
    digits = "85" + value_id + body[3:]
    check = mod10 if value_id in "67" else mod11
    good = digits[:3] + str(check(digits)) + digits[3:]
    assert barcode_is_valid(good)
    wrong = (check(digits) + 1) % 10
    assert not barcode_is_valid(digits[:3] + str(wrong) + digits[3:])
    assert not barcode_is_valid("85" + "5" + good[3:])  # value identifier 5 does not exist


@given(st.text("0123456789", min_size=44, max_size=44), st.integers(0, 43), st.integers(1, 9))
def test_mod10_barcodes_catch_any_one_digit_error(digits: str, pos: int, delta: int) -> None:
    code = arrecadacao_barcode(
        Brl(Decimal(int(digits[:10])) / 100),
        agency_code=digits[10:14],
        due=date(2026, 1, 1),
        revenue_code=digits[14:20],
        reference=digits[20:33],
    )
    if pos in (0, 2):  # product and value identifier decide the rule itself
        return
    bad = code[:pos] + str((int(code[pos]) + delta) % 10) + code[pos + 1 :]
    assert not barcode_is_valid(bad)
