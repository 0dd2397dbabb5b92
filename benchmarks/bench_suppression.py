"""Information loss and audit time of disclosure control, and the heuristic against the optimum.

1. The standard catalogue on a generated store: per table, the share of cells and of value
   suppressed by primary suppression alone and by the released pattern (the price of secondary
   protection), and the audit time of each table on its own.
2. Small random linked tables: the heuristic's secondary cost against the exact MIP optimum
   (same weights), median and worst ratio.
"""

from __future__ import annotations

import os
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from benchmarks._optimal import optimal_pattern
from benchmarks.common import write_result
from dataflow.aggregation.cube import cube_sql
from dataflow.aggregation.disclosure.hypercube import TableIndex
from dataflow.aggregation.disclosure.linked import build_system
from dataflow.aggregation.disclosure.secondary import cell_costs, protect
from dataflow.aggregation.disclosure.suppression import primary
from dataflow.aggregation.levels import TOTAL, register_references
from dataflow.aggregation.release import build_release
from dataflow.aggregation.release_audit import audit_release
from dataflow.aggregation.specs import Hierarchy, SuppressionRules, TableSpec, load_specs
from dataflow.invoices.factstore import FactStore
from dataflow.invoices.reference import load_reference
from dataflow.invoices.synthetic.generator import generate, parse_months

REPO = Path(__file__).resolve().parents[1]
ITEMS = int(os.environ.get("BENCH_SUPPRESSION_ITEMS", "1000000"))


def _catalogue_loss(tmp: Path) -> dict[str, object]:
    store = FactStore(tmp / "store")
    generate(
        store,
        load_reference(REPO / "datasets"),
        items=ITEMS,
        seed=7,
        months=parse_months("2026-01:2026-03"),
    )
    started = time.perf_counter()
    summary = build_release(store, load_specs(REPO / "tables"), tmp / "releases")
    build_s = time.perf_counter() - started
    report = audit_release(summary.path, per_table=True)
    per_table = {}
    for t in report.tables:
        diag = pl.read_parquet(summary.path / "internal" / f"{t.id}.parquet")
        levels = [
            c
            for c in diag.columns
            if c
            not in {
                "value",
                "n_taxpayers",
                "top",
                "cell",
                "reason",
                "protection",
                "audit_lower",
                "audit_upper",
            }
        ]
        interior = diag.filter(pl.all_horizontal([pl.col(lv) != TOTAL for lv in levels]))
        total = float(interior["value"].cast(pl.Float64).sum()) or 1.0
        prim = interior.filter(pl.col("reason").str.starts_with("primary"))
        final = interior.filter(pl.col("reason") != "")
        per_table[t.id] = {
            "cells": diag.height,
            "interior_cells": interior.height,
            "primary_cells_share": round(prim.height / max(1, interior.height), 4),
            "final_cells_share": round(final.height / max(1, interior.height), 4),
            "primary_value_share": round(float(prim["value"].cast(pl.Float64).sum()) / total, 4),
            "final_value_share": round(float(final["value"].cast(pl.Float64).sum()) / total, 4),
            "suppressed_all_levels": t.suppressed,
            "audit_s_alone": t.seconds,
        }
    return {
        "items": ITEMS,
        "build_s": round(build_s, 1),
        "timings": {k: round(v, 2) for k, v in summary.timings.items()},
        "audit_s": report.seconds,
        "audit_lps": report.lps,
        "tables": per_table,
    }


RULES = SuppressionRules(min_taxpayers=3, p_percent=10.0, dominance_n=2, dominance_k=90.0)
SPECS = [
    TableSpec(
        id="a",
        title="a",
        measures=["item_value"],
        rules=RULES,
        hierarchies=[
            Hierarchy(name="g", levels=["municipality"]),
            Hierarchy(name="c", levels=["cnae_division", "cnae_group"]),
        ],
    ),
    TableSpec(
        id="b",
        title="b",
        measures=["item_value"],
        rules=RULES,
        hierarchies=[
            Hierarchy(name="c", levels=["cnae_division", "cnae_group"]),
            Hierarchy(name="t", levels=["month"]),
        ],
    ),
]
MUNIS = ["3106200", "3170206", "3118601", "3136702"]
CNAES = ["4711302", "4712100", "4721102", "1011201", "1012101"]


def _random_system(rng: np.random.Generator):  # type: ignore[no-untyped-def]
    n = int(rng.integers(30, 90))
    roots = rng.zipf(1.6, n) % 12
    facts = pa.table(
        {
            "issuer_municipality": [MUNIS[i] for i in rng.integers(0, len(MUNIS), n)],
            "issuer_uf": ["MG"] * n,
            "issuer_cnae": [CNAES[i] for i in rng.integers(0, len(CNAES), n)],
            "issued_at": pa.array(
                [f"2026-0{m}-10T10:00:00-03:00" for m in rng.integers(1, 3, n)]
            ).cast(pa.timestamp("us", tz="America/Sao_Paulo")),
            "issuer_root": [f"{r:08d}" for r in roots],
            "item_value": pa.array(
                [Decimal(int(v)) for v in rng.lognormal(6, 1.5, n)], pa.decimal128(18, 2)
            ),
            "access_key": [str(i) for i in range(n)],
        }
    )
    con = duckdb.connect()
    register_references(con, REPO / "datasets")
    con.register("facts", facts)
    built = []
    for spec in SPECS:
        cells = con.sql(cube_sql(spec, "facts")).to_arrow_table()
        built.append((spec, cells, primary(cells, spec.rules)))
    system = build_system(built)
    return system, [TableIndex.build(s, c, system.table_rows[s.id]) for s, c, _ in built]


def _optimality(trials: int = 12) -> dict[str, object]:
    rng = np.random.default_rng(5)
    ratios, sizes, ours_s, mip_s = [], [], [], []
    for _ in range(trials):
        system, indexes = _random_system(rng)
        w = cell_costs(system.value)
        t0 = time.perf_counter()
        ours = protect(system, indexes).suppressed
        ours_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        best = optimal_pattern(system, w)
        mip_s.append(time.perf_counter() - t0)
        if best is None:
            continue
        secondary_ours = float(w[ours & ~system.sensitive].sum())
        secondary_best = float(w[best & ~system.sensitive].sum())
        total_ours = float(w[ours].sum())
        total_best = float(w[best].sum())
        sizes.append(system.size)
        ratios.append(
            {
                "cells": system.size,
                "sensitive": int(system.sensitive.sum()),
                "secondary_cost_ours": round(secondary_ours, 2),
                "secondary_cost_optimal": round(secondary_best, 2),
                "total_cost_ratio": round(total_ours / total_best, 3) if total_best else 1.0,
            }
        )
    total = [r["total_cost_ratio"] for r in ratios]
    return {
        "trials": ratios,
        "median_total_cost_ratio": float(np.median(total)) if total else None,
        "worst_total_cost_ratio": float(np.max(total)) if total else None,
        "heuristic_s_median": round(float(np.median(ours_s)), 3),
        "mip_s_median": round(float(np.median(mip_s)), 3),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        catalogue = _catalogue_loss(Path(tmp))
    write_result(
        "suppression",
        {
            "what": "information loss per table (primary only vs released), audit time per table; "
            "heuristic vs exact MIP on small random linked tables (cost = Σ weights)",
            "catalogue": catalogue,
            "optimality": _optimality(),
        },
    )


if __name__ == "__main__":
    main()
