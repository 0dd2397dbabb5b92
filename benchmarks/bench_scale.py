"""A month of MG at scale (issue 19): bounded memory, DuckDB against Spark, ingestion scaled out.

Parts (``BENCH_SCALE_PARTS``, default ``memory,engines,ingest``):

- ``memory``: for each size in ``BENCH_SCALE_SIZES`` (default ``10000000,100000000``), one month
  generated (``dataflow data generate``) then built (``dataflow release build --memory-limit
  BENCH_SCALE_MEMORY``, default 4) — each a child process whose whole process tree's resident
  memory is sampled from /proc; wall time, peak RSS, partitions, and the growth of build time
  from one size to the next.
- ``engines``: the catalogue's contributions and cells of one ``BENCH_SCALE_ENGINE_ITEMS`` store
  (default 10⁷) computed by DuckDB and by Spark ``local[2]``: identical cells, time ratio.
- ``ingest``: ``BENCH_SCALE_DOCUMENTS`` (default 10⁵) generated XML documents ingested by the
  local pool and by Spark local: identical stores and quarantine, time ratio.

The load average (``os.getloadavg``) is recorded beside every figure: the machine is shared.
Heavy runs should be serialized: ``flock /tmp/bench.lock .tools/bin/uv run --frozen python -m
benchmarks scale``. Stores are kept under ``BENCH_SCALE_DIR`` (default a temporary directory).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.proctree import run_measured

from benchmarks.common import write_result

REPO = Path(__file__).resolve().parents[1]
GB = 1 << 30


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _dataflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "dataflow", *args]


def _generate(store: Path, items: int) -> dict[str, object]:
    load = _load()
    m = run_measured(
        _dataflow("data", "generate", "--items", str(items), "--seed", "1", "--months",
                  "2026-03", "--out", str(store))
    )  # fmt: skip
    if m.returncode != 0:
        raise RuntimeError(m.stderr)
    summary = json.loads(m.stdout)
    return {
        "seconds": round(m.seconds, 1),
        "peak_rss_gb": round(m.peak_rss / GB, 2),
        "taxpayers": summary["taxpayers"],
        "invoices": summary["invoices"],
        "load_before": load,
        "load_after": _load(),
    }


def _build(store: Path, releases: Path, *extra: str) -> dict[str, object]:
    shutil.rmtree(releases, ignore_errors=True)
    load = _load()
    m = run_measured(
        _dataflow("release", "build", "--store", str(store), "--out", str(releases), *extra)
    )
    if m.returncode != 0:
        raise RuntimeError(m.stderr[-2000:])
    summary = json.loads(m.stdout)
    return {
        "seconds": round(m.seconds, 1),
        "peak_rss_gb": round(m.peak_rss / GB, 2),
        "partitions": summary["partitions"],
        "stages_s": summary["seconds"],
        "cells": sum(t["rows"] for t in summary["tables"].values()),
        "load_before": load,
        "load_after": _load(),
    }


def memory(work: Path) -> dict[str, object]:
    sizes = [int(s) for s in os.environ.get("BENCH_SCALE_SIZES", "10000000,100000000").split(",")]
    limit = os.environ.get("BENCH_SCALE_MEMORY", "4")
    runs: dict[str, object] = {}
    previous: float | None = None
    for items in sizes:
        store = work / f"store-{items}"
        gen = _generate(store, items)
        build = _build(store, work / f"releases-{items}", "--memory-limit", limit)
        run: dict[str, object] = {"generate": gen, "build": build}
        seconds = float(build["seconds"])  # type: ignore[arg-type]
        if previous is not None:
            run["build_growth"] = round(seconds / previous, 2)
        previous = seconds
        runs[str(items)] = run
        print(json.dumps({str(items): run}), file=sys.stderr)
        shutil.rmtree(store, ignore_errors=True)
    return {"memory_limit_gb": float(limit), "sizes": runs}


def main() -> None:
    parts = os.environ.get("BENCH_SCALE_PARTS", "memory,engines,ingest").split(",")
    keep = os.environ.get("BENCH_SCALE_DIR")
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, object] = {"cores": os.cpu_count()}
    started = time.perf_counter()
    try:
        if "memory" in parts:
            result["memory"] = memory(work)
        if "engines" in parts:
            from benchmarks.scale_spark import engines

            result["engines"] = engines(work)
        if "ingest" in parts:
            from benchmarks.scale_spark import ingestion

            result["ingest"] = ingestion(work)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    write_result(f"scale_{'_'.join(parts)}", result)


if __name__ == "__main__":
    main()
