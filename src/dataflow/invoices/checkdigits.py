"""Mod-11 check digits of CNPJ (numeric and alphanumeric) and NF-e access keys.

Every character counts as ``ord(c) - 48`` (NT Conjunta 2025.001), so ``'0'..'9'`` keep their value
and ``'A'`` counts 17: the numeric and alphanumeric forms share one algorithm.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

__all__ = [
    "access_key_check_digit",
    "access_key_check_digits_array",
    "cnpj_check_digits",
    "cnpj_check_digits_array",
    "is_valid_access_key",
    "is_valid_cnpj",
    "make_access_key",
]

_CNPJ_BASE = re.compile(r"[0-9A-Z]{12}")
_CNPJ = re.compile(r"[0-9A-Z]{12}[0-9]{2}")
_ACCESS_KEY = re.compile(r"[0-9]{6}[0-9A-Z]{12}[0-9]{26}")


def _mod11(chars: str, max_weight: int) -> int:
    total = 0
    weight = 2
    for c in reversed(chars):
        total += (ord(c) - 48) * weight
        weight = 2 if weight == max_weight else weight + 1
    rest = total % 11
    return 0 if rest < 2 else 11 - rest


def cnpj_check_digits(base12: str) -> str:
    """The two check digits of a 12-character CNPJ base (digits or upper-case letters)."""
    if not _CNPJ_BASE.fullmatch(base12):
        raise ValueError(f"CNPJ base must be 12 characters of 0-9/A-Z, got {base12!r}")
    d1 = _mod11(base12, 9)
    d2 = _mod11(base12 + str(d1), 9)
    return f"{d1}{d2}"


def is_valid_cnpj(cnpj: str) -> bool:
    return bool(_CNPJ.fullmatch(cnpj)) and cnpj_check_digits(cnpj[:12]) == cnpj[12:]


def access_key_check_digit(key43: str) -> int:
    """cDV of an NF-e access key: mod 11, weights 2..9 from the right; 0 when the rest is < 2."""
    if len(key43) != 43:
        raise ValueError(f"access key body must have 43 characters, got {len(key43)}")
    return _mod11(key43, 9)


def is_valid_access_key(key: str) -> bool:
    return bool(_ACCESS_KEY.fullmatch(key)) and access_key_check_digit(key[:43]) == int(key[43])


def make_access_key(
    *, uf: int, yymm: str, cnpj: str, model: int, series: int, number: int, emission: int, code: int
) -> str:
    """Compose the 44-character chave de acesso (cUF AAMM CNPJ mod serie nNF tpEmis cNF cDV)."""
    body = f"{uf:02d}{yymm}{cnpj}{model:02d}{series:03d}{number:09d}{emission:01d}{code:08d}"
    return body + str(access_key_check_digit(body))


# Vectorized forms over matrices of ASCII codes (one row per document), for bulk generation.
# Weights run 2..max from the right, as in ``_mod11``.
def _weights(length: int, max_weight: int) -> npt.NDArray[np.int64]:
    w = 2 + np.arange(length)[::-1] % (max_weight - 1)
    return w.astype(np.int64)


def _mod11_rows(chars: npt.NDArray[np.uint8], max_weight: int) -> npt.NDArray[np.uint8]:
    values = chars.astype(np.int64) - 48
    rest = (values @ _weights(chars.shape[1], max_weight)) % 11
    return np.where(rest < 2, 0, 11 - rest).astype(np.uint8)


def cnpj_check_digits_array(bases: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Check digits (as ASCII codes, shape ``(n, 2)``) of ``n`` 12-character CNPJ bases.

    ``bases`` holds the ASCII codes of ``0-9``/``A-Z``, shape ``(n, 12)``; the result appended to
    it gives valid 14-character CNPJs.
    """
    if bases.ndim != 2 or bases.shape[1] != 12:
        raise ValueError(f"CNPJ bases must have shape (n, 12), got {bases.shape}")
    d1 = _mod11_rows(bases, 9)
    d2 = _mod11_rows(np.column_stack([bases, d1 + 48]).astype(np.uint8), 9)
    return (np.column_stack([d1, d2]) + 48).astype(np.uint8)


def access_key_check_digits_array(bodies: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """cDV (as ASCII codes, shape ``(n,)``) of ``n`` 43-character access-key bodies."""
    if bodies.ndim != 2 or bodies.shape[1] != 43:
        raise ValueError(f"access key bodies must have shape (n, 43), got {bodies.shape}")
    return (_mod11_rows(bodies, 9) + 48).astype(np.uint8)
