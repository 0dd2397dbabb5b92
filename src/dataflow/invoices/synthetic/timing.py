"""When invoices are issued: day of month and time of day, per channel, in local wall-clock time."""

from __future__ import annotations

import calendar
from datetime import date

import numpy as np
import numpy.typing as npt

from dataflow.invoices.synthetic import profiles

__all__ = ["day_weights", "local_seconds"]


def day_weights(year: int, month: int, retail: bool) -> npt.NDArray[np.float64]:
    """Relative activity of each day of the month (weekday profile plus holidays and sales)."""
    days = calendar.monthrange(year, month)[1]
    weekday = profiles.WEEKDAY_WEIGHTS[0 if retail else 1]
    w = np.array([weekday[date(year, month, d).weekday()] for d in range(1, days + 1)])
    if month == 11 and retail:  # Black Friday: the fourth Friday of November, and its weekend
        fridays = [d for d in range(1, days + 1) if date(year, month, d).weekday() == 4]
        bf = fridays[3]
        w[bf - 1] *= 3.0
        w[bf : min(bf + 2, days)] *= 1.4
    if month == 12:
        if retail:
            w[19:24] *= 1.5  # Christmas shopping, 20-24 December
        w[24] *= 0.15  # Christmas Day
    if month == 1:
        w[0] *= 0.15  # New Year's Day
    out: npt.NDArray[np.float64] = w / w.sum()
    return out


def local_seconds(
    rng: np.random.Generator, year: int, month: int, retail: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int64]:
    """Seconds since local midnight of the first day of the month, one per invoice."""
    out = np.empty(len(retail), dtype=np.int64)
    for channel, mask in ((True, retail), (False, ~retail)):
        n = int(mask.sum())
        if n == 0:
            continue
        dw = day_weights(year, month, channel)
        hw = np.asarray(profiles.HOUR_WEIGHTS[0 if channel else 1], dtype=np.float64)
        day = rng.choice(len(dw), n, p=dw)
        hour = rng.choice(24, n, p=hw / hw.sum())
        out[mask] = day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, n)
    return out
