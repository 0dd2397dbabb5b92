"""Metering end to end: `dataflow serve --workers 2`, real HTTP clients, a redis-server of
the test's own (AOF, appendfsync always), SQLite ledger. Caps hold across workers; faults
(a worker killed, Redis killed and restarted, the settler killed) never lose a served access.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from dataflow.aggregation.release import ReleaseSummary
from dataflow.contracts.models import Plan
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.metering.models import Access, billing_month
from dataflow.metering.redis_meter import RedisMeter
from dataflow.metering.repository import SettlementRepository
from dataflow.metering.settlement import ReconcileRow, reconcile_month, settle
from tests.e2e.conftest import ROWS, Load, OwnRedis, base_env, cli, serve, worker_pids

pytestmark = [pytest.mark.slow, pytest.mark.redis]


def _partner(tmp_path: Path, cap: int | None = None) -> tuple[int, str]:
    contracts = ContractsService(make_engine(f"sqlite:///{tmp_path / 'dataflow.db'}"))
    partner = contracts.create_partner("E2E", Plan.SANDBOX, monthly_cap=cap)
    key = contracts.create_key(partner.id)
    contracts.engine.dispose()
    return partner.id, key


def _ledger(tmp_path: Path, partner: int, month: str) -> int:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dataflow.db'}")
    with engine.connect() as conn:
        value = conn.execute(
            sa.text("SELECT accesses FROM usage_ledger WHERE partner_id = :p AND month = :m"),
            {"p": partner, "m": month},
        ).scalar_one_or_none()
    engine.dispose()
    return int(value or 0)


def _reconcile(tmp_path: Path, redis_url: str, month: str) -> list[ReconcileRow]:
    """Settle what is left, then compare counters, stream, records and ledger (in-process)."""

    async def run() -> list[ReconcileRow]:
        meter = RedisMeter.from_url(redis_url, prefix="df")
        repo = SettlementRepository(make_engine(f"sqlite:///{tmp_path / 'dataflow.db'}"))
        try:
            await settle(meter, repo)
            return await reconcile_month(meter, repo, month)
        finally:
            await meter.aclose()

    return asyncio.run(run())


def test_cap_holds_across_two_workers_under_200_concurrent_clients(
    tmp_path: Path, release: ReleaseSummary, own_redis: OwnRedis
) -> None:
    cap = 57
    env = base_env(tmp_path, own_redis.url)
    partner, key = _partner(tmp_path, cap)

    async def burst(base: str) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30, limits=limits
        ) as http:
            return await asyncio.gather(
                *(http.get(ROWS, params={"limit": "5"}) for _ in range(200))
            )

    with serve(env, release.path) as (base, _):
        responses = asyncio.run(burst(base))
        again = httpx.get(base + ROWS, headers={"Authorization": f"Bearer {key}"})
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: cap, 429: 200 - cap}
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["type"].endswith("/monthly-cap-reached")
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.headers["RateLimit-Policy"].startswith(f'"monthly";q={cap};')
    assert again.status_code == 429
    month = billing_month(datetime.now(UTC))
    assert int(own_redis.client().get(f"df:{{p:{partner}}}:acc:{month}") or 0) == cap
    # The CLI proves it: settle what the workers left, compare, exit 0.
    out = cli(env, "usage", "reconcile", "--month", month, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["partners"] == [
        {
            "partner_id": partner,
            "counter": cap,
            "stream": cap,
            "records": cap,
            "ledger": cap,
            "agrees": True,
        }
    ]
    # Everything was settled, so nothing is left in the stream: settled entries are trimmed.
    assert own_redis.client().xlen(f"df:{{p:{partner}}}:log") == 0


def test_worker_killed_under_load_loses_no_served_access(
    tmp_path: Path, release: ReleaseSummary, own_redis: OwnRedis
) -> None:
    env = base_env(tmp_path, own_redis.url)
    partner, key = _partner(tmp_path)
    month = billing_month(datetime.now(UTC))
    with serve(env, release.path) as (base, main_pid), Load(base, key, clients=32) as load:
        load.wait_for("200", 150)
        workers = worker_pids(main_pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        time.sleep(1.5)
    received = load.outcomes["200"]
    failed = load.outcomes["error"] + load.outcomes["500"] + load.outcomes["502"]
    counted = int(own_redis.client().get(f"df:{{p:{partner}}}:acc:{month}") or 0)
    assert received > 150
    # Every 200 was counted; the excess is at most what was in flight in the killed worker.
    assert received <= counted <= received + min(failed, 32), load.outcomes
    (row,) = _reconcile(tmp_path, own_redis.url, month)
    assert row.ledger == counted and row.agrees


def test_redis_killed_and_restarted_mid_load(
    tmp_path: Path, release: ReleaseSummary, own_redis: OwnRedis
) -> None:
    env = base_env(tmp_path, own_redis.url)
    partner, key = _partner(tmp_path)
    month = billing_month(datetime.now(UTC))
    with serve(env, release.path) as (base, _), Load(base, key, clients=16) as load:
        load.wait_for("200", 100)
        own_redis.kill()  # kill -9: only what appendfsync already wrote survives
        load.wait_for("503", 20)  # refused, never served uncounted
        served_while_down = load.outcomes["200"]
        time.sleep(0.5)
        assert load.outcomes["200"] - served_while_down <= 16  # only those already counted
        own_redis.start()  # same port, same AOF
        load.wait_for("200", served_while_down + 100)  # resumes by itself, no restart
    received = load.outcomes["200"]
    counted = int(own_redis.client().get(f"df:{{p:{partner}}}:acc:{month}") or 0)
    # appendfsync always: every count a client saw answered is on disk. A script that ran
    # just before the kill but whose answer was lost is counted and not served (503/error).
    unanswered = load.outcomes["503"] + load.outcomes["error"]
    assert received <= counted <= received + min(unanswered, 16), load.outcomes
    (row,) = _reconcile(tmp_path, own_redis.url, month)
    assert row.ledger == counted and row.agrees


def test_redis_stalled_mid_load_gives_503_then_resumes(
    tmp_path: Path, release: ReleaseSummary, own_redis: OwnRedis
) -> None:
    """A Redis that stops answering (SIGSTOP) without closing its sockets: requests get 503
    with Retry-After within the meter's timeout, nothing is served uncounted, and once Redis
    answers again (its late replies to abandoned round trips discarded, not taken for new
    ones) service resumes by itself and the ledger agrees with the counter."""
    env = {**base_env(tmp_path, own_redis.url), "DATAFLOW_METER_TIMEOUT": "0.5"}
    partner, key = _partner(tmp_path)
    month = billing_month(datetime.now(UTC))
    with serve(env, release.path) as (base, _), Load(base, key, clients=16) as load:
        load.wait_for("200", 100)
        own_redis.pause()
        stalled_at = time.monotonic()
        load.wait_for("503", 16, timeout=15)
        waited = time.monotonic() - stalled_at
        served_while_stalled = load.outcomes["200"]
        refused = httpx.get(base + ROWS, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        time.sleep(0.5)
        assert load.outcomes["200"] - served_while_stalled <= 16  # only those already counted
        own_redis.resume()
        load.wait_for("200", served_while_stalled + 200)  # no restart
    assert waited < 5, waited  # 503s come within about two meter timeouts, not a hang
    assert refused.status_code == 503
    assert refused.json()["type"].endswith("/meter-unavailable")
    assert int(refused.headers["Retry-After"]) >= 1
    received = load.outcomes["200"]
    counted = int(own_redis.client().get(f"df:{{p:{partner}}}:acc:{month}") or 0)
    # Scripts queued in Redis's socket when it stopped run when it resumes: counted, their
    # requests already answered 503 — over-counted by at most those in flight, never under.
    unanswered = load.outcomes["503"] + load.outcomes["error"]
    assert received <= counted <= received + min(unanswered, 16 * 2), load.outcomes
    (row,) = _reconcile(tmp_path, own_redis.url, month)
    assert row.ledger == counted and row.agrees


def test_settler_killed_mid_batch_then_rerun_is_exact(tmp_path: Path, own_redis: OwnRedis) -> None:
    env = base_env(tmp_path, own_redis.url)
    partner, _ = _partner(tmp_path)
    now = datetime.now(UTC)
    month = billing_month(now)
    total = 1500

    async def traffic() -> None:  # one stream entry per access: many small batches to settle
        meter = RedisMeter.from_url(own_redis.url, prefix="df", batching=False)
        access = Access(
            partner_id=partner, key_id="k", month=month, day=now.date(), table="t", release="r"
        )
        for _ in range(total // 50):
            grants = await asyncio.gather(*(meter.acquire(access) for _ in range(50)))
            assert all(g.allowed for g in grants)
        await meter.aclose()

    asyncio.run(traffic())
    settler = subprocess.Popen(
        [sys.executable, "-m", "dataflow", "usage", "settle", "--batch", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while _ledger(tmp_path, partner, month) < 100:
        assert settler.poll() is None, "the settler finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    settler.send_signal(signal.SIGKILL)
    settler.wait()
    at_kill = _ledger(tmp_path, partner, month)
    assert 100 <= at_kill < total
    rows = _reconcile(tmp_path, own_redis.url, month)  # the rerun reads from the watermark
    assert [(r.counter, r.stream, r.records, r.ledger) for r in rows] == [(total,) * 4]
    rows = _reconcile(tmp_path, own_redis.url, month)  # and again: nothing left, nothing doubled
    assert _ledger(tmp_path, partner, month) == total and rows[0].agrees
    assert own_redis.client().xlen(f"df:{{p:{partner}}}:log") == 0  # settled, so trimmed
