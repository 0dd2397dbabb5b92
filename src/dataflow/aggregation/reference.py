"""Official code lists shipped in ``datasets/`` (IBGE municipalities, CNAE 2.3, NCM, CFOP)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CnaeEntry", "Municipality", "ReferenceData", "load_reference"]


@dataclass(frozen=True, slots=True)
class Municipality:
    code: str  # IBGE 7 digits
    name: str


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

    def cnae_level(self, level: str) -> tuple[CnaeEntry, ...]:
        return tuple(e for e in self.cnae if e.level == level)

    def labels(self, level: str) -> dict[str, str]:
        """Code → label for a standard level name, for catalog code lists."""
        if level == "municipality":
            return {m.code: m.name for m in self.municipalities}
        if level.startswith("cnae_"):
            return {e.code: e.label for e in self.cnae if e.level == level.removeprefix("cnae_")}
        if level == "cfop":
            return dict(self.cfop)
        return {}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def load_reference(datasets_dir: Path) -> ReferenceData:
    return ReferenceData(
        municipalities=tuple(
            Municipality(r["code"], r["name"])
            for r in _rows(datasets_dir / "mg_municipalities.csv")
        ),
        cnae=tuple(
            CnaeEntry(r["level"], r["code"], r["label"], r["parent"])
            for r in _rows(datasets_dir / "cnae.csv")
        ),
        ncm=tuple((r["code"], r["label"]) for r in _rows(datasets_dir / "ncm.csv")),
        cfop=tuple((r["code"], r["label"]) for r in _rows(datasets_dir / "cfop.csv")),
    )
