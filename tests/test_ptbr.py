"""People-facing formats: R$ 1.234,56, UFEMG with four places, dd/mm/aaaa (tested as rules)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from dataflow import ptbr


def test_the_examples_people_see() -> None:
    assert ptbr.brl(Decimal("1234.56")) == "R$ 1.234,56"
    assert ptbr.brl(Decimal("0.29")) == "R$ 0,29"
    assert ptbr.brl(Decimal("-1234567.891")) == "-R$ 1.234.567,89"
    assert ptbr.ufemg(Decimal("3000")) == "3.000,0000"
    assert ptbr.ufemg(Decimal("0.00005")) == "0,0001"  # half up, like billing
    assert ptbr.inteiro(1234567) == "1.234.567"
    assert ptbr.inteiro(None) == "—"
    assert ptbr.numero(Decimal("0.020900")) == "0,0209"
    assert ptbr.numero(Decimal("5.7899")) == "5,7899"
    assert ptbr.percentual(1, 3) == "33,3%"
    assert ptbr.percentual(1, 0) == "—"
    assert ptbr.data(date(2026, 3, 5)) == "05/03/2026"
    # a moment is shown as its São Paulo day: 02:00 UTC on 1 March is still 28 February there
    assert ptbr.data(datetime(2026, 3, 1, 2, 0, tzinfo=UTC)) == "28/02/2026"
    assert ptbr.data_hora(datetime(2026, 3, 1, 15, 30, tzinfo=UTC)) == "01/03/2026 12:30"
    assert ptbr.mes("2026-03") == "março de 2026"
    assert ptbr.mes_curto("2026-12") == "12/2026"
    assert ptbr.cnpj("11222333000181") == "11.222.333/0001-81"
    assert ptbr.cnpj("12ABC34501DE35") == "12.ABC.345/01DE-35"


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False))
def test_brl_reads_back_to_the_same_amount(value: Decimal) -> None:
    text = ptbr.brl(value)
    negative = text.startswith("-")
    digits = text.removeprefix("-").removeprefix("R$ ")
    whole, frac = digits.split(",")
    assert len(frac) == 2
    groups = whole.split(".")
    assert all(len(g) == 3 for g in groups[1:]) and 1 <= len(groups[0]) <= 3
    back = Decimal(whole.replace(".", "") + "." + frac)
    assert (-back if negative else back) == value


@given(st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False))
def test_ufemg_always_shows_four_places_rounded_half_up(value: Decimal) -> None:
    text = ptbr.ufemg(value)
    whole, frac = text.split(",")
    assert len(frac) == 4
    expected = value.quantize(Decimal("0.0001"), rounding="ROUND_HALF_UP")
    assert Decimal(whole.replace(".", "") + "." + frac) == expected
