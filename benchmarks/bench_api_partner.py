"""Partner API against baselines measured in the same run (wrk on loopback, one process each).

1. A filtered 100-row JSON page with key check and metering on, one dataflow worker, vs Datasette
   (one process, counts and facet suggestions off) serving the same table from SQLite. Datasette is
   installed into a temporary virtualenv by uv (it is not a dependency of dataflow).
2. A 1 M-cell extract through ``dataflow.client``, request to pyarrow table: Arrow IPC and Parquet
   vs JSON (the client pages; the server's response cache off so every run computes).
3. RSS of each worker of a 2-worker server with the standard release loaded.

The machine is shared: absolute numbers are noisy, the ratios are what to read.
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
MUNICIPALITY = "3106200"
OURS = f"/v1/tables/{TABLE}/rows?municipality={MUNICIPALITY}&limit=100"
DATASETTE = f"/bench/cells.json?municipality={MUNICIPALITY}&_size=100&_shape=objects&_nocount=1"
UV = Path(__file__).resolve().parents[1] / ".tools" / "bin" / "uv"
SECONDS = 10


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


@contextmanager
def _datasette(exe: Path, db: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            str(exe),
            "serve",
            "--immutable",
            str(db),
            "--port",
            str(port),
            "--setting",
            "suggest_facets",
            "off",
            "--setting",
            "allow_facet",
            "off",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + DATASETTE, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _page_vs_datasette(
    env: dict[str, str], key: str, release: Path, tmp: Path
) -> dict[str, object]:
    db = tmp / "bench.db"
    _to_sqlite(
        release / "tables" / f"{TABLE}.parquet", db, ["municipality", "cnae_division", "month"]
    )
    exe = _datasette_venv(tmp)
    runs: dict[str, dict[str, float]] = {}
    with _datasette(exe, db) as base:
        body = httpx.get(base + DATASETTE).json()
        assert len(body["rows"]) == 100, body
        wrk(base + DATASETTE, key=key, seconds=3)
        runs["datasette"] = wrk(base + DATASETTE, key=key, seconds=SECONDS)
    redis_url = os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    for name, extra in (
        ("dataflow_redis_meter", {"DATAFLOW_METER": "redis", "DATAFLOW_REDIS_URL": redis_url}),
        ("dataflow_embedded_meter", {"DATAFLOW_METER": "embedded"}),
    ):
        with server({**env, **extra}, "--workers", "1") as base:
            r = httpx.get(base + OURS, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200 and len(r.json()["rows"]) == 100, r.text
            wrk(base + OURS, key=key, seconds=3)
            runs[name] = wrk(base + OURS, key=key, seconds=SECONDS)
    base_rps = runs["datasette"]["requests_per_s"]
    return {
        "what": "filtered 100-row JSON page (municipality=3106200), 64 connections, one process "
        "each; dataflow with key check + metering; Datasette --immutable, suggest_facets off, "
        "_nocount=1, indexed SQLite",
        "runs": runs,
        "ratio_redis_meter_over_datasette": round(
            runs["dataflow_redis_meter"]["requests_per_s"] / base_rps, 2
        ),
        "ratio_embedded_meter_over_datasette": round(
            runs["dataflow_embedded_meter"]["requests_per_s"] / base_rps, 2
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
        for _ in range(3):
            for wire in ("json", "arrow", "parquet"):
                started = time.perf_counter()
                pages = list(api.pages("bench_extract", wire=wire))  # type: ignore[arg-type]
                times[wire].append(time.perf_counter() - started)
                requests[wire] = len(pages)
                assert sum(p.num_rows for p in pages) * 6 == cells
    median = {w: statistics.median(t) for w, t in times.items()}
    return {
        "what": f"{cells:,}-cell extract through dataflow.client, request to pyarrow table "
        "(median of 3; JSON pages of 10,000 rows, Arrow/Parquet of 250,000)",
        "seconds": {w: round(s, 3) for w, s in median.items()},
        "requests": requests,
        "ratio_json_over_arrow": round(median["json"] / median["arrow"], 2),
        "ratio_json_over_parquet": round(median["json"] / median["parquet"], 2),
    }


def _worker_rss(env: dict[str, str], key: str) -> dict[str, object]:
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
        wrk(base + OURS, key=key, seconds=3)
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
    }


def main() -> None:
    ensure_wrk()
    prefix = f"dfbench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        env = {**os.environ, "DATAFLOW_DATA_DIR": str(tmp), "DATAFLOW_REDIS_PREFIX": prefix}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        cli(env, "data", "generate", "--items", "200000", "--seed", "1")
        cli(env, "release", "build")
        release = sorted((tmp / "releases").iterdir())[-1]
        partner = cli(env, "partner", "create", "Bench", "--plan", "continuous")
        key = cli(env, "key", "create", partner)
        page = _page_vs_datasette(env, key, release, tmp)
        extract = _extract(tmp)
        rss = _worker_rss(env, key)
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
