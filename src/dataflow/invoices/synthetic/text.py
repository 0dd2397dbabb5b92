"""Fixed-width ASCII text built with numpy and handed to Arrow without a per-row Python loop."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = ["Chars", "ascii_digits", "fixed_width_strings", "from_strings"]

Chars = npt.NDArray[np.uint8]  # shape (n, width): one row of ASCII codes per value


def ascii_digits(values: npt.NDArray[np.int64], width: int) -> Chars:
    """Zero-padded decimal digits of non-negative integers, shape ``(n, width)``."""
    v = np.asarray(values, dtype=np.int64)
    out = np.empty((len(v), width), dtype=np.uint8)
    for i in range(width - 1, -1, -1):  # one pass per digit position, not per value
        out[:, i] = v % 10 + 48
        v = v // 10
    return out


def fixed_width_strings(chars: Chars) -> pa.Array:
    """An Arrow ``string`` array over the rows of ``chars`` (ASCII, so valid UTF-8)."""
    n, width = chars.shape
    if n * width >= 2**31:
        raise ValueError("too much text for one Arrow string array; use smaller chunks")
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(width)
    data = np.ascontiguousarray(chars)  # zero-copy below: Arrow keeps the numpy buffers alive
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def from_strings(values: list[str] | tuple[str, ...], width: int) -> Chars:
    """ASCII rows of a few fixed-width strings (reference codes), shape ``(len(values), width)``."""
    if any(len(v) != width for v in values):
        raise ValueError(f"every value must have {width} characters")
    raw = "".join(values).encode("ascii")
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(values), width).copy()
