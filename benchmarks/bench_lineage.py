"""What protecting a release against the earlier ones costs: time and suppressed cells.

A store of three months (default 10⁶ items, ``BENCH_LINEAGE_ITEMS``) is published month by
month the way SEF would: January–February, then the three months (every time margin grows),
then the same months with a revision (``BENCH_LINEAGE_LATE`` late February items, 20 by
default, from one taxpayer). Each of the last two is built twice in child processes: into the
releases directory that holds the earlier ones (protected against them, ``lineage.py``) and
alone into an empty one (the baseline: what the build cost and hid before lineage protection,
which publishes differences the partner can subtract). Reports the ratio of build times, the
cells hidden either way, and the re-audit of the lineage build from its files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

from benchmarks.common import write_result
from dataflow.invoices.factstore import FactStore
from dataflow.invoices.reference import load_reference
from dataflow.invoices.synthetic.generator import generate, parse_months
from dataflow.invoices.synthetic.late import add_late_items

REPO = Path(__file__).resolve().parents[1]
ITEMS = int(os.environ.get("BENCH_LINEAGE_ITEMS", "1000000"))
LATE = int(os.environ.get("BENCH_LINEAGE_LATE", "20"))

_CHILD = """
import json, sys, time
from pathlib import Path
from dataflow.invoices.factstore import FactStore
from dataflow.aggregation.release import build_release
from dataflow.aggregation.release_audit import audit_release
from dataflow.aggregation.specs import load_specs
t, c = time.perf_counter(), time.process_time()
s = build_release(FactStore(Path(sys.argv[1])), load_specs(Path(sys.argv[2])), Path(sys.argv[3]))
seconds, cpu = time.perf_counter() - t, time.process_time() - c
audit = None
if s.lineage:
    t = time.perf_counter()
    a = audit_release(s.path)
    audit = {"seconds": round(time.perf_counter() - t, 2), "passed": a.passed}
print(json.dumps({"seconds": seconds, "cpu_s": cpu, "tables": s.tables, "lineage": s.lineage,
                  "limited": s.limited, "timings": s.timings, "audit": audit}))
"""


def _build(store: FactStore, out: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(store.root), str(REPO / "tables"), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _compare(
    name: str, with_lineage: dict[str, object], alone: dict[str, object]
) -> dict[str, object]:
    def hidden(run: dict[str, object]) -> int:
        return sum(int(t["suppressed"]) for t in run["tables"].values())  # type: ignore[attr-defined,index]

    return {
        "release": name,
        "lineage": with_lineage["lineage"],
        "build_s": round(float(with_lineage["seconds"]), 2),  # type: ignore[arg-type]
        "alone_build_s": round(float(alone["seconds"]), 2),  # type: ignore[arg-type]
        "ratio_lineage_over_alone": round(
            float(with_lineage["seconds"]) / float(alone["seconds"]),
            2,  # type: ignore[arg-type]
        ),
        "ratio_cpu": round(float(with_lineage["cpu_s"]) / float(alone["cpu_s"]), 2),  # type: ignore[arg-type]
        "hidden_cells": hidden(with_lineage),
        "alone_hidden_cells": hidden(alone),
        "revision_cells": sum(int(t["revision"]) for t in with_lineage["tables"].values()),  # type: ignore[attr-defined,index]
        "limited": with_lineage["limited"],
        "timings": with_lineage["timings"],
        "alone_timings": alone["timings"],
        "reaudit": with_lineage["audit"],
        "load_avg_1min": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    ref = load_reference(REPO / "datasets")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        full = FactStore(root / "three")
        generate(full, ref, items=ITEMS, seed=1, months=parse_months("2026-01:2026-03"))
        two = FactStore(root / "two")
        for kind in ("facts", "invoices"):
            for month in (1, 2):
                shutil.copytree(full.partition(kind, 2026, month), two.partition(kind, 2026, month))
        revised = FactStore(root / "revised")
        shutil.copytree(full.root, revised.root)
        add_late_items(revised, 2026, 2, items=LATE, value=Decimal("1500.00"))
        releases = root / "releases"
        first = _build(two, releases)
        print(json.dumps({"first": first}), file=sys.stderr)
        runs = []
        for name, store in (("three months", full), ("revised", revised)):
            alone = _build(store, root / f"alone-{len(runs)}")
            with_lineage = _build(store, releases)
            runs.append(_compare(name, with_lineage, alone))
            print(json.dumps(runs[-1]), file=sys.stderr)
    write_result(
        "lineage",
        {
            "what": "release built against the earlier releases in its directory vs the same "
            f"data built alone; standard catalogue, {ITEMS:,} items over 3 months, published "
            f"as Jan–Feb, then Jan–Mar, then with {LATE} late February items of one taxpayer",
            "items": ITEMS,
            "first_build_s": round(float(first["seconds"]), 2),  # type: ignore[arg-type]
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
