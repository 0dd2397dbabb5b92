"""End-to-end fixtures: a redis-server of the test's own (never the shared one), a server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.own_redis import OwnRedis, free_port, own_redis

__all__ = ["ROWS", "Load", "OwnRedis", "free_port", "own_redis"]

ROWS = "/v1/tables/sales_municipality_cnae_division_month/rows"


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataflow", *args],
        env=env,
        check=check,
        capture_output=True,
        text=True,
    )


@contextmanager
def serve(env: dict[str, str], release: Path, *, workers: int = 2) -> Iterator[tuple[str, int]]:
    """`dataflow serve` as a real process; yields (base URL, pid of the main process)."""
    port = free_port()
    log = (Path(env["DATAFLOW_DATA_DIR"]) / f"serve-{port}.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dataflow",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--release",
            str(release),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # a loaded CI machine starts two workers slowly
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError("server did not start: " + Path(log.name).read_text())
    try:
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def worker_pids(main_pid: int) -> list[int]:
    """The server's worker processes (children of the main process), from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == main_pid:
            pids.append(int(entry.name))
    return pids


def base_env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATAFLOW_DATA_DIR": str(tmp_path),
        "DATAFLOW_REDIS_URL": redis_url,
        "DATAFLOW_REDIS_PREFIX": "df",
        "DATAFLOW_SETTLE_INTERVAL": "1",
        "DATAFLOW_METER_TIMEOUT": "0.5",
    }


class Load:
    """Clients hammering the rows endpoint in a thread until stopped; tallies outcomes, and
    keeps each one's time (``events``: monotonic seconds, outcome) for tests that look at a
    window of the run."""

    def __init__(self, base: str, key: str, clients: int) -> None:
        self.base, self.key, self.clients = base, key, clients
        self.outcomes: Counter[str] = Counter()
        self.events: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def _tally(self, outcome: str) -> None:
        self.outcomes[outcome] += 1
        self.events.append((time.monotonic(), outcome))

    async def _client(self, http: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            try:
                r = await http.get(ROWS, params={"limit": "5"})
                self._tally(str(r.status_code))
            except httpx.HTTPError:
                self._tally("error")  # in flight when something died
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
