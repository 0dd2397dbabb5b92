"""Arrow columns from numpy without a trip through Python objects: money and timestamps."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from dataflow.invoices.schema import MONEY, TZ

__all__ = ["cents_to_money", "local_to_instants", "timestamps"]


def cents_to_money(cents: npt.NDArray[np.int64]) -> pa.Array:
    """Integer centavos → exact decimal128(18, 2), without a trip through float or Decimal."""
    c = np.ascontiguousarray(cents, dtype=np.int64)
    words = np.empty((len(c), 2), dtype=np.int64)
    words[:, 0] = c
    words[:, 1] = np.where(c < 0, -1, 0)  # two's-complement sign extension to 128 bits
    return pa.Array.from_buffers(MONEY, len(c), [None, pa.py_buffer(words)])


def local_to_instants(
    year: int, month: int, seconds: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Wall-clock seconds in America/Sao_Paulo since the month began → UTC epoch microseconds."""
    base = np.datetime64(f"{year:04d}-{month:02d}-01T00:00:00", "s")
    wall = (base + seconds.astype("timedelta64[s]")).astype("datetime64[us]")
    # Arrow knows the zone's history (daylight saving time before 2019), numpy does not.
    instants = pc.assume_timezone(
        pa.array(wall, pa.timestamp("us")), TZ, ambiguous="earliest", nonexistent="earliest"
    )
    out: npt.NDArray[np.int64] = instants.cast(pa.int64()).to_numpy()
    return out


def timestamps(micros: npt.NDArray[np.int64]) -> pa.Array:
    """UTC epoch microseconds → ``timestamp[us, tz=America/Sao_Paulo]``."""
    m = np.ascontiguousarray(micros, dtype=np.int64)
    return pa.Array.from_buffers(pa.timestamp("us", tz=TZ), len(m), [None, pa.py_buffer(m)])
