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
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from dataflow.aggregation.release import ReleaseSummary
from dataflow.metering.models import billing_month
from tests.e2e.conftest import OwnRedis, base_env, cli, serve, worker_pids

pytestmark = [pytest.mark.slow, pytest.mark.redis]

TABLE = "sales_municipality_cnae_division_month"
ROWS = f"/v1/tables/{TABLE}/rows"


def _partner(env: dict[str, str], *extra: str) -> tuple[int, str]:
    partner = int(
        cli(env, "partner", "create", "E2E", "--plan", "sandbox", *extra).stdout.split()[-1]
    )
    key = cli(env, "key", "create", str(partner)).stdout.split()[-1]
    return partner, key


def _ledger(tmp_path: Path, partner: int, month: str) -> int:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dataflow.db'}")
    with engine.connect() as conn:
        value = conn.execute(
            sa.text("SELECT accesses FROM usage_ledger WHERE partner_id = :p AND month = :m"),
            {"p": partner, "m": month},
        ).scalar_one_or_none()
    engine.dispose()
    return int(value or 0)


def _reconcile(env: dict[str, str], month: str) -> dict[str, object]:
    out = cli(env, "usage", "reconcile", "--month", month, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


class Load:
    """Clients hammering the rows endpoint in a thread until stopped; tallies outcomes."""

    def __init__(self, base: str, key: str, clients: int) -> None:
        self.base, self.key, self.clients = base, key, clients
        self.outcomes: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _client(self, http: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            try:
                r = await http.get(ROWS, params={"limit": "5"})
                self.outcomes[str(r.status_code)] += 1
            except httpx.HTTPError:
                self.outcomes["error"] += 1  # in flight when something died
                await asyncio.sleep(0.05)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.clients, max_keepalive_connections=self.clients)
        async with httpx.AsyncClient(
            base_url=self.base,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=10,
            limits=limits,
        ) as http:
            await asyncio.gather(*(self._client(http) for _ in range(self.clients)))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def wait_for(self, status: str, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.outcomes[status] < n:
            assert time.monotonic() < deadline, f"waited for {n} x {status}: {self.outcomes}"
            time.sleep(0.02)


def test_cap_holds_across_two_workers_under_200_concurrent_clients(
    tmp_path: Path, release: ReleaseSummary, own_redis: OwnRedis
) -> None:
    cap = 57
    env = base_env(tmp_path, own_redis.url)
    partner, key = _partner(env, "--cap", str(cap))

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
    report = _reconcile(env, month)
    assert report["partners"] == [
        {
            "partner_id": partner,
            "counter": cap,
            "stream": cap,
            "records": cap,
            "ledger": cap,
            "agrees": True,
        }
    ]


def test_worker_killed_under_load_loses_no_served_access(
    tmp_path: Path, release: ReleaseSummary, own_redis: OwnRedis
) -> None:
    env = base_env(tmp_path, own_redis.url)
    partner, key = _partner(env)
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
    report = _reconcile(env, month)  # settles what is left, then compares
    (row,) = report["partners"]  # type: ignore[misc]
    assert row["ledger"] == counted and row["agrees"]


def test_redis_killed_and_restarted_mid_load(
    tmp_path: Path, release: ReleaseSummary, own_redis: OwnRedis
) -> None:
    env = base_env(tmp_path, own_redis.url)
    partner, key = _partner(env)
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
    report = _reconcile(env, month)
    (row,) = report["partners"]  # type: ignore[misc]
    assert row["ledger"] == counted and row["agrees"]


def test_settler_killed_mid_batch_then_rerun_is_exact(tmp_path: Path, own_redis: OwnRedis) -> None:
    env = base_env(tmp_path, own_redis.url)
    partner, _ = _partner(env)
    month = billing_month(datetime.now(UTC))
    total = 4000
    script = (
        "import asyncio, sys\n"
        "from datetime import UTC, datetime\n"
        "from dataflow.metering.models import Access, billing_month\n"
        "from dataflow.metering.redis_meter import RedisMeter\n"
        "async def main():\n"
        "    m = RedisMeter.from_url(sys.argv[1], prefix='df', batching=False)\n"
        "    now = datetime.now(UTC)\n"
        "    a = Access(partner_id=int(sys.argv[2]), key_id='k', month=billing_month(now),\n"
        "               day=now.date(), table='t', release='r')\n"
        "    for _ in range(int(sys.argv[3])):\n"
        "        assert (await m.acquire(a)).allowed\n"
        "    await m.aclose()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, own_redis.url, str(partner), str(total)],
        check=True,
        env=env,
    )
    settler = subprocess.Popen(
        [sys.executable, "-m", "dataflow", "usage", "settle", "--batch", "3"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while _ledger(tmp_path, partner, month) < 300:
        assert settler.poll() is None, "the settler finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    settler.send_signal(signal.SIGKILL)
    settler.wait()
    at_kill = _ledger(tmp_path, partner, month)
    assert 300 <= at_kill < total
    cli(env, "usage", "settle")  # the rerun re-reads from the watermark
    cli(env, "usage", "settle")  # and once more: nothing left, nothing doubled
    assert _ledger(tmp_path, partner, month) == total
    report = _reconcile(env, month)
    assert report["agrees"] is True
