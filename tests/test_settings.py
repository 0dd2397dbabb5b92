"""Settings come from the environment once, with clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataflow.settings import MeterKind, Settings, SettingsError


def test_defaults_need_no_server(tmp_path: Path) -> None:
    s = Settings.from_env({"DATAFLOW_DATA_DIR": str(tmp_path)})
    assert s.meter is MeterKind.EMBEDDED and s.redis_url is None
    assert s.database_url == f"sqlite:///{tmp_path / 'dataflow.db'}"
    assert (s.meter_timeout, s.settle_interval) == (2.0, 5.0)


def test_redis_url_selects_the_redis_meter_and_its_tuning(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "DATAFLOW_DATA_DIR": str(tmp_path),
            "DATAFLOW_REDIS_URL": "redis://127.0.0.1:6379/0",
            "DATAFLOW_METER_TIMEOUT": "1.5",
        }
    )
    assert s.meter is MeterKind.REDIS and s.meter_timeout == 1.5


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("DATAFLOW_SETTLE_INTERVAL", "soon", "'soon': expected a number of seconds"),
        ("DATAFLOW_METER_TIMEOUT", "-2", "expected zero or more seconds"),
        ("DATAFLOW_METER", "memcached", "expected one of"),
        ("DATAFLOW_BILLING_GRACE_DAYS", "-1", "must not be negative"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings.from_env({"DATAFLOW_DATA_DIR": str(tmp_path), name: value})


def test_the_redis_meter_needs_an_address(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="needs DATAFLOW_REDIS_URL"):
        Settings.from_env({"DATAFLOW_DATA_DIR": str(tmp_path), "DATAFLOW_METER": "redis"})
