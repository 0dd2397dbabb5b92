from __future__ import annotations

import string

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataflow.invoices.checkdigits import (
    access_key_check_digit,
    access_key_check_digits_array,
    cnpj_check_digits,
    cnpj_check_digits_array,
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


def _rows(texts: list[str]) -> np.ndarray:
    return np.frombuffer("".join(texts).encode(), dtype=np.uint8).reshape(len(texts), -1)


@given(st.lists(st.text(alphabet=ALNUM, min_size=12, max_size=12), min_size=1, max_size=40))
def test_vectorized_cnpj_digits_match_the_scalar_rule(bases: list[str]) -> None:
    digits = cnpj_check_digits_array(_rows(bases))
    assert [d.tobytes().decode() for d in digits] == [cnpj_check_digits(b) for b in bases]


@given(
    st.lists(
        st.tuples(
            st.text(alphabet=ALNUM, min_size=12, max_size=12),
            st.text(alphabet=string.digits, min_size=29, max_size=29),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_vectorized_access_key_digit_matches_the_scalar_rule(
    parts: list[tuple[str, str]],
) -> None:
    bodies = []
    for base, tail in parts:
        body = tail[:6] + base + cnpj_check_digits(base) + tail[6:]
        assert len(body) == 43
        bodies.append(body)
    digits = access_key_check_digits_array(_rows(bodies))
    keys = [b + chr(d) for b, d in zip(bodies, digits.tolist(), strict=True)]
    assert all(is_valid_access_key(k) for k in keys)
    assert [int(chr(d)) for d in digits.tolist()] == [access_key_check_digit(b) for b in bodies]


def test_vectorized_forms_reject_wrong_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(n, 12\)"):
        cnpj_check_digits_array(np.zeros((3, 11), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"\(n, 43\)"):
        access_key_check_digits_array(np.zeros((3, 44), dtype=np.uint8))


def test_official_example_vectorized() -> None:
    assert cnpj_check_digits_array(_rows(["12ABC34501DE"])).tobytes() == b"35"
