from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from dataflow.invoices.synthetic.columns import cents_to_money, local_to_instants
from dataflow.invoices.synthetic.timing import day_weights, local_seconds


def test_black_friday_and_christmas() -> None:
    nov = day_weights(2026, 11, retail=True)
    assert int(np.argmax(nov)) + 1 == 27  # fourth Friday of November 2026
    dec = day_weights(2026, 12, retail=False)
    assert dec[24] < dec.mean() / 3  # Christmas Day
    assert abs(nov.sum() - 1) < 1e-12


def test_local_seconds_stay_in_the_month() -> None:
    rng = np.random.default_rng(0)
    retail = rng.random(10_000) < 0.5
    s = local_seconds(rng, 2026, 2, retail)
    assert s.min() >= 0 and s.max() < 28 * 86_400


def test_wall_clock_to_instants_knows_old_daylight_saving() -> None:
    # 2018-11-04 00:30 did not exist in São Paulo (clocks jumped to 01:00, UTC-2).
    micros = local_to_instants(2018, 11, np.array([3 * 86_400 + 12 * 3600, 3 * 86_400 + 1800]))
    noon = datetime.fromtimestamp(micros[0] / 1e6, UTC)
    assert noon == datetime(2018, 11, 4, 14, 0, tzinfo=UTC)  # noon at UTC-2
    # Since 2019 there is no daylight saving: always UTC-3.
    later = local_to_instants(2026, 1, np.array([0]))
    assert datetime.fromtimestamp(later[0] / 1e6, UTC) == datetime(2026, 1, 1, 3, tzinfo=UTC)


def test_cents_to_money_is_exact() -> None:
    arr = cents_to_money(np.array([1, 29, 123456789012, 0], dtype=np.int64))
    assert [str(v) for v in arr.to_pylist()] == ["0.01", "0.29", "1234567890.12", "0.00"]
