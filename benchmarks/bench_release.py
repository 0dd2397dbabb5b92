"""Release build cost against plain DuckDB GROUP BYs producing the same unprotected cells.

For each size (items; default 10⁶ — ``BENCH_RELEASE_SIZES=1000000,10000000,20000000`` for the
growth run): generate a store, time the plain GROUPING SETS queries of every catalogue table (the
baseline; also the same queries pre-grouped by finest cell, the rewrite the build's cubes use),
then time ``dataflow release build`` (taxpayer-grouped cubes, primary and secondary suppression,
the audit, writing) in a child process whose peak RSS is the memory figure; after the timed
build, the child re-audits the release from its files (``release audit --per-table``): the time
of the whole linked audit and of each table audited alone. Wall and CPU time (all threads) on
both sides; with several sizes, the growth of build time from one size to the next.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from benchmarks.common import write_result
from dataflow.aggregation.cube import fact_source, plain_cube_sql
from dataflow.aggregation.levels import register_references
from dataflow.aggregation.specs import load_specs
from dataflow.invoices.factstore import FactStore
from dataflow.invoices.reference import ReferenceData, load_reference
from dataflow.invoices.synthetic.generator import generate, parse_months

REPO = Path(__file__).resolve().parents[1]
SIZES = [int(s) for s in os.environ.get("BENCH_RELEASE_SIZES", "1000000").split(",")]

_CHILD = """
import json, os, resource, sys, time
from pathlib import Path
from dataflow.invoices.factstore import FactStore
from dataflow.aggregation.release import build_release
from dataflow.aggregation.specs import load_specs
from dataflow.aggregation.release_audit import audit_release
t, c = time.perf_counter(), time.process_time()
s = build_release(FactStore(Path(sys.argv[1])), load_specs(Path(sys.argv[2])), Path(sys.argv[3]))
seconds, cpu = time.perf_counter() - t, time.process_time() - c
build_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
a = audit_release(s.path, per_table=True)  # after the timed build: audit time per table
audit = {"release_s": a.seconds, "passed": a.passed, "lps": a.lps, "certified": a.certified,
         "per_table_s": {x.id: x.seconds for x in a.tables}}
print(json.dumps({"seconds": seconds, "cpu_s": cpu, "build_rss_kb": build_rss,
                  "tables": s.tables, "timings": s.timings, "audit": audit}))
"""


def _baseline(store: FactStore, *, pregrouped: bool) -> tuple[float, float]:
    """Wall and CPU seconds (every DuckDB thread) of the plain queries of the catalogue."""
    con = duckdb.connect()
    register_references(con, REPO / "datasets")
    started, cpu = time.perf_counter(), time.process_time()
    for spec in load_specs(REPO / "tables"):
        sql = plain_cube_sql(spec, fact_source(store), pregrouped=pregrouped)
        con.sql(sql).to_arrow_table()
    return time.perf_counter() - started, time.process_time() - cpu


def _build(store: FactStore, out: Path) -> tuple[dict[str, object], float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(store.root), str(REPO / "tables"), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    peak_kb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result, peak_kb / 1024**2


def _one(items: int, ref: ReferenceData) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        store = FactStore(Path(tmp) / "store")
        t0 = time.perf_counter()
        generate(store, ref, items=items, seed=1, months=parse_months("2026-01:2026-03"))
        gen_s = time.perf_counter() - t0
        load = [os.getloadavg()[0]]
        plain = [_baseline(store, pregrouped=False)]
        pre = [_baseline(store, pregrouped=True)]
        built, peak_gb = _build(store, Path(tmp) / "releases")
        load.append(os.getloadavg()[0])
        # the baselines again after the build, to see the drift of a shared machine; the better
        plain.append(_baseline(store, pregrouped=False))
        pre.append(_baseline(store, pregrouped=True))
        load.append(os.getloadavg()[0])
    wall, cpu = min(p[0] for p in plain), min(p[1] for p in plain)
    pre_wall, pre_cpu = min(p[0] for p in pre), min(p[1] for p in pre)
    seconds, build_cpu = float(built["seconds"]), float(built["cpu_s"])  # type: ignore[arg-type]
    return {
        "items": items,
        "generate_s": round(gen_s, 1),
        "plain_group_by_s": round(wall, 2),
        "plain_group_by_cpu_s": round(cpu, 2),
        "pregrouped_group_by_s": round(pre_wall, 2),
        "pregrouped_group_by_cpu_s": round(pre_cpu, 2),
        "release_build_s": round(seconds, 2),
        "release_build_cpu_s": round(build_cpu, 2),
        "ratio_build_over_group_by": round(seconds / wall, 2),
        "ratio_build_over_group_by_cpu": round(build_cpu / cpu, 2),
        "ratio_build_over_pregrouped": round(seconds / pre_wall, 2),
        "ratio_build_over_pregrouped_cpu": round(build_cpu / pre_cpu, 2),
        "peak_rss_gb": round(peak_gb, 2),
        "peak_rss_build_gb": round(int(built["build_rss_kb"]) / 1024**2, 2),  # type: ignore[call-overload]
        "load_avg_1min": [round(x, 1) for x in load],  # before, after the build, at the end
        "timings": built["timings"],
        "audit": built["audit"],
        "tables": built["tables"],
    }


def _growth(runs: list[dict[str, object]]) -> list[dict[str, object]]:
    """Build time (wall and CPU) from one size to the next, against the growth in items."""
    out = []
    for a, b in itertools.pairwise(runs):
        out.append(
            {
                "items": [a["items"], b["items"]],
                "items_x": round(float(b["items"]) / float(a["items"]), 2),  # type: ignore[arg-type]
                **{
                    f"{key}_x": round(float(b[key]) / float(a[key]), 2)  # type: ignore[arg-type]
                    for key in (
                        "release_build_s",
                        "release_build_cpu_s",
                        "plain_group_by_s",
                        "plain_group_by_cpu_s",
                    )
                },
            }
        )
    return out


def main() -> None:
    ref = load_reference(REPO / "datasets")
    runs = []
    for items in SIZES:
        runs.append(_one(items, ref))
        print(json.dumps(runs[-1]), file=sys.stderr)
    write_result(
        "release",
        {
            "what": "release build (cubes + suppression + audit + write) vs plain GROUPING SETS "
            "of the same cells (and the same pre-grouped by finest cell), standard catalogue, "
            "3 months; wall and CPU seconds; peak RSS of the build process (build, then build "
            "+ re-audit)",
            "runs": runs,
            "growth": _growth(runs),
        },
    )


if __name__ == "__main__":
    main()
