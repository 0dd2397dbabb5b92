"""Immutable, versioned releases: ``manifest.json`` and one Parquet file per table."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataflow import __version__
from dataflow.aggregation.cube import TAXPAYERS, build_cells
from dataflow.aggregation.factstore import FactStore
from dataflow.aggregation.specs import TableSpec
from dataflow.aggregation.suppression import FLAG, apply_suppression, primary_sensitive

__all__ = ["ReleaseSummary", "build_release", "newest_release", "read_manifest"]

MANIFEST = "manifest.json"
FORMAT = 1


@dataclass(frozen=True, slots=True)
class ReleaseSummary:
    version: str
    path: Path
    tables: dict[str, dict[str, int]]  # id → {"rows", "suppressed"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _watermark(store: FactStore, con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    row = con.execute(
        f"SELECT count(*), max(issued_at)::VARCHAR FROM read_parquet('{store.facts_glob()}')"
    ).fetchone()
    assert row is not None
    return {"items": int(row[0]), "max_issued_at": row[1]}


def build_release(
    store: FactStore,
    specs: list[TableSpec],
    releases_dir: Path,
    *,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> ReleaseSummary:
    """Build every table, suppress, write to a temporary directory, then publish it by rename."""
    if not store.exists():
        raise FileNotFoundError(f"no fact store at {store.root} (run `dataflow data generate`)")
    built = (now or datetime.now(UTC)).astimezone(UTC)
    releases_dir.mkdir(parents=True, exist_ok=True)
    staging = releases_dir / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "tables").mkdir(parents=True)
    (staging / "internal").mkdir()
    con = duckdb.connect()
    entries, counts, hashes = [], {}, {}
    for spec in specs:
        if progress:
            progress(spec.id)
        cells = build_cells(store, spec, con)
        sensitive = primary_sensitive(cells, spec.rules)
        public = apply_suppression(cells, spec, sensitive).select(
            [*spec.levels, *spec.measures, FLAG]
        )
        rel = f"tables/{spec.id}.parquet"
        pq.write_table(public, staging / rel, compression="zstd")
        # Operators' diagnostics: contributor counts and why a cell was hidden. Never served.
        reason = pc.if_else(sensitive, "primary:threshold", "")
        diag = cells.select([*spec.levels, TAXPAYERS]).append_column("reason", reason)
        pq.write_table(diag, staging / "internal" / f"{spec.id}.parquet", compression="zstd")
        n_supp = int(pc.sum(pc.cast(sensitive, pa.int64())).as_py() or 0)
        counts[spec.id] = {"rows": public.num_rows, "suppressed": n_supp}
        hashes[rel] = _sha256(staging / rel)
        entries.append(
            {
                "id": spec.id,
                "title": spec.title,
                "description": spec.description,
                "file": rel,
                "hierarchies": [{"name": h.name, "levels": h.levels} for h in spec.hierarchies],
                "measures": spec.measures,
                "rows": public.num_rows,
                "suppressed": n_supp,
                "sha256": hashes[rel],
            }
        )
    digest = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()
    version = f"{built:%Y%m%dT%H%M%SZ}-{digest[:8]}"
    manifest = {
        "format": FORMAT,
        "version": version,
        "built_at": built.isoformat(),
        "builder": f"dataflow {__version__}",
        "source": {"store": str(store.root), "watermark": _watermark(store, con)},
        "rules": {
            "primary": ["threshold:min_taxpayers"],
            "secondary": [],
            "markers": {"X": "suppressed", "-": "true zero", "..": "not applicable"},
        },
        "parameters": {s.id: msgspec.to_builtins(s.rules) for s in specs},
        "tables": entries,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    final = releases_dir / version
    staging.rename(final)
    return ReleaseSummary(version=version, path=final, tables=counts)


def read_manifest(release_dir: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((release_dir / MANIFEST).read_text(encoding="utf-8"))
    return data


def newest_release(releases_dir: Path) -> Path | None:
    candidates = sorted(p for p in releases_dir.glob("*") if (p / MANIFEST).is_file())
    return candidates[-1] if candidates else None
