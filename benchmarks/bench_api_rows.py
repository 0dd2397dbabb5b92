"""Rows endpoint requests/s, metered (Redis) vs unmetered (DATAFLOW_METER=off), in the same run.

Every configuration serves the same **varied** queries — 300 distinct municipality filters of 100
cells each, sent in turn (``common.varied_filters``) — with the **response cache off**
(``DATAFLOW_API_CACHE_MB=0``): every request runs its query. The runs alternate (off, metered,
metered with in-worker settler, off, …) so that load from anything else on the machine falls on
every side; ratios are of summed throughputs.

- ``metered_redis``: the production layout — batching meter, access records, completions, and a
  settler *process* (`dataflow usage settle --every 5`) on the same machine, moving every record
  into the SQL ledger and trimming the stream while the load runs (its CPU is paid by the same 2
  cores). The settler is a long-running process: it is started, and has finished its first
  round, before the warm-up — its start-up (imports) is not steady-state cost;
- ``metered_redis_settler_in_workers``: the same, but the settler runs inside the API workers
  (``DATAFLOW_SETTLE_INTERVAL=5``), which competes with request handling for their GIL;
- ``metered_redis_settled_after``: counting, records and completions during the window, settlement
  after it (what the meter itself costs the request path).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import polars as pl
import redis

from benchmarks.common import cli, server, varied_filters, write_result, wrk

TABLE = "sales_municipality_cnae_division_month"


def _paths(data_dir: Path) -> list[str]:
    release = sorted(p.parent for p in (data_dir / "releases").glob("*/manifest.json"))[-1]
    frame = pl.read_parquet(release / "tables" / f"{TABLE}.parquet")
    return [
        f"/v1/tables/{TABLE}/rows?municipality={','.join(f)}&limit=100"
        for f in varied_filters(frame)
    ]


@contextmanager
def settler(env: dict[str, str], log: Path) -> Iterator[int]:
    """`dataflow usage settle --every 5`, ready (one round done) when this yields."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dataflow", "usage", "settle", "--every", "5"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
        try:
            deadline = time.monotonic() + 120
            while "settled" not in log.read_text():
                assert proc.poll() is None, "settler exited: " + log.read_text()
                assert time.monotonic() < deadline, "settler did not start"
                time.sleep(0.2)
            yield proc.pid
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _ppid_and_cpu(pid: int) -> tuple[int, float]:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1, 0.0
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_pids(port: str) -> list[int]:
    """The server's main process (its command line names the port) and its workers."""
    procs = [p for p in Path("/proc").iterdir() if p.name.isdigit()]
    main = []
    for p in procs:
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and port.encode() in argv:
            main.append(int(p.name))
    # Forked workers carry the same command line: a set, so none is counted twice.
    return sorted(set(main) | {int(p.name) for p in procs if _ppid_and_cpu(int(p.name))[0] in main})


def measured(
    base: str, key: str, seconds: int, pids: dict[str, list[int]], paths: list[str]
) -> dict[str, object]:
    """wrk's figures plus the CPU the whole serving side spent per request: server workers,
    settler, Redis and wrk itself, in all and per part. The machine is shared; CPU per request
    is what other jobs' load disturbs least (throughput on 2 cores ≈ 2 / CPU per request, when
    nothing else runs)."""

    def cpu() -> dict[str, float]:
        return {part: sum(_ppid_and_cpu(p)[1] for p in ps) for part, ps in pids.items()}

    batches_before = _batches(base)
    before = cpu()
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = wrk(base + paths[0], key=key, seconds=seconds, paths=paths)
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent = {part: t - before[part] for part, t in cpu().items()}
    spent["wrk"] = (wrk_after.ru_utime + wrk_after.ru_stime) - (
        wrk_before.ru_utime + wrk_before.ru_stime
    )
    requests = max(result["requests_per_s"] * seconds, 1.0)
    (n0, trips0), (n1, trips1) = batches_before, _batches(base)
    per_part = {part: round(1e6 * t / requests, 1) for part, t in spent.items()}
    return {
        **result,
        "cpu_us_per_request": round(sum(per_part.values()), 1),
        "cpu_us_per_request_by_part": per_part,
        "meter_accesses_per_round_trip": round((n1 - n0) / (trips1 - trips0), 1)
        if trips1 > trips0
        else None,
    }


def _batches(base: str) -> tuple[float, float]:
    """The meter's accesses and round trips so far (its Prometheus batch-size histogram)."""
    text = httpx.get(base + "/metrics", timeout=10).text
    samples = {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in text.splitlines())
        if name.startswith("dataflow_meter_batch_size_")
    }
    return (
        samples.get("dataflow_meter_batch_size_sum", 0.0),
        samples.get("dataflow_meter_batch_size_count", 0.0),
    )


def main() -> None:
    redis_url = os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"dfbench-{uuid.uuid4().hex[:8]}"
    metered = {"DATAFLOW_METER": "redis", "DATAFLOW_REDIS_URL": redis_url}
    configs = {
        "unmetered": {"DATAFLOW_METER": "off"},  # the response cache is off for all (below)
        "metered_redis": {**metered, "DATAFLOW_SETTLE_INTERVAL": "0"},
        "metered_redis_settler_in_workers": {**metered, "DATAFLOW_SETTLE_INTERVAL": "5"},
        # Counting, records and completions only; everything settles after the window.
        "metered_redis_settled_after": {**metered, "DATAFLOW_SETTLE_INTERVAL": "0"},
    }
    # BENCH_CONFIGS: a comma-separated subset (quick A/B runs); unmetered always runs.
    wanted = os.environ.get("BENCH_CONFIGS")
    if wanted:
        keep = {"unmetered", *wanted.split(",")}
        configs = {name: extra for name, extra in configs.items() if name in keep}
    # BENCH_DATA_DIR: a data dir whose release was built before (skips generate + build); the
    # control-plane database is always a fresh one, so the reconcile sees this run only.
    reuse = os.environ.get("BENCH_DATA_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DATAFLOW_DATA_DIR": reuse or tmp,
            "DATAFLOW_DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.db'}",
            "DATAFLOW_REDIS_PREFIX": prefix,
            "DATAFLOW_API_CACHE_MB": "0",
        }
        if not reuse:
            items = os.environ.get("BENCH_ITEMS", "200000")
            cli(env, "data", "generate", "--items", items, "--seed", "1")
            cli(env, "release", "build")
        paths = _paths(Path(env["DATAFLOW_DATA_DIR"]))
        partner = cli(env, "partner", "create", "Bench", "--plan", "continuous")
        key = cli(env, "key", "create", partner)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
        rounds = int(os.environ.get("BENCH_ROUNDS", "2"))
        seconds = int(os.environ.get("BENCH_SECONDS", "8"))
        loads = [os.getloadavg()[0]]
        local = urlparse(redis_url).hostname in ("127.0.0.1", "localhost", "::1")
        redis_pid = int(redis.Redis.from_url(redis_url).info("server")["process_id"])
        # One server start and load before measuring: the first start of a run reads the release
        # and the modules from a cold page cache, and its workers came up seconds apart (the
        # first measured round, unmetered, was a third of the others in two runs).
        with server({**env, **configs["unmetered"]}, "--workers", "2") as base:
            wrk(base + paths[0], key=key, seconds=5, paths=paths)
        for _ in range(rounds):
            for name, extra in configs.items():
                run_env = {**env, **extra}
                with server(run_env, "--workers", "2") as base:
                    pids = {"server": _server_pids(base.rsplit(":", 1)[1])}
                    if local and name != "unmetered":
                        pids["redis"] = [redis_pid]
                    if name == "metered_redis":
                        with settler(run_env, Path(tmp) / "settler.log") as settler_pid:
                            wrk(base + paths[0], key=key, seconds=3, paths=paths)  # warm-up
                            pids["settler"] = [settler_pid]
                            runs[name].append(measured(base, key, seconds, pids, paths))
                    else:
                        wrk(base + paths[0], key=key, seconds=3, paths=paths)  # warm-up
                        runs[name].append(measured(base, key, seconds, pids, paths))
                loads.append(os.getloadavg()[0])
        # Everything served was settled and agrees (reconcile exits non-zero otherwise), and
        # what was settled is trimmed: the stream holds nothing once all is settled.
        cli({**env, **metered}, "usage", "reconcile")
    client = redis.Redis.from_url(redis_url)
    left = sum(int(client.xlen(k)) for k in client.scan_iter(match=f"{prefix}:*:log"))
    assert left == 0, f"{left} settled stream entries were not trimmed"
    stale = list(client.scan_iter(match=f"{prefix}:*"))
    if stale:
        client.delete(*stale)

    def total(name: str) -> float:
        return sum(r["requests_per_s"] for r in runs[name])

    def cpu(name: str) -> float:
        return sum(r["cpu_us_per_request"] for r in runs[name]) / len(runs[name])

    def ratio(name: str) -> float | None:
        return round(total(name) / total("unmetered"), 3) if name in runs else None

    cpu_ratios = {
        f"cpu_ratio_{name}": round(cpu("unmetered") / cpu(name), 3)
        for name in configs
        if name != "unmetered"
    }

    write_result(
        "api_rows",
        {
            "what": (
                "rows: filtered 100-row JSON pages, VARIED (300 distinct municipality-list "
                "filters in turn), response cache OFF; 2 workers, 64 connections (wrk), "
                "alternating rounds; metered = Redis meter + settler process"
            ),
            "runs": runs,
            "ratio_metered_over_unmetered": ratio("metered_redis"),
            "ratio_settler_in_workers_over_unmetered": ratio("metered_redis_settler_in_workers"),
            "ratio_settled_after_over_unmetered": ratio("metered_redis_settled_after"),
            # Unmetered CPU per request over metered (whole serving side, wrk included): what
            # the throughput ratio is on a quiet CPU-bound machine, measured despite the load.
            **cpu_ratios,
            "reconciled": True,
            "stream_entries_left_after_settlement": left,
            "load_average_1min_per_round": [round(x, 2) for x in loads],
        },
    )


if __name__ == "__main__":
    main()
