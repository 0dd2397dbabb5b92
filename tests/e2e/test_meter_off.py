"""End to end: `dataflow serve` with ``DATAFLOW_METER=off`` says loudly that it counts nothing,
and still refuses what it must (issue 18, item 2)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from dataflow.aggregation.release import ReleaseSummary
from tests.e2e.conftest import serve
from tests.e2e.test_server import TABLE, _cli


@pytest.mark.xdist_group("e2e-server")  # one running server at a time on two cores
def test_meter_off_warns_on_start_up_and_still_authorizes(
    tmp_path: Path, release: ReleaseSummary
) -> None:
    env = {**os.environ, "DATAFLOW_DATA_DIR": str(tmp_path), "DATAFLOW_METER": "off"}
    env.pop("DATAFLOW_REDIS_URL", None)
    partner = _cli(env, "partner", "create", "Suspensa Ltda", "--plan", "continuous")
    key = _cli(env, "key", "create", partner)
    _cli(env, "partner", "suspend", partner, "--reason", "Art. 45 II", "--days", "10")
    with serve(env, release.path, workers=1) as (base, _pid):
        auth = {"Authorization": f"Bearer {key}"}
        rows = httpx.get(f"{base}/v1/tables/{TABLE}/rows", headers=auth, timeout=30)
        catalog = httpx.get(f"{base}/v1/tables", headers=auth, timeout=30)
    assert (rows.status_code, catalog.status_code) == (403, 403)
    assert rows.json()["reason"] == "suspended"
    (log,) = tmp_path.glob("serve-*.log")
    text = log.read_text()
    # once from `serve` itself (its stderr), once from the worker's log (dataflow.api)
    assert text.count("DATAFLOW_METER=off: data accesses are NOT COUNTED") >= 2, text
    assert "WARNING: DATAFLOW_METER=off" in text  # serve's own line
    assert "WARNING dataflow.api: DATAFLOW_METER=off" in text  # the worker's log line
