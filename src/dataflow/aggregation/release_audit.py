"""``dataflow release audit DIR``: re-check a built release from its own files.

Reads the public tables (what partners see) and the internal diagnostics (true values and
protection levels, never served), verifies the content hashes, rebuilds the linked system with
every earlier release it was protected against (``lineage.py``) and runs the LP audit over all
of it, revisions included, then each table on its own (time per table).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import duckdb
import msgspec
import numpy as np
import pyarrow.parquet as pq

from dataflow.aggregation.disclosure.audit import audit
from dataflow.aggregation.disclosure.hypercube import Hypercubes, TableIndex
from dataflow.aggregation.disclosure.linked import build_system
from dataflow.aggregation.lineage import (
    LIMITED,
    LineageError,
    audit_joint,
    joint,
    load_earlier,
    load_tables,
)

__all__ = ["ReleaseAudit", "TableAudit", "audit_release"]


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
    lineage: list[str] = []  # earlier releases audited together with this one


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def audit_release(
    release: Path,
    *,
    datasets_dir: Path | None = None,
    exact: bool = False,
    per_table: bool = False,
) -> ReleaseAudit:
    """The whole release, linked, together with the earlier releases it was protected against
    (its manifest's ``lineage``, found beside it); ``exact`` computes every suppressed cell's
    exact interval; ``per_table`` also audits each table alone, to time it."""
    del datasets_dir  # identities come from the files; no reference join is needed to audit
    started = time.perf_counter()
    manifest, tables = load_tables(release)
    entries = {str(e["id"]): e for e in manifest["tables"]}  # type: ignore[attr-defined]
    hashes_ok = all(
        _sha256(release / entries[t.spec.id]["file"]) == entries[t.spec.id]["sha256"]
        for t in tables
    )
    versions = [str(v) for v in manifest.get("lineage", [])]  # type: ignore[attr-defined]
    missing = [v for v in versions if not (release.parent / v / "manifest.json").is_file()]
    if missing:
        raise LineageError(
            f"release {manifest['version']} was protected against {', '.join(missing)}, not "
            f"found in {release.parent}: audit it where its earlier releases are"
        )
    con = duckdb.connect()
    try:
        lineage = joint(
            tables,
            load_earlier([release.parent / v for v in versions]),
            con,
            limited=_limited(release),
        )
    finally:
        con.close()
    system = lineage.system
    hidden = np.zeros(system.size, np.bool_)
    for t in tables:
        assert t.hidden is not None
        hidden[lineage.current_rows(t.spec.id)[t.hidden]] = True
    audits = audit_joint(lineage, lineage.unknown(hidden), exact=exact)
    report = audits[0]
    failing = np.zeros(system.size, np.bool_)
    failing[report.failures] = True
    table_reports = []
    for t in tables:
        assert t.hidden is not None
        seconds = None
        if per_table:
            t0 = time.perf_counter()
            alone = build_system([(t.spec, t.cells, t.prim)])
            alone_cubes = Hypercubes(
                alone, [TableIndex.build(t.spec, t.cells, alone.table_rows[t.spec.id])]
            )
            audit(alone, t.hidden, all_cells=True, exact=exact, cubes=alone_cubes)
            seconds = round(time.perf_counter() - t0, 3)
        rows = lineage.current_rows(t.spec.id)
        table_reports.append(
            TableAudit(
                id=t.spec.id,
                cells=t.cells.num_rows,
                suppressed=int(t.hidden.sum()),
                sensitive=int(t.prim.sensitive.sum()),
                failures=int(failing[rows].sum()),
                seconds=seconds,
            )
        )
    failures = sum(len(a.failures) for a in audits)  # revision cells count here only
    return ReleaseAudit(
        release=str(manifest["version"]),
        passed=failures == 0 and hashes_ok,
        failures=failures,
        hashes_ok=hashes_ok,
        components=report.components,
        largest_component=report.largest_component,
        lps=report.lps,
        certified=report.certified,
        seconds=round(time.perf_counter() - started, 3),
        tables=table_reports,
        lineage=versions,
    )


def _limited(release: Path) -> dict[str, float]:
    path = release / LIMITED
    if not path.is_file():
        return {}
    table = pq.read_table(path)
    return dict(zip(table["cell"].to_pylist(), table["protection"].to_pylist(), strict=True))
