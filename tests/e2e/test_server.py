"""End to end: the real `dataflow serve` process, a real HTTP client, real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis

from dataflow.aggregation.release import ReleaseSummary
from dataflow.api.metrics import FLUSH_SECONDS
from dataflow.metering.models import billing_month
from tests.e2e.conftest import serve

TABLE = "sales_municipality_cnae_division_month"


def _cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "dataflow", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def _samples(text: str) -> dict[str, float]:
    """Unlabelled samples of a Prometheus exposition, by name."""
    return {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in text.splitlines())
        if name and not name.startswith("#") and "{" not in name
    }


@pytest.fixture
def server(
    tmp_path: Path, release: ReleaseSummary, redis_url: str, redis_prefix: str
) -> Iterator[tuple[str, str, int]]:
    env = {
        **os.environ,
        "DATAFLOW_DATA_DIR": str(tmp_path),
        "DATAFLOW_REDIS_URL": redis_url,
        "DATAFLOW_REDIS_PREFIX": redis_prefix,
    }
    partner = int(_cli(env, "partner", "create", "E2E Ltda", "--plan", "continuous"))
    key = _cli(env, "key", "create", str(partner))
    with serve(env, release.path) as (base, _pid):
        yield base, key, partner


@pytest.mark.xdist_group("e2e-server")  # one running server at a time on two cores
def test_counts_equal_responses_and_suppression_shows(
    server: tuple[str, str, int], redis_url: str, redis_prefix: str
) -> None:
    base, key, partner = server
    served = 0
    suppressed_seen = 0
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as client:
        assert client.get("/v1/tables").status_code == 200  # not billable
        for i in range(60):
            params = {"limit": "200"} if i % 2 else {"municipality": "3106200"}
            r = client.get(f"/v1/tables/{TABLE}/rows", params=params)
            assert r.status_code == 200
            served += 1
            for row in r.json()["rows"]:
                if row["flag"] == "X":
                    suppressed_seen += 1
                    assert row["item_value"] is None and row["invoice_count"] is None
        assert client.get(f"/v1/tables/{TABLE}/rows", params={"month": ".."}).status_code == 400
        assert client.get("/v1/tables/nope/rows").status_code == 404
    assert httpx.get(f"{base}/v1/tables/{TABLE}/rows").status_code == 401
    assert suppressed_seen > 0
    month = billing_month(datetime.now(UTC))
    counted = redis.Redis.from_url(redis_url).get(f"{redis_prefix}:{{p:{partner}}}:acc:{month}")
    assert int(counted or 0) == served


def test_client_pages_and_metrics_add_up_across_workers(server: tuple[str, str, int]) -> None:
    from dataflow.client import ApiError, Client, Prefix

    base, key, _ = server
    with Client(base, key) as api:
        assert TABLE in [t["id"] for t in api.tables()]
        pages_json = list(api.pages(TABLE, wire="json", page_rows=100, cnae_division=Prefix("4")))
        frame = api.polars(TABLE, wire="arrow", page_rows=170, cnae_division=Prefix("4"))
        via_parquet = api.arrow(TABLE, wire="parquet", cnae_division=Prefix("4"))
        via_csv = api.arrow(TABLE, wire="csv", page_rows=230, cnae_division=Prefix("4"))
        assert len(pages_json) > 1
        total = sum(p.num_rows for p in pages_json)
        assert frame.height == total == via_parquet.num_rows == via_csv.num_rows
        assert frame["cnae_division"].str.starts_with("4").all()
        accesses = api.usage()["accesses"]
        assert accesses == len(pages_json) + -(-total // 170) + 1 + -(-total // 230)
        try:
            api.arrow(TABLE, month="..")
        except ApiError as e:
            assert e.status == 400 and e.kind == "invalid-query"
        else:
            raise AssertionError("a malformed filter must raise ApiError")
    served = len(pages_json)
    # Each worker writes its tallies at most FLUSH_SECONDS after a request: once that has
    # passed, fresh connections land on either worker and all must report the sum.
    time.sleep(FLUSH_SECONDS + 0.5)
    seen = set()
    for _ in range(8):
        text = httpx.get(f"{base}/metrics", timeout=5).text
        line = next(
            x
            for x in text.splitlines()
            if x.startswith("dataflow_data_accesses_total") and 'format="json"' in x
        )
        seen.add(float(line.rsplit(" ", 1)[1]))
    assert seen == {float(served)}
    # The meter's own metrics, summed over the workers too: every access counted, in batches.
    samples = _samples(httpx.get(f"{base}/metrics", timeout=5).text)
    assert samples["dataflow_meter_accesses_total"] == accesses
    assert samples["dataflow_meter_batch_size_sum"] == accesses
    assert 1 <= samples["dataflow_meter_batch_size_count"] <= accesses
    assert samples["dataflow_meter_latency_seconds_count"] >= 1
    ready = httpx.get(f"{base}/readyz", timeout=5).json()
    assert ready["checks"] == {"release": "ok", "database": "ok", "meter": "ok"}
