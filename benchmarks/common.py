"""Shared benchmark plumbing: results files, a real server process, wrk on loopback."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import polars as pl

RESULTS = Path(__file__).resolve().parent / "results"


def write_result(name: str, data: dict[str, object]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        **data,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))
    return path


def ensure_wrk() -> str:
    """wrk (Debian package) is the load generator; install it when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk (Debian package) for the load benchmarks…", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
        found = shutil.which("wrk")
    assert found, "wrk could not be installed"
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "dataflow", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


@contextmanager
def server(env: dict[str, str], *args: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dataflow", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=90)  # a metered server settles once more on shutdown


def _varied_script(paths: list[str]) -> str:
    """A wrk Lua script that sends ``paths`` in turn (each wrk thread from its own offset)."""
    listed = ",\n".join(json.dumps(p) for p in paths)  # JSON strings are Lua strings here
    return (
        f"local paths = {{\n{listed}\n}}\n"
        "local i = 0\n"
        "local threads = 0\n"
        "function setup(thread) threads = threads + 1; thread:set('offset', threads * 97) end\n"
        "function init(args) i = (offset or 0) % #paths end\n"
        "function request()\n"
        "  i = i % #paths + 1\n"
        "  return wrk.format(nil, paths[i])\n"
        "end\n"
    )


def wrk(
    url: str,
    *,
    key: str,
    seconds: int = 10,
    connections: int = 64,
    threads: int = 2,
    cpus: str | None = None,
    paths: list[str] | None = None,
) -> dict[str, float]:
    """Run wrk and parse requests/s and latency percentiles (ms); ``cpus`` pins it (taskset).

    With ``paths`` (path + query strings on ``url``'s host) every request takes the next one in
    turn: varied queries, so that no answer is the same as the one before.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        extra: list[str] = []
        if paths:
            script.write(_varied_script(paths))
            script.flush()
            extra = ["-s", script.name]
        out = subprocess.run(
            [
                *(["taskset", "-c", cpus] if cpus else []),
                ensure_wrk(),
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                *extra,
                "-H",
                f"Authorization: Bearer {key}",
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {
        "requests_per_s": rps,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
        "non_2xx": float(non2xx.group(1)) if non2xx else 0.0,
    }


def varied_filters(frame: pl.DataFrame, *, count: int = 300, rows: int = 100) -> list[list[str]]:
    """``count`` distinct municipality filters on the municipality table, each ``rows`` rows.

    At the benchmark's sizes no single municipality has 100 cells (the busiest has 76 at 2×10⁵
    items, 342 at 10⁷, the 300th 20), so each filter is a list: the municipalities from the i-th
    in code order on, until they hold at least ``rows`` cells. Every filter differs from the
    others (its first municipality does), so with the response cache off every request runs.
    """
    sizes = (
        frame.filter(pl.col("municipality") != "_T")
        .group_by("municipality")
        .len()
        .sort("municipality")
    )
    codes, counts = sizes["municipality"].to_list(), sizes["len"].to_list()
    out: list[list[str]] = []
    for start in range(len(codes)):
        held, end = 0, start
        while end < len(codes) and held < rows:
            held += counts[end]
            end += 1
        if held < rows:
            break
        out.append(codes[start:end])
        if len(out) == count:
            return out
    raise AssertionError(f"only {len(out)} municipality lists of {rows} cells in this table")
