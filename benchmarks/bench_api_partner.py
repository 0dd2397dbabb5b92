"""Partner API against baselines measured in the same run (wrk on loopback, one process each).

1. Filtered 100-row JSON pages, **varied queries**: 300 distinct municipality filters sent in turn
   (``common.varied_filters``), one dataflow worker with key check and the Redis meter and its
   **response cache off**, vs Datasette (one process, counts and facet suggestions off) serving the
   same table from SQLite with an index on every level (the filter column among them), rows in the
   same order. Beside them, for reference, dataflow answering **one repeated URL from its cache**
   (how the figure before issue 20 was measured). Datasette is installed into a temporary
   virtualenv by uv (it is not a dependency of dataflow).
2. A 1 M-cell extract through ``dataflow.client``, request to pyarrow table: Arrow IPC and Parquet
   vs JSON (the client pages; the server's response cache off so every run computes).
3. RSS of each worker of a 2-worker server with the standard release loaded.

The machine is shared: absolute numbers are noisy, the ratios are what to read. Every figure comes
with the 1-minute load average; the page runs also report the server's CPU time per request (from
/proc), which a busy machine disturbs far less than requests/s or latency. On two or more cores the
server under test runs on the last core and wrk on the first (``taskset``), Datasette likewise.
Sizes: ``BENCH_SECONDS`` (per wrk run, default 10), ``BENCH_ROUNDS`` (default 3), ``BENCH_PIN=0``;
``BENCH_API_DATA_DIR`` reuses a data directory's release (built there on the first run);
``BENCH_API_PARTS=page`` runs only the page comparison (``page,extract,memory`` by default).
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

from benchmarks.common import cli, ensure_wrk, free_port, server, varied_filters, write_result, wrk

TABLE = "sales_municipality_cnae_division_month"
LEVELS = ["municipality", "cnae_division", "month"]


def _ours(municipalities: list[str]) -> str:
    return f"/v1/tables/{TABLE}/rows?municipality={','.join(municipalities)}&limit=100"


def _datasette_path(municipalities: list[str]) -> str:
    listed = ",".join(municipalities)
    return f"/bench/cells.json?municipality__in={listed}&_size=100&_shape=objects&_nocount=1"


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


def _to_sqlite(frame: pl.DataFrame, db: Path, levels: list[str]) -> None:
    """The same cells in SQLite, in the same (canonical) order, with an index per level (what a
    fair Datasette setup has: an index on the filter column)."""
    frame = frame.sort(levels).with_columns(pl.col(pl.Decimal).cast(pl.Float64))
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


def _measure(
    url: str, key: str, pid: int, wrk_cpus: str | None, paths: list[str] | None
) -> dict[str, float]:
    threads = 1 if wrk_cpus else 2
    wrk(url, key=key, seconds=2, threads=threads, cpus=wrk_cpus, paths=paths)  # warm-up
    load = _load()
    cpu = _cpu_seconds(pid)
    run = wrk(url, key=key, seconds=SECONDS, threads=threads, cpus=wrk_cpus, paths=paths)
    served = run["requests_per_s"] * SECONDS
    run["server_cpu_us_per_request"] = round((_cpu_seconds(pid) - cpu) / served * 1e6, 1)
    run["load_1min"] = load
    return run


def _summary(runs: list[dict[str, float]]) -> dict[str, object]:
    return {
        field: statistics.median(r[field] for r in runs)
        for field in ("requests_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_request")
    } | {"non_2xx": sum(r["non_2xx"] for r in runs), "rounds": runs}


def _same_rows(ours: httpx.Response, theirs: httpx.Response) -> None:
    """Both servers answer the filter with the same 100 cells, in the same order."""
    assert ours.status_code == 200 and theirs.status_code == 200, (ours.text, theirs.text)
    mine, other = ours.json()["rows"], theirs.json()["rows"]
    assert len(mine) == len(other) == 100, (len(mine), len(other))
    assert [[r[lv] for lv in LEVELS] for r in mine] == [[r[lv] for lv in LEVELS] for r in other]


def _page_vs_datasette(
    env: dict[str, str], key: str, release: Path, tmp: Path
) -> dict[str, object]:
    db = tmp / "bench.db"
    frame = pl.read_parquet(release / "tables" / f"{TABLE}.parquet")
    _to_sqlite(frame, db, LEVELS)
    filters = varied_filters(frame)
    exe = _datasette_venv(tmp)
    pin, wrk_cpus = _pins()
    redis_url = os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    ports = {name: free_port() for name in ("datasette", "redis_meter", "redis_meter_cached")}
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

    base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    paths: dict[str, list[str] | None] = {
        "datasette": [_datasette_path(f) for f in filters],
        "redis_meter": [_ours(f) for f in filters],
        "redis_meter_cached": None,  # one URL over and over, from the response cache
    }
    url = {
        "datasette": base["datasette"] + _datasette_path(filters[0]),
        "redis_meter": base["redis_meter"] + _ours(filters[0]),
        "redis_meter_cached": base["redis_meter_cached"] + _ours(filters[0]),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in url}
    redis_env = {**env, "DATAFLOW_METER": "redis", "DATAFLOW_REDIS_URL": redis_url}
    with (
        _process(datasette, env, url["datasette"], key) as ds_pid,
        _process(
            ours("redis_meter"),
            {**redis_env, "DATAFLOW_API_CACHE_MB": "0"},
            url["redis_meter"],
            key,
        ) as redis_pid,
        _process(ours("redis_meter_cached"), redis_env, url["redis_meter_cached"], key) as c_pid,
    ):
        auth = {"Authorization": f"Bearer {key}"}
        for f in (filters[0], filters[len(filters) // 2], filters[-1]):
            _same_rows(
                httpx.get(base["redis_meter"] + _ours(f), headers=auth),
                httpx.get(base["datasette"] + _datasette_path(f)),
            )
        pids = {"datasette": ds_pid, "redis_meter": redis_pid, "redis_meter_cached": c_pid}
        for _ in range(ROUNDS):  # interleaved rounds: drift on a shared machine hits all three
            for name in url:
                runs[name].append(_measure(url[name], key, pids[name], wrk_cpus, paths[name]))
    summary = {name: _summary(r) for name, r in runs.items()}
    base_summary = summary["datasette"]

    def ratio(name: str, field: str, *, inverse: bool = False) -> float:
        ours_value = float(summary[name][field])  # type: ignore[arg-type]
        theirs = float(base_summary[field])  # type: ignore[arg-type]
        return round(theirs / ours_value if inverse else ours_value / theirs, 2)

    return {
        "filters": len(filters),
        "municipalities_per_filter": [min(map(len, filters)), max(map(len, filters))],
        "what": "filtered 100-row JSON pages, 64 connections, one process each; VARIED: "
        f"{len(filters)} distinct municipality-list filters in turn (each 100 cells); "
        "dataflow: key check + Redis meter, response cache OFF; Datasette --immutable, "
        "suggest_facets off, _nocount=1, SQLite indexed on every level, same row order; "
        "redis_meter_cached: one URL repeated, response cache ON (the pre-issue-20 method); "
        f"median of {ROUNDS} interleaved rounds of {SECONDS} s",
        "pinning": f"server on CPU {pin[-1]}, wrk on CPU {wrk_cpus} (taskset), for every server"
        if pin
        else "none",
        "runs": summary,
        "ratio_redis_meter_over_datasette": ratio("redis_meter", "requests_per_s"),
        "ratio_redis_meter_cached_repeated_over_datasette": ratio(
            "redis_meter_cached", "requests_per_s"
        ),
        "cpu_per_request_datasette_over_redis_meter": ratio(
            "redis_meter", "server_cpu_us_per_request", inverse=True
        ),
        "p99_ms_per_round_redis_meter": [r["p99_ms"] for r in runs["redis_meter"]],
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


def _worker_rss(env: dict[str, str], key: str, municipalities: list[str]) -> dict[str, object]:
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
        wrk(base + _ours(municipalities), key=key, seconds=3)
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
        parts = os.environ.get("BENCH_API_PARTS", "page,extract,memory").split(",")
        results: dict[str, object] = {}
        if "page" in parts:
            results["page_vs_datasette"] = _page_vs_datasette(env, key, release, tmp)
        if "extract" in parts:
            results["extract"] = _extract(tmp)
        if "memory" in parts:
            frame = pl.read_parquet(release / "tables" / f"{TABLE}.parquet")
            results["memory"] = _worker_rss(env, key, varied_filters(frame)[0])
        shutil.rmtree(tmp / "datasette-venv", ignore_errors=True)
    client = redis.Redis.from_url(
        os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    stale = list(client.scan_iter(match=f"{prefix}:*"))
    if stale:
        client.delete(*stale)
    write_result("api_partner", results)


if __name__ == "__main__":
    main()
