"""Declarative table specs: one TOML file per published table, in ``tables/``."""

from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec

from dataflow.aggregation.levels import LEVEL_SQL, MEASURE_SQL, family_of, level_sql
from dataflow.invoices.schema import FACT_SCHEMA

__all__ = [
    "MAGNITUDE",
    "Hierarchy",
    "SpecError",
    "SuppressionRules",
    "TableSpec",
    "load_specs",
    "rule_names",
]

MAGNITUDE = "item_value"  # the measure the p%- and dominance rules and the audit work on


class SpecError(ValueError):
    """A table spec file is malformed."""


class Hierarchy(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    levels: list[str]  # coarse → fine


class SuppressionRules(msgspec.Struct, frozen=True, kw_only=True):
    """Confidential parameters: internal configuration only, never served.

    ``threshold_protection`` is the protection a threshold-rule cell needs, as a share of its
    value: the attacker's interval must reach at least that far on both sides.
    """

    min_taxpayers: int = 3
    p_percent: float | None = 10.0
    dominance_n: int | None = None
    dominance_k: float | None = None
    threshold_protection: float = 0.10


def rule_names(rules: SuppressionRules) -> list[str]:
    """Public names of the rules in force: the catalog names rules, never their values."""
    names = ["threshold:distinct_taxpayers"]
    if rules.p_percent is not None:
        names.append("p-percent")
    if rules.dominance_n is not None and rules.dominance_k is not None:
        names.append("dominance-n-k")
    return names


class TableSpec(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    title: str
    description: str = ""
    # What people's pages (the console, the public page) show, in Brazilian Portuguese; the API
    # and the docs use title/description (English), these fall back to them when absent.
    title_pt: str = ""
    description_pt: str = ""
    hierarchies: list[Hierarchy]
    measures: list[str]
    # level (or fact column) → code or codes; a single code on a level makes the table a slice
    # of that level, which is how linked tables are recognized (see linked.py).
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
    if MAGNITUDE not in spec.measures:
        raise SpecError(f"{path}: every table publishes {MAGNITUDE} (the audited measure)")
    if len(set(spec.levels)) != len(spec.levels):
        raise SpecError(f"{path}: a level appears in two hierarchies")
    for h in spec.hierarchies:
        fams = [family_of(lv) for lv in h.levels]
        if len({f for f, _ in fams}) != 1 or [r for _, r in fams] != sorted(r for _, r in fams):
            raise SpecError(
                f"{path}: hierarchy {h.name!r} must go coarse → fine within one family "
                f"(e.g. cnae_section, cnae_division, cnae_group), got {h.levels}"
            )
    for key in spec.filters:
        if key not in LEVEL_SQL and key not in FACT_SCHEMA.names:
            raise SpecError(f"{path}: filter on {key!r}, neither a level nor a fact column")
    r = spec.rules
    if r.min_taxpayers < 1 or (r.p_percent is not None and not 0 < r.p_percent < 100):
        raise SpecError(f"{path}: rules out of range: {msgspec.to_builtins(r)}")
    if (r.dominance_n is None) != (r.dominance_k is None):
        raise SpecError(f"{path}: the dominance rule needs both dominance_n and dominance_k")
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
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise SpecError(f"{tables_dir}: two specs share an id: {sorted(ids)}")
    return specs
