"""Immutable, versioned releases: ``manifest.json`` and one Parquet file per table.

Build: cubes (DuckDB) → primary rules → one linked system over all tables → secondary suppression
→ the LP audit. Everything lands in a staging directory; only a release whose audit passed is
renamed into place, so a failing release is never publishable.

What partners may see of the manifest names the rules, never their values: the parameters live in
``internal/parameters.json`` (with the diagnostics: why each cell was hidden), never served.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from dataflow import __version__
from dataflow.aggregation.audit import AuditResult, audit
from dataflow.aggregation.cube import TAXPAYERS, TOP, build_cells
from dataflow.aggregation.factstore import FactStore
from dataflow.aggregation.hypercube import Hypercubes, TableIndex
from dataflow.aggregation.levels import register_references
from dataflow.aggregation.linked import CellSystem, build_system, cell_identities
from dataflow.aggregation.secondary import protect
from dataflow.aggregation.specs import MAGNITUDE, TableSpec, rule_names
from dataflow.aggregation.suppression import FLAG, Primary, Reason, apply_suppression, primary

__all__ = [
    "AuditFailed",
    "ReleaseSummary",
    "RevisedMonths",
    "build_release",
    "newest_release",
    "read_manifest",
]

MANIFEST = "manifest.json"
PARAMETERS = "internal/parameters.json"
FORMAT = 2
_DEFAULT_DATASETS = Path(__file__).resolve().parents[3] / "datasets"
# DuckDB's share of the build: the NCM table's distinct invoices per taxpayer and grouping set
# alone reach ~7 GB at 2×10⁷ items unbounded; capped, it spills and the build stays ≤ 8 GB.
_DUCKDB_MEMORY = "4GB"


class RevisedMonths(RuntimeError):
    """The store changed months an earlier release already published."""

    def __init__(self, months: list[str], previous: Path) -> None:
        super().__init__(
            f"months {', '.join(months)} differ from release {previous.name}, which published "
            "them; differencing the two releases would expose the revision (few taxpayers). "
            "Publish revisions only after review: pass allow_revision (--allow-revision)."
        )
        self.months = months
        self.previous = previous


class AuditFailed(RuntimeError):
    """The disclosure audit found sensitive cells an attacker could narrow down."""

    def __init__(self, cells: list[str], where: Path) -> None:
        head = ", ".join(cells[:5])
        super().__init__(
            f"disclosure audit failed on {len(cells)} sensitive cell(s) ({head}…); "
            f"the release was not published (staging kept at {where})"
        )
        self.cells = cells
        self.where = where


@dataclass(frozen=True, slots=True)
class ReleaseSummary:
    version: str
    path: Path
    tables: dict[str, dict[str, int]]  # id → {"rows", "suppressed", "primary"}
    timings: dict[str, float] = field(default_factory=dict)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _watermark(store: FactStore, con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    rows = con.execute(
        "SELECT strftime(timezone('America/Sao_Paulo', issued_at), '%Y-%m') AS m, count(*), "
        "sum(item_value)::VARCHAR, max(issued_at)::VARCHAR "
        f"FROM read_parquet('{store.facts_glob()}') GROUP BY m ORDER BY m"
    ).fetchall()
    months = {m: {"items": int(n), "item_value": v} for m, n, v, _ in rows}
    return {
        "items": sum(int(r[1]) for r in rows),
        "max_issued_at": max((r[3] for r in rows), default=None),
        "months": months,
    }


def _previous_pattern(releases_dir: Path, system: CellSystem) -> npt.NDArray[np.bool_] | None:
    """Cells suppressed in the newest earlier release: cheaper to suppress again."""
    prev = newest_release(releases_dir)
    if prev is None or not (prev / "internal" / "suppressed.parquet").is_file():
        return None
    keys = set(pq.read_table(prev / "internal" / "suppressed.parquet")["cell"].to_pylist())
    return np.array([k in keys for k in system.keys], np.bool_)


def _refuse_revisions(releases_dir: Path, watermark: dict[str, object]) -> None:
    """A month already published may only change with the operator's explicit consent."""
    prev = newest_release(releases_dir)
    if prev is None:
        return
    source = read_manifest(prev).get("source", {})
    old = source.get("watermark", {}).get("months", {}) if isinstance(source, dict) else {}
    new = watermark["months"]
    assert isinstance(new, dict)
    revised = sorted(m for m in old if m in new and old[m] != new[m])
    if revised:
        raise RevisedMonths(revised, prev)


def _write(path: Path, table: pa.Table) -> None:
    pq.write_table(table, path, compression="zstd")


def build_release(
    store: FactStore,
    specs: list[TableSpec],
    releases_dir: Path,
    *,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
    datasets_dir: Path | None = None,
    secondary: bool = True,
    allow_revision: bool = False,
) -> ReleaseSummary:
    """Build every table, protect, audit, then publish by rename (``AuditFailed`` otherwise).

    ``secondary=False`` (primary suppression only) exists to show that the audit catches it.
    """
    import time

    if not store.exists():
        raise FileNotFoundError(f"no fact store at {store.root} (run `dataflow data generate`)")
    built = (now or datetime.now(UTC)).astimezone(UTC)
    releases_dir.mkdir(parents=True, exist_ok=True)
    staging = releases_dir / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "tables").mkdir(parents=True)
    (staging / "internal").mkdir()
    con = duckdb.connect()
    # Bounded memory: past the limit DuckDB spills to disk, beside the staging directory.
    con.execute(f"SET memory_limit = '{_DUCKDB_MEMORY}'")
    con.execute(f"SET temp_directory = '{staging}-spill'")
    register_references(con, datasets_dir or _DEFAULT_DATASETS)
    watermark = _watermark(store, con)
    if not allow_revision:
        _refuse_revisions(releases_dir, watermark)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    built_tables: list[tuple[TableSpec, pa.Table, Primary]] = []
    for spec in specs:
        if progress:
            progress(f"cube {spec.id}")
        cells = build_cells(store, spec, con)
        built_tables.append((spec, cells, primary(cells, spec.rules)))
    timings["cubes"] = time.perf_counter() - t0
    con.close()
    shutil.rmtree(f"{staging}-spill", ignore_errors=True)
    t0 = time.perf_counter()
    system = build_system(built_tables)
    indexes = [
        TableIndex.build(spec, cells, system.table_rows[spec.id]) for spec, cells, _ in built_tables
    ]
    if secondary:
        result = protect(
            system, indexes, previous=_previous_pattern(releases_dir, system), progress=progress
        )
        # protect() ends with the audit of record; the perturbations it found are hints the
        # audit checks against every relation itself (only checked ones count), and it loops
        # back on any cell the audit flags.
        suppressed, report = result.suppressed, result.audit
        timings["secondary+audit"] = time.perf_counter() - t0
    else:
        suppressed = system.sensitive.copy()
        cubes = Hypercubes(system, indexes)
        report = audit(system, suppressed, all_cells=True, exact=False, cubes=cubes)
        timings["audit"] = time.perf_counter() - t0
    entries, counts, hashes = [], {}, {}
    for spec, cells, prim in built_tables:
        gids = system.table_rows[spec.id]
        hidden = suppressed[gids]
        public = apply_suppression(cells, spec, pa.array(hidden)).select(
            [*spec.levels, *spec.measures, FLAG]
        )
        rel = f"tables/{spec.id}.parquet"
        _write(staging / rel, public)
        diag = _diagnostics(spec, cells, gids, system, hidden, report)
        _write(staging / "internal" / f"{spec.id}.parquet", diag)
        counts[spec.id] = {
            "rows": public.num_rows,
            "suppressed": int(hidden.sum()),
            "primary": int(prim.sensitive.sum()),
        }
        hashes[rel] = _sha256(staging / rel)
        entries.append(
            {
                "id": spec.id,
                "title": spec.title,
                "description": spec.description,
                "file": rel,
                "hierarchies": [{"name": h.name, "levels": h.levels} for h in spec.hierarchies],
                "measures": spec.measures,
                "filters": spec.filters,
                "rules": rule_names(spec.rules),
                "rows": public.num_rows,
                "suppressed": int(hidden.sum()),
                "sha256": hashes[rel],
            }
        )
    _write(
        staging / "internal" / "suppressed.parquet",
        pa.table({"cell": [system.keys[g] for g in np.flatnonzero(suppressed).tolist()]}),
    )
    params = {
        "tables": {s.id: msgspec.to_builtins(s.rules) for s in specs},
        "secondary": "hypercube+lp-box" if secondary else "none",
        "audit": {
            "passed": report.passed,
            "failures": len(report.failures),
            "components": report.components,
            "largest_component": report.largest_component,
            "lps": report.lps,
            "certified": report.certified,
        },
    }
    (staging / PARAMETERS).write_text(json.dumps(params, indent=2) + "\n")
    digest = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()
    version = f"{built:%Y%m%dT%H%M%SZ}-{digest[:8]}"
    manifest = {
        "format": FORMAT,
        "version": version,
        "built_at": built.isoformat(),
        "builder": f"dataflow {__version__}",
        "source": {"store": str(store.root), "watermark": watermark},
        "rules": {
            "primary": sorted({r for s in specs for r in rule_names(s.rules)}),
            "secondary": ["lp-hypercube-box"] if secondary else [],
            "audit": "lp-interval (HiGHS) with verified hypercube certificates, all tables linked",
            "markers": {"X": "suppressed", "-": "true zero", "..": "not applicable"},
        },
        # Values are confidential: only where they are kept internally, and their hash.
        "parameters": {"file": PARAMETERS, "sha256": _sha256(staging / PARAMETERS)},
        "counts": {"tables": len(specs), "cells": sum(c["rows"] for c in counts.values())},
        "tables": entries,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    if not report.passed:
        raise AuditFailed([system.keys[g] for g in report.failures.tolist()], staging)
    final = releases_dir / version
    staging.rename(final)
    return ReleaseSummary(version=version, path=final, tables=counts, timings=timings)


def _diagnostics(
    spec: TableSpec,
    cells: pa.Table,
    gids: npt.NDArray[np.int64],
    system: CellSystem,
    hidden: npt.NDArray[np.bool_],
    report: AuditResult,
) -> pa.Table:
    """Operators' view of every cell: contributors, the rule that fired, the attacker's bounds."""
    primary_reason = system.reason[gids]
    reason = np.where(primary_reason > 0, primary_reason, np.where(hidden, Reason.SECONDARY, 0))
    labels = [Reason(int(r)).label for r in reason]
    return pa.table(
        {
            **{lv: cells[lv] for lv in spec.levels},
            "value": cells[MAGNITUDE],
            TAXPAYERS: cells[TAXPAYERS],
            TOP: cells[TOP],
            "cell": pa.array(cell_identities(spec, cells)),
            "reason": pa.array(labels),
            "protection": pa.array(system.protection[gids]),
            "audit_lower": pa.array(report.lower[gids]),
            "audit_upper": pa.array(report.upper[gids]),
        }
    )


def read_manifest(release_dir: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((release_dir / MANIFEST).read_text(encoding="utf-8"))
    return data


def newest_release(releases_dir: Path) -> Path | None:
    candidates = sorted(p for p in releases_dir.glob("*") if (p / MANIFEST).is_file())
    return candidates[-1] if candidates else None
