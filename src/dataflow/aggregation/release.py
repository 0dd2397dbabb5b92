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
from typing import TYPE_CHECKING

import duckdb
import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from dataflow import __version__
from dataflow.aggregation.cube import TAXPAYERS, TOP
from dataflow.aggregation.disclosure.audit import AuditResult
from dataflow.aggregation.disclosure.linked import CellSystem, cell_identities
from dataflow.aggregation.disclosure.suppression import FLAG, Reason, apply_suppression, primary
from dataflow.aggregation.levels import register_references
from dataflow.aggregation.lineage import (
    CONTRIBUTIONS,
    LIMITED,
    REQUIREMENTS,
    LineageError,
    PublishedTable,
    joint,
    load_earlier,
    protect_joint,
    releases_in,
)
from dataflow.aggregation.partitions import (
    BuildResources,
    OutOfResources,
    Partitioned,
    configure,
    partition_count,
)
from dataflow.aggregation.specs import MAGNITUDE, TableSpec, rule_names
from dataflow.invoices.factstore import FactStore

if TYPE_CHECKING:
    from dataflow.aggregation.spark import SparkCells

__all__ = [
    "AuditFailed",
    "BuildResources",
    "LineageError",
    "OutOfResources",
    "ReleaseSummary",
    "RevisedMonths",
    "build_release",
    "newest_release",
    "read_manifest",
]

MANIFEST = "manifest.json"
PARAMETERS = "internal/parameters.json"
FORMAT = 3  # 3: contributions and revision requirements kept for later releases
_DEFAULT_DATASETS = Path(__file__).resolve().parents[3] / "datasets"


class RevisedMonths(RuntimeError):
    """The store changed months a release built before lineage protection published."""

    def __init__(self, months: list[str], previous: Path) -> None:
        super().__init__(
            f"months {', '.join(months)} differ from release {previous.name}, which published "
            "them and predates lineage protection (it kept no taxpayer contributions, so the "
            "revision cannot be measured); differencing the two would expose it. Publish only "
            "after review: pass allow_revision (--allow-revision)."
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


class ReleaseExists(RuntimeError):
    """A release of the same version is already published: nothing is overwritten."""

    def __init__(self, existing: Path) -> None:
        super().__init__(
            f"release {existing.name} is already published ({existing}): the same content "
            "was built within the same second; releases are immutable, nothing was overwritten"
        )
        self.existing = existing


@dataclass(frozen=True, slots=True)
class ReleaseSummary:
    version: str
    path: Path
    tables: dict[str, dict[str, int]]  # id → {"rows", "suppressed", "primary", "revision"}
    timings: dict[str, float] = field(default_factory=dict)
    lineage: list[str] = field(default_factory=list)  # earlier releases it is protected against
    limited: int = 0  # cells earlier releases pinned closer than their protection
    partitions: int = 1  # taxpayer-hash partitions the cubes were computed in


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


def _refuse_revisions(previous: Path, watermark: dict[str, object]) -> None:
    """Against a release without contributions a changed month needs the operator's consent."""
    source = read_manifest(previous).get("source", {})
    old = source.get("watermark", {}).get("months", {}) if isinstance(source, dict) else {}
    new = watermark["months"]
    assert isinstance(new, dict)
    revised = sorted(m for m in old if m in new and old[m] != new[m])
    if revised:
        raise RevisedMonths(revised, previous)


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
    resources: BuildResources | None = None,
) -> ReleaseSummary:
    """Build every table, protect, audit, then publish by rename (``AuditFailed`` otherwise).

    Every earlier release in ``releases_dir`` is part of the protection (``lineage.py``): a
    partner holding them all learns nothing more by subtracting. ``secondary=False`` (primary
    suppression only) exists to show that the audit catches it; ``allow_revision`` only
    concerns earlier releases built before lineage protection (``RevisedMonths``).
    ``resources``: memory limit and taxpayer-hash partitions (``partitions.py``); a build that
    runs out of memory or spill space raises ``OutOfResources`` and leaves no staging behind.
    """
    if (resources is None or resources.facts is None) and not store.exists():
        raise FileNotFoundError(f"no fact store at {store.root} (run `dataflow data generate`)")
    built = (now or datetime.now(UTC)).astimezone(UTC)
    releases_dir.mkdir(parents=True, exist_ok=True)
    staging = releases_dir / f".staging-{os.getpid()}"
    spill = releases_dir / f".staging-{os.getpid()}-spill"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(spill, ignore_errors=True)
    resources = resources or BuildResources()
    try:
        return _build(
            store,
            specs,
            releases_dir,
            staging,
            spill,
            built=built,
            progress=progress,
            datasets_dir=datasets_dir,
            secondary=secondary,
            allow_revision=allow_revision,
            resources=resources,
        )
    except AuditFailed:
        raise  # the staging directory is kept for review
    except (duckdb.OutOfMemoryException, MemoryError) as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutOfResources(_out_of_memory(resources, e)) from e
    except duckdb.IOException as e:
        shutil.rmtree(staging, ignore_errors=True)
        if "space" not in str(e).lower():
            raise
        raise OutOfResources(
            f"out of disk space for spilling under {spill} ({_first_line(e)}): free space "
            "there or build into a releases directory on a larger disk"
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(spill, ignore_errors=True)


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _out_of_memory(resources: BuildResources, e: BaseException) -> str:
    where = (
        f"DuckDB's {resources.duckdb_gb() * 1024:.0f} MB share of --memory-limit "
        f"{resources.memory_gb:g} GB"
        if resources.memory_gb is not None
        else f"DuckDB's default {resources.duckdb_gb():.0f} GB cap"
    )
    return (
        f"out of memory in {where} ({_first_line(e)}): set a larger --memory-limit, "
        "or more --partitions"
    )


def _build(
    store: FactStore,
    specs: list[TableSpec],
    releases_dir: Path,
    staging: Path,
    spill: Path,
    *,
    built: datetime,
    progress: Callable[[str], None] | None,
    datasets_dir: Path | None,
    secondary: bool,
    allow_revision: bool,
    resources: BuildResources,
) -> ReleaseSummary:
    import time

    (staging / "tables").mkdir(parents=True)
    (staging / CONTRIBUTIONS).mkdir(parents=True)
    spill.mkdir(parents=True)
    con = duckdb.connect()
    # Bounded memory: past the limit DuckDB spills to disk, beside the staging directory.
    configure(con, resources, spill)
    register_references(con, datasets_dir or _DEFAULT_DATASETS)
    parts: Partitioned | SparkCells
    if resources.engine == "spark":
        from dataflow.aggregation.spark import SparkCells, spark_session

        if progress:
            progress(f"starting Spark ({resources.master or 'default master'})")
        parts = SparkCells.start(
            spark_session(resources.master),
            resources.facts or str(store.facts_dir),
            datasets_dir or _DEFAULT_DATASETS,
            con,
            spill,
        )
        watermark = parts.watermark()
    else:
        watermark = _watermark(store, con)
    earlier = load_earlier(releases_in(releases_dir))
    legacy = [e for e in earlier if e.legacy]
    if legacy and not allow_revision:
        _refuse_revisions(releases_dir / legacy[-1].version, watermark)
    timings: dict[str, float] = {"contributions": 0.0}
    t0 = time.perf_counter()
    items = watermark["items"]
    assert isinstance(items, int)
    if resources.engine != "spark":
        if progress:
            progress("partitioning the facts by taxpayer")
        parts = Partitioned.split(con, store, specs, spill, partition_count(items, resources))
    current: list[PublishedTable] = []
    for spec in specs:
        if progress:
            progress(f"cube {spec.id}")
        contributions = staging / CONTRIBUTIONS / f"{spec.id}.parquet"
        cells, seconds = parts.table(spec, contributions, progress)
        timings["contributions"] += seconds
        current.append(
            PublishedTable(
                spec=spec,
                cells=cells,
                value=cells[MAGNITUDE],
                prim=primary(cells, spec.rules),
                hidden=None,
                contributions=contributions,
            )
        )
    timings["cubes"] = time.perf_counter() - t0 - timings["contributions"]
    t0 = time.perf_counter()
    lineage = joint(current, earlier, con)
    con.close()
    shutil.rmtree(spill, ignore_errors=True)
    system = lineage.system
    previous = _previous_pattern(releases_dir, system)
    unknown, audits, limited = protect_joint(
        lineage, previous=previous, progress=progress, secondary=secondary
    )
    report = audits[0]
    passed = all(a.passed for a in audits)
    timings["secondary+audit" if secondary else "audit"] = time.perf_counter() - t0
    # Shown hidden: what the attacker does not know, plus cells hidden before that did not
    # change (stable patterns) and sensitive ones an earlier release already published.
    shown_hidden = unknown | lineage.keep_hidden | lineage.conflicts
    entries, counts, hashes = [], {}, {}
    for t in current:
        spec, cells = t.spec, t.cells
        gids = lineage.current_rows(spec.id)
        hidden = shown_hidden[gids]
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
            "primary": int(t.prim.sensitive.sum()),
            "revision": int((system.reason[gids] == Reason.REVISION).sum()),
        }
        hashes[rel] = _sha256(staging / rel)
        entries.append(
            {
                "id": spec.id,
                "title": spec.title,
                "description": spec.description,
                "title_pt": spec.title_pt or spec.title,
                "description_pt": spec.description_pt or spec.description,
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
    own = np.flatnonzero(shown_hidden[: lineage.current])
    _write(
        staging / "internal" / "suppressed.parquet",
        pa.table({"cell": [system.keys[g] for g in own.tolist()]}),
    )
    _write(staging / REQUIREMENTS, lineage.requirements)
    _write(
        staging / LIMITED,
        pa.table(
            {"cell": list(limited), "protection": list(limited.values())},
            schema=pa.schema([("cell", pa.string()), ("protection", pa.float64())]),
        ),
    )
    params = {
        "tables": {s.id: msgspec.to_builtins(s.rules) for s in specs},
        "secondary": "hypercube+lp-box" if secondary else "none",
        "audit": {
            "passed": passed,
            "failures": len(report.failures),
            "components": report.components,
            "largest_component": report.largest_component,
            "lps": report.lps,
            "certified": report.certified,
            "lineage": {
                "releases": lineage.lineage,
                "known_cells": int(lineage.frozen.sum()),
                "earlier_hidden_cells": int(lineage.fixed_hidden.sum()),
                "already_published_sensitive": int(lineage.conflicts.sum()),
                "revision_requirements": lineage.requirements.num_rows,
                # pinned by earlier releases closer than their protection: held to what any
                # pattern of this release can give them (internal/limited.parquet)
                "limited_by_earlier_releases": len(limited),
                "revisions_of_hidden_cells": 0
                if lineage.revisions is None
                else lineage.revisions.system.size - system.size,
                "revision_audit_failures": sum(len(a.failures) for a in audits[1:]),
            },
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
            "audit": "lp-interval (HiGHS) with verified hypercube certificates, all tables "
            "linked, every earlier release included",
            "markers": {"X": "suppressed", "-": "true zero", "..": "not applicable"},
        },
        # Values are confidential: only where they are kept internally, and their hash.
        "parameters": {"file": PARAMETERS, "sha256": _sha256(staging / PARAMETERS)},
        "lineage": lineage.lineage,
        "counts": {"tables": len(specs), "cells": sum(c["rows"] for c in counts.values())},
        "tables": entries,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    if not passed:
        keys = lineage.revisions.system.keys if lineage.revisions is not None else system.keys
        failing = sorted({keys[g] for a in audits for g in a.failures.tolist()})
        raise AuditFailed(failing, staging)
    final = releases_dir / version
    if final.exists():  # same seconds, same content hash: a duplicate, never a replacement
        shutil.rmtree(staging)
        raise ReleaseExists(final)
    staging.rename(final)
    return ReleaseSummary(
        version=version,
        path=final,
        tables=counts,
        timings=timings,
        lineage=lineage.lineage,
        limited=len(limited),
        partitions=parts.count,
    )


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
    candidates = releases_in(releases_dir)
    return candidates[-1] if candidates else None
