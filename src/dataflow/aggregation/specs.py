"""Declarative table specs: one TOML file per published table, in ``tables/``."""

from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec

from dataflow.aggregation.levels import MEASURE_SQL, level_sql

__all__ = ["Hierarchy", "SpecError", "SuppressionRules", "TableSpec", "load_specs"]


class SpecError(ValueError):
    """A table spec file is malformed."""


class Hierarchy(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    levels: list[str]  # coarse → fine


class SuppressionRules(msgspec.Struct, frozen=True, kw_only=True):
    """Confidential parameters: internal configuration only, never served."""

    min_taxpayers: int = 3
    p_percent: float | None = None
    dominance_n: int | None = None
    dominance_k: float | None = None


class TableSpec(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    title: str
    description: str = ""
    hierarchies: list[Hierarchy]
    measures: list[str]
    filters: dict[str, str | list[str]] = {}
    rules: SuppressionRules = SuppressionRules()

    @property
    def levels(self) -> list[str]:
        return [lv for h in self.hierarchies for lv in h.levels]


def _validate(spec: TableSpec, path: Path) -> TableSpec:
    for lv in spec.levels:
        try:
            level_sql(lv)
        except ValueError as e:
            raise SpecError(f"{path}: {e}") from None
    unknown = [m for m in spec.measures if m not in MEASURE_SQL]
    if unknown:
        raise SpecError(f"{path}: unknown measures {unknown}; known: {sorted(MEASURE_SQL)}")
    if len(set(spec.levels)) != len(spec.levels):
        raise SpecError(f"{path}: a level appears in two hierarchies")
    return spec


def load_specs(tables_dir: Path) -> list[TableSpec]:
    specs = []
    for path in sorted(tables_dir.glob("*.toml")):
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
            spec = msgspec.convert(raw, TableSpec)
        except (tomllib.TOMLDecodeError, msgspec.ValidationError) as e:
            raise SpecError(f"{path}: {e}") from None
        specs.append(_validate(spec, path))
    if not specs:
        raise SpecError(f"no table specs (*.toml) in {tables_dir}")
    return specs
