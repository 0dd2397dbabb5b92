"""`dataflow usage settle|reconcile` through the real entry point, on the shared Redis."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import redis
from typer.testing import CliRunner

from dataflow.cli import app
from dataflow.contracts.models import Plan
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.metering.redis_meter import RedisMeter
from tests.metering.conftest import make_access

MONTH = "2026-11"


def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_settle_then_reconcile_and_a_disagreement_exits_1(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    env = {
        "DATAFLOW_DATA_DIR": str(tmp_path),
        "DATAFLOW_REDIS_URL": redis_url,
        "DATAFLOW_REDIS_PREFIX": redis_prefix,
    }
    contracts = ContractsService(make_engine(f"sqlite:///{tmp_path / 'dataflow.db'}"))
    partner = contracts.create_partner("P", Plan.CONTINUOUS).id

    async def traffic() -> None:
        meter = RedisMeter.from_url(redis_url, prefix=redis_prefix)
        await asyncio.gather(*(meter.acquire(make_access(partner=partner)) for _ in range(9)))
        await meter.aclose()

    asyncio.run(traffic())
    code, out, _ = _run(env, "usage", "settle", "--batch", "1")
    assert code == 0 and json.loads(out)["entries"] == 9
    assert contracts.usage(partner, MONTH) == 9

    code, out, _ = _run(env, "usage", "reconcile", "--month", MONTH)
    assert code == 0
    report = json.loads(out)
    assert report["agrees"] and report["partners"][0]["ledger"] == 9

    # A count that never reached the stream (someone wrote the counter by hand).
    redis.Redis.from_url(redis_url).incr(f"{redis_prefix}:{{p:{partner}}}:acc:{MONTH}")
    code, out, err = _run(env, "usage", "reconcile", "--month", MONTH)
    assert code == 1
    row = json.loads(out)["partners"][0]
    assert (row["counter"], row["stream"], row["ledger"], row["agrees"]) == (10, 9, 9, False)
    assert "disagree" in err


def test_bad_month_and_embedded_meter_are_usage_errors(tmp_path: Path) -> None:
    env = {"DATAFLOW_DATA_DIR": str(tmp_path)}
    code, _, err = _run(env, "usage", "reconcile", "--month", "2026-13")
    assert code == 2 and "YYYY-MM" in err
    code, _, err = _run(env, "usage", "settle")
    assert code == 2 and "DATAFLOW_REDIS_URL" in err
