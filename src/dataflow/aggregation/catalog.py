"""A published release, loaded read-only for serving: manifest, table layouts, public metadata.

This is the read model the API serves. It holds each table in memory in a layout made for its
queries (``layout.py``: canonical order — sorted by its levels, a row's position being the row id
that keyset cursors point at —, level indexes, sort keys) and the public description of each table:
dimensions, levels with their code lists, measures, markers — never the suppression parameters,
which are confidential.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import polars as pl

from dataflow.aggregation.layout import TableLayout
from dataflow.aggregation.levels import TOTAL
from dataflow.aggregation.release import read_manifest
from dataflow.invoices.reference import ReferenceData

__all__ = [
    "MARKERS",
    "Code",
    "LoadedRelease",
    "PublicDimension",
    "PublicHierarchy",
    "PublicLevel",
    "PublicTable",
    "TableNotFound",
    "TableSummary",
    "load_release",
]

MARKERS = {
    "X": "suppressed to protect fiscal secrecy (value is null)",
    "-": "true zero",
    "..": "not applicable",
    "": "published value",
}

# Level names a person can read; unknown levels fall back to their code name.
_LEVEL_TITLES = {
    "uf": "State (UF)",
    "mesoregion": "IBGE mesoregion",
    "microregion": "IBGE microregion",
    "municipality": "Municipality (IBGE 7-digit code)",
    "cnae_section": "CNAE 2.3 section",
    "cnae_division": "CNAE 2.3 division",
    "cnae_group": "CNAE 2.3 group",
    "cnae_class": "CNAE 2.3 class",
    "cnae_subclass": "CNAE 2.3 subclass",
    "ncm_chapter": "NCM chapter (2 digits)",
    "ncm_heading": "NCM heading (4 digits)",
    "ncm_subheading": "NCM subheading (6 digits)",
    "ncm_item": "NCM item (8 digits)",
    "cfop": "CFOP",
    "model": "Invoice model (55 NF-e, 65 NFC-e)",
    "year": "Year",
    "quarter": "Quarter (YYYY-Qn)",
    "month": "Month (YYYY-MM)",
    "week": "ISO week (YYYY-Www)",
}

_MEASURE_TITLES = {
    "item_value": "Value of goods (vProd), BRL",
    "invoice_count": "Number of authorized invoices",
    "issuer_count": "Number of issuing taxpayers (CNPJ roots)",
}


class TableNotFound(LookupError):
    """The release has no table with this id."""

    def __init__(self, table_id: str, known: list[str]) -> None:
        super().__init__(f"no table {table_id!r} in this release; tables: {', '.join(known)}")
        self.table_id = table_id
        self.known = known


class Code(msgspec.Struct, frozen=True):
    code: str
    label: str | None = None


class PublicLevel(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    title: str
    codes: list[Code]  # every code the table holds at this level (the margin `_T` not included)


class PublicDimension(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    levels: list[PublicLevel]  # coarse to fine


class PublicHierarchy(msgspec.Struct, frozen=True):
    name: str
    levels: list[str]


class PublicMeasure(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    title: str
    type: str  # "number" or "integer"


class TableSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A catalog entry: what the table is, without its code lists."""

    id: str
    title: str
    description: str
    hierarchies: list[PublicHierarchy]
    measures: list[str]
    rows: int
    release: str


class PublicTable(msgspec.Struct, frozen=True, kw_only=True):
    """What partners may see of a table: never the suppression parameters."""

    id: str
    title: str
    description: str
    hierarchies: list[PublicHierarchy]
    dimensions: list[PublicDimension]
    measures: list[str]
    measure_details: list[PublicMeasure]
    columns: list[str]
    rows: int
    release: str
    markers: dict[str, str]
    total_code: str = TOTAL
    # In Brazilian Portuguese, for people's pages (the table's English text where a release
    # made before these existed has none).
    title_pt: str = ""
    description_pt: str = ""

    @property
    def levels(self) -> list[str]:
        return [lv for h in self.hierarchies for lv in h.levels]

    def summary(self) -> TableSummary:
        return TableSummary(
            id=self.id,
            title=self.title,
            description=self.description,
            hierarchies=self.hierarchies,
            measures=self.measures,
            rows=self.rows,
            release=self.release,
        )


@dataclass(frozen=True, slots=True)
class LoadedRelease:
    version: str
    path: Path
    tables: dict[str, PublicTable] = field(repr=False)
    layouts: dict[str, TableLayout] = field(repr=False)

    def table(self, table_id: str) -> PublicTable:
        try:
            return self.tables[table_id]
        except KeyError:
            raise TableNotFound(table_id, sorted(self.tables)) from None

    @property
    def nbytes(self) -> int:
        return sum(layout.nbytes for layout in self.layouts.values())


def _labels(reference: ReferenceData | None, level: str) -> dict[str, str]:
    if reference is None:
        return {}
    try:
        return reference.labels(level)
    except (KeyError, ValueError, AttributeError):  # a level the reference data does not know
        return {}


def _level(df: pl.DataFrame, level: str, reference: ReferenceData | None) -> PublicLevel:
    labels = _labels(reference, level)
    codes = sorted(c for c in df.get_column(level).unique().to_list() if c != TOTAL)
    return PublicLevel(
        name=level,
        title=_LEVEL_TITLES.get(level, level),
        codes=[Code(c, labels.get(c)) for c in codes],
    )


def _measure(df: pl.DataFrame, name: str) -> PublicMeasure:
    dtype = df.schema[name]
    kind = "integer" if dtype.is_integer() else "number"
    return PublicMeasure(name=name, title=_MEASURE_TITLES.get(name, name), type=kind)


def load_release(path: Path, reference: ReferenceData | None = None) -> LoadedRelease:
    """Read a release directory; ``reference`` labels the code lists (codes alone without it)."""
    manifest = read_manifest(path)
    version = str(manifest["version"])
    tables: dict[str, PublicTable] = {}
    layouts: dict[str, TableLayout] = {}
    entries = manifest["tables"]
    assert isinstance(entries, list)
    for entry in entries:
        hierarchies = [PublicHierarchy(h["name"], list(h["levels"])) for h in entry["hierarchies"]]
        levels = [lv for h in hierarchies for lv in h.levels]
        measures = list(entry["measures"])
        df = pl.read_parquet(path / entry["file"])
        df = df.sort(levels)
        meta = PublicTable(
            id=entry["id"],
            title=entry.get("title", entry["id"]),
            description=entry.get("description", ""),
            title_pt=entry.get("title_pt") or entry.get("title", entry["id"]),
            description_pt=entry.get("description_pt") or entry.get("description", ""),
            hierarchies=hierarchies,
            dimensions=[
                PublicDimension(name=h.name, levels=[_level(df, lv, reference) for lv in h.levels])
                for h in hierarchies
            ],
            measures=measures,
            measure_details=[_measure(df, m) for m in measures],
            columns=[*levels, *measures, "flag"],
            rows=df.height,
            release=version,
            markers=MARKERS,
        )
        tables[meta.id] = meta
        arrow = df.to_arrow(compat_level=pl.CompatLevel.oldest())
        layouts[meta.id] = TableLayout.build(arrow, levels, measures)
    return LoadedRelease(version=version, path=path, tables=tables, layouts=layouts)
