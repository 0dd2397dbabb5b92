"""Partner API against baselines measured in the same run (wrk on loopback, one process each).

1. A filtered 100-row JSON page with key check and metering on, one dataflow worker, vs Datasette
   (one process, counts and facet suggestions off) serving the same table from SQLite. Datasette is
   installed into a temporary virtualenv by uv (it is not a dependency of dataflow).
2. A 1 M-cell extract through ``dataflow.client``, request to pyarrow table: Arrow IPC and Parquet
   vs JSON (the client pages; the server's response cache off so every run computes).
3. RSS of each worker of a 2-worker server with the standard release loaded.

The machine is shared: absolute numbers are noisy, the ratios are what to read. Every figure comes
with the 1-minute load average; the page runs also report the server's CPU time per request (from
/proc), which a busy machine disturbs far less than requests/s or latency. On two or more cores the
server under test runs on the last core and wrk on the first (``taskset``), Datasette likewise.
Sizes: ``BENCH_SECONDS`` (per wrk run, default 10), ``BENCH_ROUNDS`` (default 3), ``BENCH_PIN=0``;
``BENCH_API_DATA_DIR`` reuses a data directory's release (built there on the first run).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pyarrow.parquet as pq
import redis

from benchmarks.common import cli, ensure_wrk, free_port, server, write_result, wrk

TABLE = "sales_municipality_cnae_division_month"


def _ours(level: str, code: str) -> str:
    return f"/v1/tables/{TABLE}/rows?{level}={code}&limit=100"


def _datasette_path(level: str, code: str) -> str:
    return f"/bench/cells.json?{level}={code}&_size=100&_shape=objects&_nocount=1"


def _page_filter(db: Path) -> tuple[str, str]:
    """An equality filter on one level that matches at least 100 cells: a full 100-row page.

    The busiest municipality when one has 100 cells, else the busiest CNAE division (a small
    generated store has fewer than 100 cells per municipality).
    """
    con = sqlite3.connect(db)
    try:
        for level in ("municipality", "cnae_division"):
            code, rows = con.execute(
                f'SELECT "{level}", count(*) AS n FROM cells WHERE "{level}" != \'_T\' '
                f'GROUP BY "{level}" ORDER BY n DESC, "{level}" LIMIT 1'
            ).fetchone()
            if rows >= 100:
                return level, str(code)
    finally:
        con.close()
    raise AssertionError("no municipality or CNAE division has 100 cells")


UV = Path(__file__).resolve().parents[1] / ".tools" / "bin" / "uv"
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))  # per wrk run
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))  # interleaved rounds of every configuration


def _datasette_venv(root: Path) -> Path:
    venv = root / "datasette-venv"
    subprocess.run([str(UV), "venv", "-q", str(venv)], check=True)
    subprocess.run(
        [str(UV), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "datasette"],
        check=True,
    )
    return venv / "bin" / "datasette"


def _to_sqlite(parquet: Path, db: Path, levels: list[str]) -> None:
    """The same cells in SQLite, with an index per level (what a fair Datasette setup has)."""
    frame = pl.read_parquet(parquet)
    frame = frame.with_columns(pl.col(pl.Decimal).cast(pl.Float64))
    con = sqlite3.connect(db)
    cols = ", ".join(
        f'"{c}" {"TEXT" if t == pl.String else "REAL" if t == pl.Float64 else "INTEGER"}'
        for c, t in frame.schema.items()
    )
    con.execute(f"CREATE TABLE cells ({cols})")
    marks = ", ".join("?" * frame.width)
    con.executemany(f"INSERT INTO cells VALUES ({marks})", frame.iter_rows())
    for lv in levels:
        con.execute(f'CREATE INDEX cells_{lv} ON cells("{lv}")')
    con.commit()
    con.close()


def _pins() -> tuple[list[str], str | None]:
    """Server under test on the last core, wrk on the first: neither competes with the other.

    The same for Datasette and dataflow (``BENCH_PIN=0`` turns it off).
    """
    cpus = os.cpu_count() or 1
    if cpus < 2 or os.environ.get("BENCH_PIN", "1") == "0" or not shutil.which("taskset"):
        return [], None
    return ["taskset", "-c", str(cpus - 1)], "0"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants (granian's worker), from /proc."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += ticks.get(current, 0)
        stack.extend(children.get(current, []))
    return total / os.sysconf("SC_CLK_TCK")


def _load() -> float:
    return round(os.getloadavg()[0], 2)


@contextmanager
def _process(cmd: list[str], env: dict[str, str], probe: str, key: str) -> Iterator[int]:
    """A server process, ready once ``probe`` answers 200; yields its pid."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(900):
            try:
                auth = {"Authorization": f"Bearer {key}"}
                if httpx.get(probe, headers=auth, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError(f"server did not start: {cmd}")
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=90)  # a metered server settles once more on shutdown


def _measure(url: str, key: str, pid: int, wrk_cpus: str | None) -> dict[str, float]:
    wrk(url, key=key, seconds=2, threads=1 if wrk_cpus else 2, cpus=wrk_cpus)  # warm-up
    load = _load()
    cpu = _cpu_seconds(pid)
    run = wrk(url, key=key, seconds=SECONDS, threads=1 if wrk_cpus else 2, cpus=wrk_cpus)
    served = run["requests_per_s"] * SECONDS
    run["server_cpu_us_per_request"] = round((_cpu_seconds(pid) - cpu) / served * 1e6, 1)
    run["load_1min"] = load
    return run


def _summary(runs: list[dict[str, float]]) -> dict[str, object]:
    return {
        field: statistics.median(r[field] for r in runs)
        for field in ("requests_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_request")
    } | {"non_2xx": sum(r["non_2xx"] for r in runs), "rounds": runs}


def _page_vs_datasette(
    env: dict[str, str], key: str, release: Path, tmp: Path
) -> dict[str, object]:
    db = tmp / "bench.db"
    _to_sqlite(
        release / "tables" / f"{TABLE}.parquet", db, ["municipality", "cnae_division", "month"]
    )
    level, code = _page_filter(db)
    exe = _datasette_venv(tmp)
    pin, wrk_cpus = _pins()
    redis_url = os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    ports = {name: free_port() for name in ("datasette", "redis_meter", "embedded_meter")}
    datasette = [
        *pin,
        str(exe),
        "serve",
        "--immutable",
        str(db),
        "--port",
        str(ports["datasette"]),
        "--setting",
        "suggest_facets",
        "off",
        "--setting",
        "allow_facet",
        "off",
    ]

    def ours(name: str) -> list[str]:
        port = str(ports[name])
        return [*pin, sys.executable, "-m", "dataflow", "serve", "--port", port, "--workers", "1"]

    url = {
        "datasette": f"http://127.0.0.1:{ports['datasette']}{_datasette_path(level, code)}",
        "redis_meter": f"http://127.0.0.1:{ports['redis_meter']}{_ours(level, code)}",
        "embedded_meter": f"http://127.0.0.1:{ports['embedded_meter']}{_ours(level, code)}",
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in url}
    redis_env = {**env, "DATAFLOW_METER": "redis", "DATAFLOW_REDIS_URL": redis_url}
    with (
        _process(datasette, env, url["datasette"], key) as ds_pid,
        _process(ours("redis_meter"), redis_env, url["redis_meter"], key) as redis_pid,
        _process(
            ours("embedded_meter"),
            {**env, "DATAFLOW_METER": "embedded"},
            url["embedded_meter"],
            key,
        ) as embedded_pid,
    ):
        assert len(httpx.get(url["datasette"]).json()["rows"]) == 100
        for name in ("redis_meter", "embedded_meter"):
            r = httpx.get(url[name], headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200 and len(r.json()["rows"]) == 100, r.text
        pids = {"datasette": ds_pid, "redis_meter": redis_pid, "embedded_meter": embedded_pid}
        for _ in range(ROUNDS):  # interleaved rounds: drift on a shared machine hits all three
            for name in url:
                runs[name].append(_measure(url[name], key, pids[name], wrk_cpus))
    summary = {name: _summary(r) for name, r in runs.items()}
    base = summary["datasette"]

    def ratio(name: str, field: str, *, inverse: bool = False) -> float:
        ours_value, theirs = float(summary[name][field]), float(base[field])  # type: ignore[arg-type]
        return round(theirs / ours_value if inverse else ours_value / theirs, 2)

    return {
        "filter": [level, code],
        "what": f"filtered 100-row JSON page ({level}={code}, the busiest), 64 connections, "
        "one process "
        "each; dataflow with key check + metering; Datasette --immutable, suggest_facets off, "
        f"_nocount=1, indexed SQLite; median of {ROUNDS} interleaved rounds of {SECONDS} s",
        "pinning": f"server on CPU {pin[-1]}, wrk on CPU {wrk_cpus} (taskset), for every server"
        if pin
        else "none",
        "runs": summary,
        "ratio_redis_meter_over_datasette": ratio("redis_meter", "requests_per_s"),
        "ratio_embedded_meter_over_datasette": ratio("embedded_meter", "requests_per_s"),
        "cpu_per_request_datasette_over_redis_meter": ratio(
            "redis_meter", "server_cpu_us_per_request", inverse=True
        ),
        "cpu_per_request_datasette_over_embedded_meter": ratio(
            "embedded_meter", "server_cpu_us_per_request", inverse=True
        ),
    }


def _extract_release(root: Path) -> tuple[Path, int]:
    """A synthetic release with one table of ≥ 1 M cells (853 × 20 × 10 rows × 6 columns)."""
    rng = np.random.default_rng(1)
    munis = [f"31{i:05d}" for i in range(853)]
    subclasses = [f"47{i:05d}" for i in range(20)]
    months = [f"2025-{m:02d}" for m in range(1, 11)]
    n = len(munis) * len(subclasses) * len(months)
    frame = (
        pl.DataFrame({"municipality": munis})
        .join(pl.DataFrame({"cnae_subclass": subclasses}), how="cross")
        .join(pl.DataFrame({"month": months}), how="cross")
        .with_columns(
            item_value=pl.Series(np.round(rng.lognormal(10, 2, n), 2)),
            invoice_count=pl.Series(rng.integers(1, 5000, n)),
        )
    )
    hidden = pl.Series(rng.random(n) < 0.2)
    frame = frame.with_columns(
        item_value=pl.when(hidden).then(None).otherwise(pl.col("item_value")),
        invoice_count=pl.when(hidden).then(None).otherwise(pl.col("invoice_count")),
        flag=pl.when(hidden).then(pl.lit("X")).otherwise(pl.lit("")),
    )
    release = root / "releases" / "20250101T000000Z-bench0001"
    (release / "tables").mkdir(parents=True)
    pq.write_table(frame.to_arrow(), release / "tables" / "bench_extract.parquet")
    manifest = {
        "format": 1,
        "version": release.name,
        "tables": [
            {
                "id": "bench_extract",
                "title": "Benchmark extract",
                "file": "tables/bench_extract.parquet",
                "hierarchies": [
                    {"name": "geography", "levels": ["municipality"]},
                    {"name": "activity", "levels": ["cnae_subclass"]},
                    {"name": "time", "levels": ["month"]},
                ],
                "measures": ["item_value", "invoice_count"],
                "rows": n,
            }
        ],
    }
    (release / "manifest.json").write_text(json.dumps(manifest))
    return release, n * frame.width


def _extract(tmp: Path) -> dict[str, object]:
    from dataflow.client import Client

    root = tmp / "extract"
    release, cells = _extract_release(root)
    env = {
        **os.environ,
        "DATAFLOW_DATA_DIR": str(root),
        "DATAFLOW_METER": "embedded",
        "DATAFLOW_API_CACHE_MB": "0",
    }
    partner = cli(env, "partner", "create", "Extract", "--plan", "continuous")
    key = cli(env, "key", "create", partner)
    times: dict[str, list[float]] = {"json": [], "arrow": [], "parquet": []}
    requests: dict[str, int] = {}
    with (
        server(env, "--workers", "1", "--release", str(release)) as base,
        Client(base, key, timeout=120) as api,
    ):
        for wire in ("json", "arrow", "parquet"):  # warm-up: first-call costs on both sides
            list(api.pages("bench_extract", wire=wire))  # type: ignore[arg-type]
        loads = [_load()]
        for _ in range(ROUNDS):
            for wire in ("json", "arrow", "parquet"):
                started = time.perf_counter()
                pages = list(api.pages("bench_extract", wire=wire))  # type: ignore[arg-type]
                times[wire].append(time.perf_counter() - started)
                requests[wire] = len(pages)
                assert sum(p.num_rows for p in pages) * 6 == cells
            loads.append(_load())
    median = {w: statistics.median(t) for w, t in times.items()}
    return {
        "what": f"{cells:,}-cell extract through dataflow.client, request to pyarrow table "
        f"(median of {ROUNDS} interleaved rounds; JSON pages of 10,000 rows, Arrow/Parquet of "
        "250,000; the server's response cache off)",
        "load_1min": loads,
        "seconds": {w: round(s, 3) for w, s in median.items()},
        "requests": requests,
        "ratio_json_over_arrow": round(median["json"] / median["arrow"], 2),
        "ratio_json_over_parquet": round(median["json"] / median["parquet"], 2),
    }


def _worker_rss(env: dict[str, str], key: str, page_filter: list[str]) -> dict[str, object]:
    redis_url = os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dataflow", "serve", "--port", str(port), "--workers", "2"],
        env={**env, "DATAFLOW_METER": "redis", "DATAFLOW_REDIS_URL": redis_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        wrk(base + _ours(*page_filter), key=key, seconds=3)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as c:
            for fmt in ("json", "arrow", "parquet", "csv"):
                c.get(f"/v1/tables/{TABLE}/rows", params={"format": fmt, "limit": "10000"})
        children = subprocess.run(
            ["ps", "-o", "pid=,rss=", "--ppid", str(proc.pid)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        rss = {int(children[i]): int(children[i + 1]) / 1024 for i in range(0, len(children), 2)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "what": "RSS of each worker (MiB), 2 workers, standard release, after load",
        "workers_mib": [round(v, 1) for v in rss.values()],
        "max_mib": round(max(rss.values()), 1),
        "load_1min": _load(),
    }


def main() -> None:
    ensure_wrk()
    prefix = f"dfbench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        # BENCH_API_DATA_DIR keeps the generated store and release between runs (the release
        # build, audit included, is the slow part of this benchmark's setup).
        data = Path(os.environ.get("BENCH_API_DATA_DIR") or tmp)
        env = {**os.environ, "DATAFLOW_DATA_DIR": str(data), "DATAFLOW_REDIS_PREFIX": prefix}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if not any((data / "releases").glob("*/manifest.json")):
            cli(env, "data", "generate", "--items", "200000", "--seed", "1")
            cli(env, "release", "build")
        release = sorted(p.parent for p in (data / "releases").glob("*/manifest.json"))[-1]
        partner = cli(env, "partner", "create", "Bench", "--plan", "continuous")
        key = cli(env, "key", "create", partner)
        page = _page_vs_datasette(env, key, release, tmp)
        extract = _extract(tmp)
        rss = _worker_rss(env, key, page["filter"])  # type: ignore[arg-type]
        shutil.rmtree(tmp / "datasette-venv", ignore_errors=True)
    client = redis.Redis.from_url(
        os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    stale = list(client.scan_iter(match=f"{prefix}:*"))
    if stale:
        client.delete(*stale)
    write_result("api_partner", {"page_vs_datasette": page, "extract": extract, "memory": rss})


if __name__ == "__main__":
    main()
