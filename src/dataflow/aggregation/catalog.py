"""A published release, loaded read-only for serving: manifest, table frames, public metadata."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgspec
import polars as pl

from dataflow.aggregation.release import read_manifest

__all__ = ["ROW_ID", "LoadedRelease", "PublicTable", "TableNotFound", "load_release"]

ROW_ID = "_row"  # stable position of a row in its table's canonical order: the keyset cursor


class TableNotFound(LookupError):
    def __init__(self, table_id: str, known: list[str]) -> None:
        super().__init__(f"no table {table_id!r} in this release; tables: {', '.join(known)}")
        self.table_id = table_id


class PublicHierarchy(msgspec.Struct, frozen=True):
    name: str
    levels: list[str]


class PublicTable(msgspec.Struct, frozen=True, kw_only=True):
    """What partners may see of a table: never the suppression parameters."""

    id: str
    title: str
    description: str
    hierarchies: list[PublicHierarchy]
    measures: list[str]
    rows: int
    release: str
    markers: dict[str, str]
    total_code: str = "_T"

    @property
    def levels(self) -> list[str]:
        return [lv for h in self.hierarchies for lv in h.levels]


@dataclass(frozen=True, slots=True)
class LoadedRelease:
    version: str
    path: Path
    tables: dict[str, PublicTable]
    frames: dict[str, pl.DataFrame]

    def table(self, table_id: str) -> PublicTable:
        try:
            return self.tables[table_id]
        except KeyError:
            raise TableNotFound(table_id, sorted(self.tables)) from None


_MARKERS = {"X": "suppressed to protect fiscal secrecy", "-": "true zero", "..": "not applicable"}


def load_release(path: Path) -> LoadedRelease:
    manifest = read_manifest(path)
    version = str(manifest["version"])
    tables: dict[str, PublicTable] = {}
    frames: dict[str, pl.DataFrame] = {}
    entries = manifest["tables"]
    assert isinstance(entries, list)
    for entry in entries:
        hierarchies = [PublicHierarchy(h["name"], list(h["levels"])) for h in entry["hierarchies"]]
        meta = PublicTable(
            id=entry["id"],
            title=entry.get("title", entry["id"]),
            description=entry.get("description", ""),
            hierarchies=hierarchies,
            measures=list(entry["measures"]),
            rows=int(entry["rows"]),
            release=version,
            markers=_MARKERS,
        )
        df = pl.read_parquet(path / entry["file"])
        df = df.sort(meta.levels).with_row_index(ROW_ID)
        tables[meta.id] = meta
        frames[meta.id] = df
    return LoadedRelease(version=version, path=path, tables=tables, frames=frames)
