"""Official code lists in ``datasets/``: IBGE municipalities and regions, CNAE 2.3, NCM, CFOP.

The geographic hierarchy is municipality → microregion → mesoregion → uf (IBGE's *regiões
geográficas* of 1990, still the level names of DESIGN §10). Codes are IBGE's: municipality 7 digits,
microregion 5 (UF + 3), mesoregion 4 (UF + 2); the uf level uses the state's abbreviation (``MG``),
as ``issuer_uf`` does in the facts.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "GEO_LEVELS",
    "CnaeEntry",
    "Municipality",
    "ReferenceData",
    "Region",
    "State",
    "load_reference",
]

# Coarse to fine, as release manifests list hierarchy levels.
GEO_LEVELS = ("uf", "mesoregion", "microregion", "municipality")


@dataclass(frozen=True, slots=True)
class Municipality:
    code: str  # IBGE 7 digits
    name: str
    microregion: str = ""  # IBGE 5 digits
    mesoregion: str = ""  # IBGE 4 digits
    uf: str = "MG"
    population: int = 0  # a size proxy for weighting, not an official count (datasets/README.md)


@dataclass(frozen=True, slots=True)
class Region:
    """A microregion or mesoregion: IBGE code, name, and the code of the level above."""

    code: str
    name: str
    parent: str


@dataclass(frozen=True, slots=True)
class State:
    """A federative unit: IBGE code (the access key's cUF), abbreviation, name, capital."""

    code: str  # IBGE 2 digits, e.g. "31"
    uf: str  # e.g. "MG"
    name: str
    capital: str  # IBGE 7-digit code of the capital
    capital_name: str


@dataclass(frozen=True, slots=True)
class CnaeEntry:
    level: str  # section | division | group | class | subclass
    code: str  # digits only below section (e.g. "4711302"), letter for the section
    label: str
    parent: str


@dataclass(frozen=True, slots=True)
class ReferenceData:
    municipalities: tuple[Municipality, ...]
    cnae: tuple[CnaeEntry, ...]
    ncm: tuple[tuple[str, str], ...]
    cfop: tuple[tuple[str, str], ...]
    microregions: tuple[Region, ...] = field(default=())
    mesoregions: tuple[Region, ...] = field(default=())
    states: tuple[State, ...] = field(default=())

    def cnae_level(self, level: str) -> tuple[CnaeEntry, ...]:
        return tuple(e for e in self.cnae if e.level == level)

    def labels(self, level: str) -> dict[str, str]:
        """Code → label for a standard level name, for catalog code lists."""
        if level == "municipality":
            return {m.code: m.name for m in self.municipalities}
        if level == "microregion":
            return {r.code: r.name for r in self.microregions}
        if level == "mesoregion":
            return {r.code: r.name for r in self.mesoregions}
        if level == "uf":
            return {s.uf: s.name for s in self.states}
        if level.startswith("cnae_"):
            return {e.code: e.label for e in self.cnae if e.level == level.removeprefix("cnae_")}
        if level == "cfop":
            return dict(self.cfop)
        return {}

    def parents(self, level: str) -> dict[str, str]:
        """Code at ``level`` → code of its parent one level up in municipality → … → uf."""
        if level == "municipality":
            return {m.code: m.microregion for m in self.municipalities}
        if level == "microregion":
            return {r.code: r.parent for r in self.microregions}
        if level == "mesoregion":
            return {r.code: r.parent for r in self.mesoregions}
        raise ValueError(f"{level!r} has no parent in the geographic hierarchy {GEO_LEVELS}")

    def geo_rollup(self) -> dict[str, dict[str, str]]:
        """Municipality code → its code at every geographic level (for joins and margins)."""
        return {
            m.code: {
                "municipality": m.code,
                "microregion": m.microregion,
                "mesoregion": m.mesoregion,
                "uf": m.uf,
            }
            for m in self.municipalities
        }


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _municipalities(datasets_dir: Path) -> tuple[Municipality, ...]:
    regions = {r["municipality"]: r for r in _rows(datasets_dir / "mg_regions.csv")}
    population = {
        r["municipality"]: int(r["population_proxy"])
        for r in _rows(datasets_dir / "mg_population_proxy.csv")
    }
    out = []
    for r in _rows(datasets_dir / "mg_municipalities.csv"):
        reg = regions[r["code"]]
        out.append(
            Municipality(
                r["code"],
                r["name"],
                microregion=reg["microregion"],
                mesoregion=reg["mesoregion"],
                uf="MG",
                population=population[r["code"]],
            )
        )
    return tuple(out)


def _regions(datasets_dir: Path) -> tuple[tuple[Region, ...], tuple[Region, ...]]:
    micro: dict[str, Region] = {}
    meso: dict[str, Region] = {}
    for r in _rows(datasets_dir / "mg_regions.csv"):
        micro[r["microregion"]] = Region(r["microregion"], r["microregion_name"], r["mesoregion"])
        meso[r["mesoregion"]] = Region(r["mesoregion"], r["mesoregion_name"], "MG")
    return tuple(micro[k] for k in sorted(micro)), tuple(meso[k] for k in sorted(meso))


def load_reference(datasets_dir: Path) -> ReferenceData:
    microregions, mesoregions = _regions(datasets_dir)
    return ReferenceData(
        municipalities=_municipalities(datasets_dir),
        cnae=tuple(
            CnaeEntry(r["level"], r["code"], r["label"], r["parent"])
            for r in _rows(datasets_dir / "cnae.csv")
        ),
        ncm=tuple((r["code"], r["label"]) for r in _rows(datasets_dir / "ncm.csv")),
        cfop=tuple((r["code"], r["label"]) for r in _rows(datasets_dir / "cfop.csv")),
        microregions=microregions,
        mesoregions=mesoregions,
        states=tuple(
            State(r["uf_code"], r["uf"], r["name"], r["capital"], r["capital_name"])
            for r in _rows(datasets_dir / "br_states.csv")
        ),
    )
