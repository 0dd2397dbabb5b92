"""``dataflow release audit DIR``: re-check a built release from its own files.

Reads the public tables (what partners see) and the internal diagnostics (true values and
protection levels, never served), verifies the content hashes, rebuilds the linked system and
runs the LP audit over all tables together, then each table on its own (time per table).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataflow.aggregation.audit import audit
from dataflow.aggregation.hypercube import Hypercubes, TableIndex
from dataflow.aggregation.linked import build_system
from dataflow.aggregation.specs import MAGNITUDE, TableSpec
from dataflow.aggregation.suppression import FLAG, FLAG_SUPPRESSED, Primary, Reason

__all__ = ["ReleaseAudit", "TableAudit", "audit_release", "load_release_tables"]


class TableAudit(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    cells: int
    suppressed: int
    sensitive: int
    failures: int  # in the linked, release-wide audit
    seconds: float | None  # this table audited on its own (with ``per_table``)


class ReleaseAudit(msgspec.Struct, frozen=True, kw_only=True):
    release: str
    passed: bool
    failures: int
    hashes_ok: bool
    components: int
    largest_component: int
    lps: int
    certified: int
    seconds: float
    tables: list[TableAudit]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_release_tables(
    release: Path,
) -> tuple[dict[str, object], list[tuple[TableSpec, pa.Table, Primary, np.ndarray]], bool]:
    """Specs, true-valued cells, primary verdicts and published suppression per table."""
    manifest = json.loads((release / "manifest.json").read_text(encoding="utf-8"))
    params = json.loads((release / "internal" / "parameters.json").read_text(encoding="utf-8"))
    hashes_ok = True
    out = []
    for entry in manifest["tables"]:
        path = release / entry["file"]
        hashes_ok &= _sha256(path) == entry["sha256"]
        spec = msgspec.convert(
            {
                "id": entry["id"],
                "title": entry["title"],
                "hierarchies": entry["hierarchies"],
                "measures": entry["measures"],
                "filters": entry.get("filters", {}),
                "rules": params["tables"][entry["id"]],
            },
            TableSpec,
        )
        public = pq.read_table(path)
        internal = pq.read_table(release / "internal" / f"{spec.id}.parquet")
        for lv in spec.levels:  # the two files are written in the same row order
            same = pc.cast(public[lv], pa.string()).equals(pc.cast(internal[lv], pa.string()))
            if not same:
                raise ValueError(f"{spec.id}: public and internal rows differ")
        value = pc.cast(internal["value"], pa.float64()).to_numpy(zero_copy_only=False)
        reason = np.array(
            [r.startswith("primary") for r in internal["reason"].to_pylist()], np.bool_
        )
        prim = Primary(
            value=value,
            sensitive=reason,
            reason=np.where(reason, Reason.THRESHOLD, 0).astype(np.int8),
            protection=internal["protection"].to_numpy(zero_copy_only=False),
        )
        hidden = pc.equal(public[FLAG], FLAG_SUPPRESSED).to_numpy(zero_copy_only=False)
        published = pc.is_valid(public[MAGNITUDE]).to_numpy(zero_copy_only=False)
        if (hidden & published).any():
            raise ValueError(f"{spec.id}: a cell flagged X still shows its value")
        out.append((spec, internal, prim, hidden))
    return manifest, out, hashes_ok


def audit_release(
    release: Path,
    *,
    datasets_dir: Path | None = None,
    exact: bool = False,
    per_table: bool = False,
) -> ReleaseAudit:
    """The whole release, linked; ``exact`` computes every suppressed cell's exact interval;
    ``per_table`` also audits each table alone, to time it."""
    del datasets_dir  # identities come from the files; no reference join is needed to audit
    started = time.perf_counter()
    manifest, tables, hashes_ok = load_release_tables(release)
    system = build_system([(s, c, p) for s, c, p, _ in tables])
    suppressed = np.zeros(system.size, np.bool_)
    for spec, _, _, hidden in tables:
        suppressed[system.table_rows[spec.id][hidden]] = True
    indexes = [TableIndex.build(s, c, system.table_rows[s.id]) for s, c, _, _ in tables]
    cubes = Hypercubes(system, indexes)
    report = audit(system, suppressed, all_cells=True, exact=exact, cubes=cubes)
    failing = np.zeros(system.size, np.bool_)
    failing[report.failures] = True
    table_reports = []
    for spec, cells, prim, hidden in tables:
        seconds = None
        if per_table:
            t0 = time.perf_counter()
            alone = build_system([(spec, cells, prim)])
            alone_cubes = Hypercubes(
                alone, [TableIndex.build(spec, cells, alone.table_rows[spec.id])]
            )
            audit(alone, hidden, all_cells=True, exact=exact, cubes=alone_cubes)
            seconds = round(time.perf_counter() - t0, 3)
        rows = system.table_rows[spec.id]
        table_reports.append(
            TableAudit(
                id=spec.id,
                cells=cells.num_rows,
                suppressed=int(hidden.sum()),
                sensitive=int(prim.sensitive.sum()),
                failures=int(failing[rows].sum()),
                seconds=seconds,
            )
        )
    return ReleaseAudit(
        release=str(manifest["version"]),
        passed=report.passed and hashes_ok,
        failures=len(report.failures),
        hashes_ok=hashes_ok,
        components=report.components,
        largest_component=report.largest_component,
        lps=report.lps,
        certified=report.certified,
        seconds=round(time.perf_counter() - started, 3),
        tables=table_reports,
    )
