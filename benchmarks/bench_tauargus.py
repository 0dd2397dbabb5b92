"""Ours against τ-ARGUS (``pytauargus``, its engine with HiGHS) on the same table, side by side.

One table (municipality × CNAE division, one month, all margins), the same rules (threshold 3
taxpayers, p% = 10, holdings = CNPJ root): cells and value suppressed, time — and *our* LP audit
run on both patterns. ``pytauargus`` is not a dependency of dataflow: set ``TAUARGUS_PYTHON`` to
an interpreter that has it (e.g. a venv with ``pip install pytauargus polars duckdb``).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

from benchmarks.common import write_result
from dataflow.aggregation.cube import build_cells
from dataflow.aggregation.disclosure.audit import audit
from dataflow.aggregation.disclosure.hypercube import TableIndex
from dataflow.aggregation.disclosure.linked import build_system
from dataflow.aggregation.disclosure.secondary import protect
from dataflow.aggregation.disclosure.suppression import primary
from dataflow.aggregation.levels import register_references
from dataflow.aggregation.specs import Hierarchy, SuppressionRules, TableSpec
from dataflow.invoices.factstore import FactStore
from dataflow.invoices.reference import load_reference
from dataflow.invoices.synthetic.generator import generate, parse_months

REPO = Path(__file__).resolve().parents[1]
ITEMS = int(os.environ.get("BENCH_TAU_ITEMS", "200000"))
SPEC = TableSpec(
    id="t",
    title="t",
    measures=["item_value"],
    filters={"month": "2026-01"},
    rules=SuppressionRules(min_taxpayers=3, p_percent=10.0, threshold_protection=0.10),
    hierarchies=[
        Hierarchy(name="g", levels=["municipality"]),
        Hierarchy(name="c", levels=["cnae_division"]),
    ],
)

_TAU = """
import json, sys, time
import duckdb
from pytauargus.protect import protect
store, method, out = sys.argv[1:4]
df = duckdb.sql(f\"\"\"SELECT issuer_municipality AS muni, substr(issuer_cnae, 1, 2) AS div,
    issuer_root AS holding, sum(item_value)::DOUBLE AS val
    FROM read_parquet('{store}/facts/*/*/*.parquet')
    WHERE strftime(timezone('America/Sao_Paulo', issued_at), '%Y-%m') = '2026-01'
    GROUP BY ALL\"\"\").pl()
t = time.perf_counter()
r = protect(df, tables=[["muni", "div"]], response="val", safety_rules="FREQ(3,10)|P(10,1)",
            suppress=method, holding_var="holding", workdir=out)
rows = r.tables[0].rows
print(json.dumps({"seconds": time.perf_counter() - t,
                  "cells": [[row["muni"], row["div"], row["status"]] for row in rows]}))
"""


def _tau(python: str, store: Path, method: str, work: Path) -> dict[str, object]:
    proc = subprocess.run(
        [python, "-c", _TAU, str(store), method, str(work)],
        capture_output=True,
        text=True,
        check=False,
        cwd=work.parent,  # the solvers drop their log files in the working directory
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    out: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = FactStore(Path(tmp) / "store")
        generate(
            store,
            load_reference(REPO / "datasets"),
            items=ITEMS,
            seed=3,
            months=parse_months("2026-01:2026-01"),
        )
        con = duckdb.connect()
        register_references(con, REPO / "datasets")
        cells = build_cells(store, SPEC, con)
        prim = primary(cells, SPEC.rules)
        system = build_system([(SPEC, cells, prim)])
        index = TableIndex.build(SPEC, cells, system.table_rows["t"])
        t0 = time.perf_counter()
        ours = protect(system, [index])
        ours_s = time.perf_counter() - t0
        keys = {
            (m, d): g
            for m, d, g in zip(
                cells["municipality"].to_pylist(),
                cells["cnae_division"].to_pylist(),
                system.table_rows["t"].tolist(),
                strict=True,
            )
        }
        total = float(system.value[keys[("_T", "_T")]])

        def summary(pattern: np.ndarray, seconds: float) -> dict[str, object]:
            report = audit(system, pattern, all_cells=False, exact=False)
            return {
                "suppressed": int(pattern.sum()),
                "secondary": int((pattern & ~system.sensitive).sum()),
                "value_suppressed_share_of_total": round(
                    float(system.value[pattern & ~system.sensitive].sum()) / total, 4
                ),
                "seconds": round(seconds, 3),
                "our_audit_passed": report.passed,
                "our_audit_failures": len(report.failures),
                # of which: sensitive by our rules but published by this pattern
                "our_sensitive_published": int((system.sensitive & ~pattern).sum()),
            }

        result: dict[str, object] = {
            "items": ITEMS,
            "cells": system.size,
            "sensitive_ours": int(system.sensitive.sum()),
            "ours": summary(ours.suppressed, ours_s),
        }
        python = os.environ.get("TAUARGUS_PYTHON")
        if not python:
            result["tauargus"] = "skipped: set TAUARGUS_PYTHON to a Python with pytauargus"
        for method in ("MOD(1,5,1,1,1)", "OPT(1,5)") if python else ():
            tau = _tau(python, store.root, method, Path(tmp) / method[:3])
            if "error" in tau:
                result[method] = tau
                continue
            pattern = np.zeros(system.size, np.bool_)
            unsafe = 0
            for m, d, status in tau["cells"]:  # type: ignore[attr-defined]
                g = keys.get((m.replace("Total", "_T"), d.replace("Total", "_T")))
                if g is not None and status in ("U", "M"):
                    pattern[g] = True
                    unsafe += status == "U"
            entry = summary(pattern, float(tau["seconds"]))  # type: ignore[arg-type]
            entry["primary_tau"] = unsafe
            result[method] = entry
    write_result(
        "tauargus",
        {"what": "ours vs pytauargus (MOD, OPT) on municipality × division, one month", **result},
    )


if __name__ == "__main__":
    main()
