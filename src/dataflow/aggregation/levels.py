"""Standard level names (DESIGN §10): how each is derived from a fact row, and how levels nest.

A level is either a SQL expression over the fact row, or a lookup in a small reference table
registered in DuckDB (``cnae_section`` from the division; later ``microregion``/``mesoregion``
from the municipality): adding such a level is one ``JoinedLevel`` entry plus one ``RefTable``.

Levels belong to *families* (geography, activity, product, …) and carry a rank inside their
family: a coarser level's cell is the union of the finer level's cells below it. The linked
system (``linked.py``) uses this to tell that a margin of one table is a cell of another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

__all__ = [
    "LEVEL_SQL",
    "MEASURE_SQL",
    "REF_TABLES",
    "TOTAL",
    "JoinedLevel",
    "RefTable",
    "family_of",
    "known_levels",
    "level_sql",
    "per_item",
    "register_references",
]

TOTAL = "_T"  # SDMX code for a margin

_LOCAL = "timezone('America/Sao_Paulo', issued_at)"


@dataclass(frozen=True, slots=True)
class RefTable:
    """A reference table loaded from ``datasets/`` into DuckDB under ``name``."""

    name: str
    file: str  # CSV in the datasets directory
    select: str  # SQL over ``src`` (the CSV read as strings) giving the table's columns


@dataclass(frozen=True, slots=True)
class JoinedLevel:
    """A level looked up in a reference table: ``column`` of the row whose ``ref_key = key_sql``."""

    table: str
    key_sql: str
    column: str
    ref_key: str = "code"


REF_TABLES: dict[str, RefTable] = {
    "ref_cnae_division": RefTable(
        "ref_cnae_division",
        "cnae.csv",
        "SELECT code AS division, parent AS section FROM src WHERE level = 'division'",
    ),
    # When the IBGE region table lands in datasets/ (issue 4), one entry here and one JoinedLevel
    # per level below are all it takes, e.g.
    # "ref_mg_regions": RefTable("ref_mg_regions", "mg_regions.csv",
    #                            "SELECT code, microregion, mesoregion FROM src"),
}

LEVEL_SQL: dict[str, str | JoinedLevel] = {
    "uf": "issuer_uf",
    # "mesoregion": JoinedLevel("ref_mg_regions", "issuer_municipality", "mesoregion"),
    # "microregion": JoinedLevel("ref_mg_regions", "issuer_municipality", "microregion"),
    "municipality": "issuer_municipality",
    # CNAE sections are letters that group divisions irregularly: joined, never derived.
    "cnae_section": JoinedLevel(
        "ref_cnae_division", "substr(issuer_cnae, 1, 2)", "section", ref_key="division"
    ),
    "cnae_division": "substr(issuer_cnae, 1, 2)",
    "cnae_group": "substr(issuer_cnae, 1, 3)",
    "cnae_class": "substr(issuer_cnae, 1, 5)",
    "cnae_subclass": "issuer_cnae",
    "ncm_chapter": "substr(ncm, 1, 2)",
    "ncm_heading": "substr(ncm, 1, 4)",
    "ncm_subheading": "substr(ncm, 1, 6)",
    "ncm_item": "ncm",
    # CFOP's first digit says entry/exit and where: 5 within the state, 6 interstate, 7 abroad.
    "cfop_group": "substr(cfop, 1, 1)",
    "cfop": "cfop",
    "model": "CAST(model AS VARCHAR)",
    "year": f"strftime({_LOCAL}, '%Y')",
    "quarter": f"strftime({_LOCAL}, '%Y') || '-Q' || CAST(quarter({_LOCAL}) AS VARCHAR)",
    "month": f"strftime({_LOCAL}, '%Y-%m')",
    "week": f"strftime({_LOCAL}, '%G-W%V')",
    "recipient_uf": "recipient_uf",
}

# Family and rank (coarse → fine). Levels of one family nest: a cell at a finer level lies in
# exactly one cell of each coarser level. ISO weeks straddle months, so they are a family apart.
_FAMILIES: dict[str, tuple[str, ...]] = {
    "geography": ("uf", "mesoregion", "microregion", "municipality"),
    "activity": ("cnae_section", "cnae_division", "cnae_group", "cnae_class", "cnae_subclass"),
    "product": ("ncm_chapter", "ncm_heading", "ncm_subheading", "ncm_item"),
    "operation": ("cfop_group", "cfop"),
    "model": ("model",),
    "time": ("year", "quarter", "month"),
    "week": ("week",),
    "destination": ("recipient_uf",),
}
# Families whose code is a property of the item, not of the invoice: one invoice's items can
# fall in several cells (every other level is read from the invoice header or the issuer).
_PER_ITEM = frozenset({"product", "operation"})
_FAMILY_OF = {lv: (fam, rank) for fam, lvs in _FAMILIES.items() for rank, lv in enumerate(lvs)}

# Published measures and the internal ones disclosure control needs.
MEASURE_SQL: dict[str, str] = {
    "item_value": "sum(item_value)",
    "invoice_count": "count(DISTINCT access_key)",
    "issuer_count": "count(DISTINCT issuer_root)",
}


def known_levels() -> list[str]:
    return sorted(LEVEL_SQL)


def level_sql(level: str) -> str | JoinedLevel:
    try:
        return LEVEL_SQL[level]
    except KeyError:
        raise ValueError(
            f"unknown level {level!r}; known levels: {', '.join(known_levels())}"
        ) from None


def family_of(level: str) -> tuple[str, int]:
    """``(family, rank)`` of a level; rank grows from coarse to fine."""
    return _FAMILY_OF[level]


def per_item(level: str) -> bool:
    """Whether items of one invoice may differ at this level (e.g. NCM, CFOP)."""
    return family_of(level)[0] in _PER_ITEM


def register_references(con: duckdb.DuckDBPyConnection, datasets_dir: Path) -> None:
    """Create every reference table the joined levels need (idempotent)."""
    for ref in REF_TABLES.values():
        path = datasets_dir / ref.file
        if not path.is_file():
            raise FileNotFoundError(f"reference table {ref.name} needs {path}")
        src = f"read_csv('{path}', all_varchar = true, header = true)"
        con.execute(f"CREATE OR REPLACE TABLE {ref.name} AS WITH src AS (FROM {src}) {ref.select}")
