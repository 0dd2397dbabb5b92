from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from dataflow.aggregation.checkdigits import (
    cnpj_check_digits,
    is_valid_access_key,
    is_valid_cnpj,
    make_access_key,
)

ALNUM = string.digits + string.ascii_uppercase


def test_known_numeric_cnpj() -> None:
    assert is_valid_cnpj("11222333000181")
    assert not is_valid_cnpj("11222333000182")


def test_official_alphanumeric_example() -> None:
    # NT Conjunta 2025.001: 12.ABC.345/01DE-35
    assert cnpj_check_digits("12ABC34501DE") == "35"
    assert is_valid_cnpj("12ABC34501DE35")


@given(st.text(alphabet=ALNUM, min_size=12, max_size=12))
def test_cnpj_digits_roundtrip(base: str) -> None:
    cnpj = base + cnpj_check_digits(base)
    assert is_valid_cnpj(cnpj)


@given(st.text(alphabet=ALNUM, min_size=12, max_size=12), st.integers(0, 9), st.integers(12, 13))
def test_cnpj_rejects_any_other_check_digit(base: str, new_digit: int, pos: int) -> None:
    cnpj = base + cnpj_check_digits(base)
    if cnpj[pos] == str(new_digit):
        return
    changed = cnpj[:pos] + str(new_digit) + cnpj[pos + 1 :]
    assert not is_valid_cnpj(changed)


@given(
    st.text(alphabet=ALNUM, min_size=12, max_size=12),
    st.sampled_from([55, 65]),
    st.integers(0, 999),
    st.integers(1, 999_999_999),
    st.integers(0, 99_999_999),
)
def test_access_key_roundtrip(base: str, model: int, series: int, number: int, code: int) -> None:
    cnpj = base + cnpj_check_digits(base)
    key = make_access_key(
        uf=31,
        yymm="2607",
        cnpj=cnpj,
        model=model,
        series=series,
        number=number,
        emission=1,
        code=code,
    )
    assert len(key) == 44
    assert is_valid_access_key(key)
    wrong = key[:43] + str((int(key[43]) + 1) % 10)
    assert not is_valid_access_key(wrong)
