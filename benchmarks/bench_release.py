"""Release build cost against plain DuckDB GROUP BYs producing the same unprotected cells.

For each size (items; default 10⁶, 10⁷, 2×10⁷ — ``BENCH_RELEASE_SIZES=1000000,…`` to change):
generate a store, time the plain GROUPING SETS queries of every catalogue table (the baseline),
then time ``dataflow release build`` (taxpayer-grouped cubes, primary and secondary suppression,
the LP audit, writing) in a child process whose peak RSS is the memory figure; after the timed
build, the child re-audits the release from its files (``release audit --per-table``): the time
of the whole linked audit and of each table audited alone.
"""

from __future__ import annotations

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
from dataflow.aggregation.factstore import FactStore
from dataflow.aggregation.generator import generate, parse_months
from dataflow.aggregation.levels import register_references
from dataflow.aggregation.reference import load_reference
from dataflow.aggregation.specs import load_specs

REPO = Path(__file__).resolve().parents[1]
SIZES = [
    int(s) for s in os.environ.get("BENCH_RELEASE_SIZES", "1000000,10000000,20000000").split(",")
]

_CHILD = """
import json, sys, time
from pathlib import Path
from dataflow.aggregation.factstore import FactStore
from dataflow.aggregation.release import build_release
from dataflow.aggregation.specs import load_specs
from dataflow.aggregation.release_audit import audit_release
t = time.perf_counter()
s = build_release(FactStore(Path(sys.argv[1])), load_specs(Path(sys.argv[2])), Path(sys.argv[3]))
seconds = time.perf_counter() - t
a = audit_release(s.path, per_table=True)  # after the timed build: audit time per table
audit = {"release_s": a.seconds, "passed": a.passed, "lps": a.lps, "certified": a.certified,
         "per_table_s": {x.id: x.seconds for x in a.tables}}
print(json.dumps({"seconds": seconds, "tables": s.tables, "timings": s.timings, "audit": audit}))
"""


def _baseline(store: FactStore) -> float:
    con = duckdb.connect()
    register_references(con, REPO / "datasets")
    started = time.perf_counter()
    for spec in load_specs(REPO / "tables"):
        con.sql(plain_cube_sql(spec, fact_source(store))).to_arrow_table()
    return time.perf_counter() - started


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


def main() -> None:
    runs = []
    ref = load_reference(REPO / "datasets")
    for items in SIZES:
        with tempfile.TemporaryDirectory() as tmp:
            store = FactStore(Path(tmp) / "store")
            t0 = time.perf_counter()
            generate(store, ref, items=items, seed=1, months=parse_months("2026-01:2026-03"))
            gen_s = time.perf_counter() - t0
            load_before = os.getloadavg()[0]
            baseline = _baseline(store)
            built, peak_gb = _build(store, Path(tmp) / "releases")
            # a second baseline after the build, to see the drift of a shared machine
            baseline = min(baseline, _baseline(store))
            seconds = float(built["seconds"])  # type: ignore[arg-type]
            runs.append(
                {
                    "items": items,
                    "generate_s": round(gen_s, 1),
                    "plain_group_by_s": round(baseline, 2),
                    "release_build_s": round(seconds, 2),
                    "ratio_build_over_group_by": round(seconds / baseline, 2),
                    "peak_rss_gb": round(peak_gb, 2),
                    "load_avg_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
                    "timings": built["timings"],
                    "audit": built["audit"],
                    "tables": built["tables"],
                }
            )
            print(json.dumps(runs[-1]), file=sys.stderr)
    write_result(
        "release",
        {
            "what": "release build (cubes + suppression + audit + write) vs plain GROUPING SETS "
            "of the same cells, standard catalogue, 3 months; peak RSS of the build process",
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
