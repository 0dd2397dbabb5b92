"""FEBRABAN "arrecadação" barcode (44 digits) and its typeable line (48 digits).

Layout for segment 5 (government bodies):
``8`` product · ``5`` segment · ``6`` value identifier (effective value, mod-10 check) ·
general check digit · value in integer centavos (11) · agency code (4) · free field (25).
The typeable line is the 44 digits in four blocks of 11, each followed by its mod-10 digit.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from dataflow.billing.money import Brl

__all__ = [
    "amount_of",
    "arrecadacao_barcode",
    "barcode_is_valid",
    "mod10",
    "reference_number",
    "typeable_line",
]


def mod10(digits: str) -> int:
    """FEBRABAN modulo 10: weights 2,1,2,1… from the right; a product's digits are summed."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        p = int(ch) * (2 if i % 2 == 0 else 1)
        total += p // 10 + p % 10
    return (10 - total % 10) % 10


def reference_number(year: int, sequence: int) -> str:
    """The DAE reference: 4-digit year, 8-digit sequence, mod-10 check digit (13 digits)."""
    body = f"{year:04d}{sequence:08d}"
    return body + str(mod10(body))


def arrecadacao_barcode(
    amount: Brl, *, agency_code: str, due: date, revenue_code: str, reference: str
) -> str:
    """The 44 barcode digits; cents come from the Decimal amount, never through a float."""
    cents = amount.cents
    if cents < 0 or cents >= 10**11:
        raise ValueError(f"amount {amount} does not fit the barcode's 11-digit value field")
    if not (len(agency_code) == 4 and agency_code.isdigit()):
        raise ValueError("agency code must be 4 digits")
    revenue = "".join(c for c in revenue_code if c.isdigit())[-4:].rjust(4, "0")
    ref = "".join(c for c in reference if c.isdigit())[-13:].rjust(13, "0")
    free = f"{due:%Y%m%d}{revenue}{ref}"
    assert len(free) == 25
    body = f"856{cents:011d}{agency_code}{free}"  # 43 digits without the general check digit
    dv = mod10(body)
    return body[:3] + str(dv) + body[3:]


def typeable_line(barcode: str) -> str:
    """48 digits: four blocks of 11 barcode digits, each with its mod-10 check digit."""
    if len(barcode) != 44 or not barcode.isdigit():
        raise ValueError("a barcode has 44 digits")
    blocks = [barcode[i : i + 11] for i in range(0, 44, 11)]
    return " ".join(f"{b}-{mod10(b)}" for b in blocks)


def barcode_is_valid(barcode: str) -> bool:
    if len(barcode) != 44 or not barcode.isdigit() or barcode[0] != "8":
        return False
    return int(barcode[3]) == mod10(barcode[:3] + barcode[4:])


def amount_of(barcode: str) -> Brl:
    return Brl(Decimal(int(barcode[4:15])) / 100)
