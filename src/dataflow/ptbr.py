"""What people read, in Brazilian Portuguese: the one place numbers, money and dates are formatted.

``R$ 1.234,56`` (BRL, 2 places), ``1.234,5678`` (UFEMG, always 4 places), ``1.234.567``
(counts), ``31/12/2026`` (dates), ``dezembro de 2026`` / ``12/2026`` (billing months). Amounts are
``Decimal`` and are rounded with billing's one rule (half up) before they are written; nothing
here goes through ``float``. The DAE PDF and the console both use these functions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

__all__ = [
    "MONTHS",
    "SAO_PAULO",
    "brl",
    "cnpj",
    "data",
    "data_hora",
    "decimal_br",
    "inteiro",
    "mes",
    "mes_curto",
    "numero",
    "percentual",
    "ufemg",
]

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
MONTHS = (
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
)


def _group(digits: str) -> str:
    """``1234567`` → ``1.234.567`` (thousands separated by dots)."""
    head = len(digits) % 3 or 3
    parts = [digits[:head], *(digits[i : i + 3] for i in range(head, len(digits), 3))]
    return ".".join(parts)


def decimal_br(value: Decimal | int | str, places: int) -> str:
    """A decimal number with ``places`` decimals, comma for decimals and dots for thousands."""
    amount = Decimal(value)
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    q = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "-" if q < 0 else ""
    whole, _, frac = f"{abs(q):f}".partition(".")
    text = _group(whole)
    return f"{sign}{text},{frac}" if places else f"{sign}{text}"


def numero(value: Decimal | int | str | None) -> str:
    """A decimal with the places it has, trailing zeros dropped: ``0,02``, ``5,7899``, ``4,5``."""
    if value is None:
        return "—"
    d = Decimal(value)
    exponent = d.normalize().as_tuple().exponent
    return decimal_br(d, max(0, -int(exponent)))


def brl(value: Decimal | int | str) -> str:
    """``R$ 1.234,56`` (a negative amount: ``-R$ 1.234,56``)."""
    text = decimal_br(value, 2)
    return f"-R$ {text[1:]}" if text.startswith("-") else f"R$ {text}"


def ufemg(value: Decimal | int | str) -> str:
    """UFEMG amounts always show four decimals: ``3.000,0000``."""
    return decimal_br(value, 4)


def inteiro(value: int | None) -> str:
    """``1.234.567``; ``—`` for none."""
    if value is None:
        return "—"
    return decimal_br(value, 0)


def percentual(part: int | Decimal, whole: int | Decimal | None, places: int = 1) -> str:
    """``45,2%`` of ``whole``; ``—`` when there is no whole to compare with."""
    if not whole:
        return "—"
    return decimal_br(Decimal(part) * 100 / Decimal(whole), places) + "%"


def _local(value: date | datetime) -> date | datetime:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(SAO_PAULO)
    return value


def data(value: date | datetime | None) -> str:
    """``dd/mm/aaaa`` (a moment is shown as its America/Sao_Paulo day)."""
    if value is None:
        return "—"
    return f"{_local(value):%d/%m/%Y}"


def data_hora(value: datetime | None) -> str:
    """``dd/mm/aaaa hh:mm`` in America/Sao_Paulo."""
    if value is None:
        return "—"
    return f"{_local(value):%d/%m/%Y %H:%M}"


def mes(month: str | None) -> str:
    """``2026-03`` → ``março de 2026``."""
    if not month:
        return "—"
    year, number = int(month[:4]), int(month[5:7])
    return f"{MONTHS[number - 1]} de {year}"


def mes_curto(month: str | None) -> str:
    """``2026-03`` → ``03/2026`` (the reference period on a DAE)."""
    if not month:
        return "—"
    return f"{month[5:7]}/{month[:4]}"


def cnpj(value: str | None) -> str:
    """``12.345.678/0001-95`` (alphanumeric CNPJs too); ``—`` for none."""
    if not value or len(value) != 14:
        return value or "—"
    return f"{value[:2]}.{value[2:5]}.{value[5:8]}/{value[8:12]}-{value[12:]}"
