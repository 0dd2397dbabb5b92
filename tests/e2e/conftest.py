"""End-to-end fixtures: a redis-server of the test's own (never the shared one), a server."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnRedis:
    """A redis-server on a free port with AOF on (``appendfsync always``), in tmp_path.

    ``--save ""`` turns RDB snapshots off: the AOF alone is the durability under test.
    """

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.dir),
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise AssertionError("own redis-server did not start")

    def kill(self) -> None:
        """kill -9: no chance to flush anything but what the AOF policy already wrote."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)  # a paused one too
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def pause(self) -> None:
        """SIGSTOP: a stalled Redis, not a dead one; connections stay open, replies come late."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = OwnRedis(directory)
    server.start()
    yield server
    server.kill()


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
