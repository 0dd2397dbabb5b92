"""FEBRABAN "arrecadação" barcode (44 digits) and its typeable line (48 digits).

Layout (FEBRABAN "Padrão de Arrecadação/Recebimento com Utilização do Código de Barras"):

======  ====  ==============================================================================
pos.    len   content
======  ====  ==============================================================================
1       1     product: ``8`` (arrecadação)
2       1     segment: ``5`` (government bodies)
3       1     value identifier: ``6``/``7`` check digits modulo 10, ``8``/``9`` modulo 11
              (6 and 8: the value field is the effective amount in centavos)
4       1     general check digit (over the other 43 digits, by the value identifier's modulus)
5–15    11    value in integer centavos
16–19   4     company/agency identification (SEF/MG's code, ``datasets/dae.toml``)
20–44   25    free field, our layout: revenue code (6: every digit of the "código de receita",
              check digit included, zero-padded on the left) · DAE reference (13: year, sequence,
              mod-10 digit) · due date (6: ``AAMMDD``)
======  ====  ==============================================================================

The typeable line is the 44 digits in four blocks of 11, each followed by its check digit
(same modulus as the general one).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import msgspec

from dataflow.billing.money import Brl

__all__ = [
    "REVENUE_DIGITS",
    "BarcodeFields",
    "amount_of",
    "arrecadacao_barcode",
    "barcode_is_valid",
    "decode",
    "mod10",
    "mod11",
    "reference_number",
    "revenue_digits",
    "typeable_line",
]

REVENUE_DIGITS = 6  # width of the revenue code in the free field


def mod10(digits: str) -> int:
    """FEBRABAN modulo 10: weights 2,1,2,1… from the right; a product's digits are summed."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        p = int(ch) * (2 if i % 2 == 0 else 1)
        total += p // 10 + p % 10
    return (10 - total % 10) % 10


def mod11(digits: str) -> int:
    """FEBRABAN modulo 11: weights 2…9 from the right, repeating; remainder 0 or 1 gives 0."""
    total = sum(int(ch) * (2 + i % 8) for i, ch in enumerate(reversed(digits)))
    rest = total % 11
    return 0 if rest in (0, 1) else 11 - rest


_MODULUS: dict[str, Callable[[str], int]] = {"6": mod10, "7": mod10, "8": mod11, "9": mod11}


def reference_number(year: int, sequence: int) -> str:
    """The DAE reference: 4-digit year, 8-digit sequence, mod-10 check digit (13 digits)."""
    body = f"{year:04d}{sequence:08d}"
    return body + str(mod10(body))


def revenue_digits(revenue_code: str) -> str:
    """Every digit of a revenue code (``1234-5`` → ``012345``), as the free field holds it."""
    digits = "".join(c for c in revenue_code if c.isdigit())
    if not digits or len(digits) > REVENUE_DIGITS:
        raise ValueError(
            f"revenue code {revenue_code!r}: expected 1 to {REVENUE_DIGITS} digits "
            "(check digit included) to fit the barcode's free field"
        )
    return digits.rjust(REVENUE_DIGITS, "0")


def arrecadacao_barcode(
    amount: Brl,
    *,
    agency_code: str,
    due: date,
    revenue_code: str,
    reference: str,
    value_id: str = "6",
) -> str:
    """The 44 barcode digits; cents come from the Decimal amount, never through a float."""
    if value_id not in ("6", "8"):
        raise ValueError("a DAE states its effective value: value identifier 6 or 8")
    cents = amount.cents
    if cents < 0 or cents >= 10**11:
        raise ValueError(f"amount {amount} does not fit the barcode's 11-digit value field")
    if not (len(agency_code) == 4 and agency_code.isdigit()):
        raise ValueError("agency code must be 4 digits")
    if not (len(reference) == 13 and reference.isdigit()):
        raise ValueError(f"DAE reference {reference!r}: expected 13 digits")
    free = f"{revenue_digits(revenue_code)}{reference}{due:%y%m%d}"
    assert len(free) == 25
    body = f"85{value_id}{cents:011d}{agency_code}{free}"  # 43 digits without the general DV
    dv = _MODULUS[value_id](body)
    return body[:3] + str(dv) + body[3:]


def typeable_line(barcode: str) -> str:
    """48 digits: four blocks of 11 barcode digits, each with its check digit."""
    if len(barcode) != 44 or not barcode.isdigit() or barcode[2] not in _MODULUS:
        raise ValueError("an arrecadação barcode has 44 digits and value identifier 6–9")
    check = _MODULUS[barcode[2]]
    blocks = [barcode[i : i + 11] for i in range(0, 44, 11)]
    return " ".join(f"{b}-{check(b)}" for b in blocks)


def barcode_is_valid(barcode: str) -> bool:
    """Product 8, a known value identifier and a general check digit by its modulus."""
    if len(barcode) != 44 or not barcode.isdigit() or barcode[0] != "8":
        return False
    check = _MODULUS.get(barcode[2])
    return check is not None and int(barcode[3]) == check(barcode[:3] + barcode[4:])


def amount_of(barcode: str) -> Brl:
    return Brl(Decimal(int(barcode[4:15])) / 100)


class BarcodeFields(msgspec.Struct, frozen=True, kw_only=True):
    """What a DAE barcode says, read back by the layout above."""

    segment: str
    value_id: str
    amount: Brl
    agency_code: str
    revenue_code: str  # the digits, zero-padded to REVENUE_DIGITS
    reference: str
    due: date


def decode(barcode: str) -> BarcodeFields:
    if not barcode_is_valid(barcode):
        raise ValueError(f"{barcode!r} is not a valid arrecadação barcode")
    free = barcode[19:]
    yy, mm, dd = int(free[19:21]), int(free[21:23]), int(free[23:25])
    return BarcodeFields(
        segment=barcode[1],
        value_id=barcode[2],
        amount=amount_of(barcode),
        agency_code=barcode[15:19],
        revenue_code=free[:REVENUE_DIGITS],
        reference=free[REVENUE_DIGITS : REVENUE_DIGITS + 13],
        due=date(2000 + yy, mm, dd),
    )
