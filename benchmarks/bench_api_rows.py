"""Rows endpoint requests/s, metered (Redis) vs unmetered (DATAFLOW_METER=off), in the same run.

The runs alternate (off, metered, metered with in-worker settler, off, …) so that load from
anything else on the machine falls on every side; ratios are of summed throughputs.

- ``metered_redis``: the production layout — batching meter, access records, completions, and a
  settler *process* (`dataflow usage settle --every 5`) on the same machine, moving every record
  into the SQL ledger while the load runs (its CPU is paid by the same 2 cores);
- ``metered_redis_settler_in_workers``: the same, but the settler runs inside the API workers
  (``DATAFLOW_SETTLE_INTERVAL=5``), which competes with request handling for their GIL;
- ``metered_redis_settled_after``: counting, records and completions during the window, settlement
  after it (what the meter itself costs the request path).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from benchmarks.common import cli, server, write_result, wrk

TABLE = "sales_municipality_cnae_division_month"
PATH = f"/v1/tables/{TABLE}/rows?municipality=3106200&limit=100"


@contextmanager
def settler(env: dict[str, str]) -> Iterator[None]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dataflow", "usage", "settle", "--every", "5"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    redis_url = os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"dfbench-{uuid.uuid4().hex[:8]}"
    metered = {"DATAFLOW_METER": "redis", "DATAFLOW_REDIS_URL": redis_url}
    configs = {
        "unmetered": {"DATAFLOW_METER": "off"},
        "metered_redis": {**metered, "DATAFLOW_SETTLE_INTERVAL": "0"},
        "metered_redis_settler_in_workers": {**metered, "DATAFLOW_SETTLE_INTERVAL": "5"},
        # Counting, records and completions only; everything settles after the window.
        "metered_redis_settled_after": {**metered, "DATAFLOW_SETTLE_INTERVAL": "0"},
    }
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DATAFLOW_DATA_DIR": tmp, "DATAFLOW_REDIS_PREFIX": prefix}
        cli(env, "data", "generate", "--items", "200000", "--seed", "1")
        cli(env, "release", "build")
        partner = cli(env, "partner", "create", "Bench", "--plan", "continuous")
        key = cli(env, "key", "create", partner)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
        rounds = int(os.environ.get("BENCH_ROUNDS", "2"))
        for _ in range(rounds):
            for name, extra in configs.items():
                run_env = {**env, **extra}
                with server(run_env, "--workers", "2") as base:
                    if name == "metered_redis":
                        with settler(run_env):
                            wrk(base + PATH, key=key, seconds=3)  # warm-up
                            runs[name].append(wrk(base + PATH, key=key, seconds=8))
                    else:
                        wrk(base + PATH, key=key, seconds=3)  # warm-up
                        runs[name].append(wrk(base + PATH, key=key, seconds=8))
        # Everything served was settled and agrees (reconcile exits non-zero otherwise).
        cli({**env, **metered}, "usage", "reconcile")
    client = redis.Redis.from_url(redis_url)
    stale = list(client.scan_iter(match=f"{prefix}:*"))
    if stale:
        client.delete(*stale)

    def total(name: str) -> float:
        return sum(r["requests_per_s"] for r in runs[name])

    write_result(
        "api_rows",
        {
            "what": (
                "rows: filtered 100-row JSON page; 2 workers, 64 connections (wrk), "
                "alternating rounds; metered = Redis meter + settler process"
            ),
            "runs": runs,
            "ratio_metered_over_unmetered": round(total("metered_redis") / total("unmetered"), 3),
            "ratio_settler_in_workers_over_unmetered": round(
                total("metered_redis_settler_in_workers") / total("unmetered"), 3
            ),
            "ratio_settled_after_over_unmetered": round(
                total("metered_redis_settled_after") / total("unmetered"), 3
            ),
            "reconciled": True,
        },
    )


if __name__ == "__main__":
    main()
