"""End to end: suspend a partner while it makes requests on a running 2-worker server (Redis);
every worker refuses it within seconds; lifting lets requests flow again; all of it audited."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from dataflow.aggregation.release import ReleaseSummary
from dataflow.contracts.actors import Actor
from dataflow.contracts.models import Plan
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from tests.e2e.conftest import serve
from tests.e2e.test_server import TABLE, _cli

REFRESH_BOUND = 3.5  # KeyRing refresh (2 s) + a request in flight + a loaded machine


@pytest.fixture
def running(
    tmp_path: Path, release: ReleaseSummary, redis_url: str, redis_prefix: str, database_url: str
) -> Iterator[tuple[str, dict[str, str]]]:
    env = {
        **os.environ,
        "DATAFLOW_DATA_DIR": str(tmp_path),
        "DATAFLOW_REDIS_URL": redis_url,
        "DATAFLOW_REDIS_PREFIX": redis_prefix,
        "DATAFLOW_DATABASE_URL": database_url,
    }
    with serve(env, release.path) as (base, _pid):
        yield base, env


def _pin_one_client_per_worker(base: str, key: str) -> dict[str, httpx.Client]:
    """A keep-alive connection to each of the two workers (a worker keeps the connections it
    accepted; concurrent connects make both workers accept)."""
    pinned: dict[str, httpx.Client] = {}
    headers = {"Authorization": f"Bearer {key}"}

    def connect(_: int) -> tuple[str, httpx.Client]:
        client = httpx.Client(base_url=base, headers=headers, timeout=10)
        r = client.get("/v1/account")
        assert r.status_code == 200, r.text
        return r.headers["x-dataflow-worker"], client

    for _ in range(10):
        with ThreadPoolExecutor(16) as pool:
            for pid, client in pool.map(connect, range(16)):
                if pid in pinned:
                    client.close()
                else:
                    pinned[pid] = client
        if len(pinned) == 2:
            return pinned
    raise AssertionError(f"reached workers {list(pinned)} only")


class Traffic:
    """A partner's integration making data requests through every worker, in turn."""

    def __init__(self, clients: dict[str, httpx.Client]) -> None:
        self.clients = clients
        self.log: list[tuple[float, str, int]] = []  # (request start, worker, status)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid, client in self.clients.items():
                started = time.time()  # wall clock: compared with the audit entry's time
                r = client.get(f"/v1/tables/{TABLE}/rows", params={"limit": "5"})
                self.log.append((started, pid, r.status_code))
            time.sleep(0.02)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        for client in self.clients.values():
            client.close()

    def switch_time(self, pid: str, since: float, status: int, deadline: float) -> float:
        """Seconds from ``since`` until worker ``pid`` answers ``status`` and keeps doing so."""
        while time.time() < deadline:
            seen = [(t, s) for t, p, s in list(self.log) if p == pid and t >= since]
            first = next((i for i, (_, s) in enumerate(seen) if s == status), None)
            if first is not None and len(seen) - first >= 5:  # five in a row after the switch
                tail = [s for _, s in seen[first:]]
                assert set(tail) == {status}, (pid, tail)
                return seen[first][0] - since
            time.sleep(0.1)
        raise AssertionError(f"worker {pid} never answered {status}: {self.log[-10:]}")


# one running server at a time (with tests/e2e/test_server.py): two cores, slow start-ups
@pytest.mark.xdist_group("e2e-server")
@pytest.mark.slow
def test_suspension_reaches_every_worker_within_seconds(
    running: tuple[str, dict[str, str]], database_url: str
) -> None:
    base, env = running
    service = ContractsService(make_engine(database_url))
    partner = service.create_partner("Live Ltda", Plan.CONTINUOUS, actor=Actor("e2e"))
    key = service.create_key(partner.id, actor=Actor("e2e"))
    time.sleep(2.5)  # the new key reaches every worker's snapshot
    with Traffic(_pin_one_client_per_worker(base, key)) as traffic:
        time.sleep(0.5)
        assert {s for _, _, s in traffic.log} == {200}

        sanction = _cli(env, "partner", "suspend", str(partner.id), "--reason", "e2e: breach")
        # measured from the change's own audit time (written just before its commit)
        suspended_at = service.audit(partner_id=partner.id)[-1].at.timestamp()
        for pid in traffic.clients:
            took = traffic.switch_time(pid, suspended_at, 403, time.time() + 20)
            assert took < REFRESH_BOUND, f"worker {pid} still served {took:.1f}s after suspension"
            print(f"worker {pid}: 403 {took:.2f}s after the suspension was committed")

        _cli(env, "sanction", "lift", sanction)
        lifted_at = service.audit(partner_id=partner.id)[-1].at.timestamp()
        for pid in traffic.clients:
            took = traffic.switch_time(pid, lifted_at, 200, time.time() + 20)
            assert took < REFRESH_BOUND, f"worker {pid} still refused {took:.1f}s after lifting"
            print(f"worker {pid}: 200 {took:.2f}s after the suspension was lifted")

    entries = service.audit(partner_id=partner.id)
    assert [e.action for e in entries] == [
        "partner.create",
        "member.add",
        "contract.create",
        "key.create",
        "sanction.suspension",
        "sanction.lift",
    ]
    assert [e.actor.split(":")[0] for e in entries[-2:]] == ["cli", "cli"]
    assert entries[-1].before and entries[-1].after and entries[-1].after["lifted_at"]
