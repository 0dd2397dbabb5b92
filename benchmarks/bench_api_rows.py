"""Rows endpoint requests/s, metered (Redis) vs unmetered (DATAFLOW_METER=off), in the same run.

The runs alternate (off, redis, off, redis, …) so that load from anything else on the machine
falls on both sides; the ratio is of the summed throughputs. The metered servers run as in
production: batching meter, access records, completions and the in-process settler.
"""

from __future__ import annotations

import os
import tempfile
import uuid

import redis

from benchmarks.common import cli, server, write_result, wrk

TABLE = "sales_municipality_cnae_division_month"
PATH = f"/v1/tables/{TABLE}/rows?municipality=3106200&limit=100"


def main() -> None:
    redis_url = os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"dfbench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DATAFLOW_DATA_DIR": tmp, "DATAFLOW_REDIS_PREFIX": prefix}
        cli(env, "data", "generate", "--items", "200000", "--seed", "1")
        cli(env, "release", "build")
        partner = cli(env, "partner", "create", "Bench", "--plan", "continuous")
        key = cli(env, "key", "create", partner)
        runs: dict[str, list[dict[str, float]]] = {"unmetered": [], "metered_redis": []}
        rounds = int(os.environ.get("BENCH_ROUNDS", "2"))
        for _ in range(rounds):
            for name, extra in (
                ("unmetered", {"DATAFLOW_METER": "off"}),
                ("metered_redis", {"DATAFLOW_METER": "redis", "DATAFLOW_REDIS_URL": redis_url}),
            ):
                with server({**env, **extra}, "--workers", "2") as base:
                    wrk(base + PATH, key=key, seconds=3)  # warm-up
                    runs[name].append(wrk(base + PATH, key=key, seconds=8))
    client = redis.Redis.from_url(redis_url)
    stale = list(client.scan_iter(match=f"{prefix}:*"))
    if stale:
        client.delete(*stale)

    def total(name: str) -> float:
        return sum(r["requests_per_s"] for r in runs[name])

    ratio = total("metered_redis") / total("unmetered")
    write_result(
        "api_rows",
        {
            "what": (
                "rows: filtered 100-row JSON page; 2 workers, 64 connections (wrk), "
                "alternating rounds"
            ),
            "runs": runs,
            "ratio_metered_over_unmetered": round(ratio, 3),
        },
    )


if __name__ == "__main__":
    main()
