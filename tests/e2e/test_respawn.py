"""One crashed worker must not take the API down: under load, SIGKILL one of two workers (as
the OOM killer or a crash in a C extension would); the server replaces it while the other keeps
serving, and counting stays exact (`usage reconcile` passes)."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from dataflow.aggregation.release import ReleaseSummary
from dataflow.contracts.models import Plan
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.metering.models import billing_month
from tests.e2e.conftest import Load, OwnRedis, base_env, cli, serve, worker_pids

pytestmark = [pytest.mark.slow, pytest.mark.redis]


def _partner(tmp_path: Path) -> tuple[int, str]:
    contracts = ContractsService(make_engine(f"sqlite:///{tmp_path / 'dataflow.db'}"))
    partner = contracts.create_partner("Respawn", Plan.CONTINUOUS)
    key = contracts.create_key(partner.id)
    contracts.engine.dispose()
    return partner.id, key


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _answering_worker(base: str, key: str) -> int | None:
    """The pid of the worker that answers a fresh connection (None if none answers)."""
    try:
        r = httpx.get(base + "/v1/account", headers={"Authorization": f"Bearer {key}"}, timeout=2)
    except httpx.HTTPError:
        return None
    return int(r.headers["X-Dataflow-Worker"]) if r.status_code == 200 else None


def test_a_killed_worker_is_replaced_while_the_other_keeps_serving(
    tmp_path: Path, release: ReleaseSummary, own_redis: OwnRedis
) -> None:
    env = base_env(tmp_path, own_redis.url)
    partner, key = _partner(tmp_path)
    month = billing_month(datetime.now(UTC))
    with serve(env, release.path) as (base, main_pid), Load(base, key, clients=16) as load:
        load.wait_for("200", 100)
        # the victim is the busier worker (the one holding the load's connections), so its
        # clients see their connections die and must be served by the other one
        survivor, victim = sorted(worker_pids(main_pid), key=_cpu_ticks)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        replacement = None
        while replacement is None:  # a new worker, answering requests of its own
            assert time.monotonic() - killed_at < 45, (worker_pids(main_pid), load.outcomes)
            pid = _answering_worker(base, key)
            if pid is not None and pid not in (victim, survivor):
                replacement = pid
            time.sleep(0.1)
        replaced_after = time.monotonic() - killed_at
        time.sleep(max(0.0, 5 - replaced_after))  # at least 2 s of answers after the grace
        time.sleep(1)
        workers = sorted(worker_pids(main_pid))
    assert workers == sorted([survivor, replacement])
    port = base.rsplit(":", 1)[1]
    log = (tmp_path / f"serve-{port}.log").read_text()
    assert "Unexpected exit from worker" in log and "Respawning worker" in log
    assert "Granian shutdown completed" in log  # the replacement stops cleanly too
    after = [outcome for at, outcome in load.events if at >= killed_at + 3]
    ok = after.count("200")
    # from 3 s after the kill, at least 90 % of answers are 200 (the bar)
    assert len(after) >= 100 and ok >= 0.9 * len(after), (len(after), ok, load.outcomes)
    print(
        f"replaced in {replaced_after:.1f} s; from 3 s after the kill: {ok}/{len(after)} "
        f"answers 200 ({100 * ok / len(after):.1f} %); whole run {dict(load.outcomes)}"
    )
    # counting intact: settle what the workers left, compare counter, stream, records, ledger
    out = cli(env, "usage", "reconcile", "--month", month, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    (row,) = json.loads(out.stdout)["partners"]
    assert row["partner_id"] == partner and row["agrees"] and row["counter"] >= load.outcomes["200"]
