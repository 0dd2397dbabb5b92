"""Releases protected against each other: a partner who keeps every release and subtracts them.

The story: January is published, then January + February (every time margin grows), then the
same months with one late January invoice of 25,000 BRL from one taxpayer (a revision).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dataflow.aggregation.cube import contributions_sql, cube_sql
from dataflow.aggregation.disclosure.suppression import primary
from dataflow.aggregation.levels import TOTAL, register_references
from dataflow.aggregation.lineage import (
    Earlier,
    LineageError,
    PublishedTable,
    joint,
    protect_joint,
)
from dataflow.aggregation.release import ReleaseSummary, build_release
from dataflow.aggregation.specs import Hierarchy, TableSpec
from dataflow.cli import app
from dataflow.invoices.factstore import FactStore
from dataflow.invoices.synthetic.late import add_late_items
from tests.aggregation.attacker import Attacker, Cell, link_division_month, public_rows
from tests.aggregation.disclosure.test_secondary import CNAES, MUNIS, SPEC_A, SPEC_B, _facts, item

from .conftest import REPO

LATE = Decimal("25000.00")
# One worker builds the three releases once for every test here.
pytestmark = pytest.mark.xdist_group("lineage")


@dataclass(frozen=True)
class Story:
    stores: dict[str, FactStore]
    releases: Path
    built: dict[str, ReleaseSummary]  # "jan", "jan+feb", "revised"
    taxpayer: str


@pytest.fixture(scope="module")
def story(
    fact_store: FactStore, linked_specs: list[TableSpec], tmp_path_factory: pytest.TempPathFactory
) -> Story:
    root = tmp_path_factory.mktemp("lineage")
    jan = FactStore(root / "jan")
    for kind in ("facts", "invoices"):
        shutil.copytree(fact_store.partition(kind, 2026, 1), jan.partition(kind, 2026, 1))
    revised = FactStore(root / "revised")
    shutil.copytree(fact_store.root, revised.root)
    taxpayer = add_late_items(revised, 2026, 1, items=1, value=LATE)
    stores = {"jan": jan, "jan+feb": fact_store, "revised": revised}
    releases = root / "releases"
    built = {name: build_release(store, linked_specs, releases) for name, store in stores.items()}
    return Story(stores=stores, releases=releases, built=built, taxpayer=taxpayer)


def _internal(release: Path, spec: TableSpec) -> pl.DataFrame:
    return pl.read_parquet(release / "internal" / f"{spec.id}.parquet")


def _values(release: Path, spec: TableSpec) -> dict[tuple[str, ...], float]:
    df = _internal(release, spec)
    return {
        tuple(r[: len(spec.levels)]): float(r[-1])
        for r in df.select([*spec.levels, "value"]).iter_rows()
    }


def _revised_cells(story: Story, spec: TableSpec) -> list[tuple[str, ...]]:
    """Cells whose true value moved by exactly the late invoice between the last two releases."""
    before = _values(story.built["jan+feb"].path, spec)
    after = _values(story.built["revised"].path, spec)
    return sorted(
        k for k, v in after.items() if k in before and abs(v - before[k] - float(LATE)) < 0.005
    )


def test_each_release_lists_the_earlier_ones(story: Story) -> None:
    jan, both, revised = (story.built[k] for k in ("jan", "jan+feb", "revised"))
    assert jan.lineage == [] and both.lineage == [jan.version]
    assert revised.lineage == [jan.version, both.version]
    manifest = json.loads((revised.path / "manifest.json").read_text())
    assert manifest["format"] == 3 and manifest["lineage"] == revised.lineage
    assert (revised.path / "internal" / "requirements.parquet").is_file()
    assert any(c["revision"] > 0 for c in revised.tables.values())


def test_differencing_releases_built_apart_exposes_the_revision(
    story: Story, linked_specs: list[TableSpec], tmp_path: Path
) -> None:
    """Why lineage matters: the revised data protected on its own (as if no release existed
    before) publishes cells whose difference from the last release is the late invoice."""
    alone = build_release(story.stores["revised"], linked_specs, tmp_path)
    leaks = 0
    for spec in linked_specs:
        before = public_rows(story.built["jan+feb"].path, spec)
        after = public_rows(alone.path, spec)
        leaks += sum(
            1
            for k, v in after.items()
            if v is not None
            and before.get(k) is not None
            and abs(v - before[k] - float(LATE)) < 0.005
        )
    assert leaks > 0, "the attack this protection exists for did not happen"


def _partner(story: Story, specs: list[TableSpec]) -> Attacker:
    """Holds all three releases; assumes unchanged every cell whose value did not change
    (the strongest partner: told exactly which cells the revisions touched)."""
    partner = Attacker()
    tags = list(story.built)
    for tag in tags:
        for spec in specs:
            partner.add_table(tag, spec, public_rows(story.built[tag].path, spec))
        link_division_month(partner, tag, specs)
    for spec in specs:
        values = {tag: _values(story.built[tag].path, spec) for tag in tags}
        for i, a in enumerate(tags):
            for b in tags[i + 1 :]:
                for k, v in values[a].items():
                    if values[b].get(k) == v:
                        partner.link((a, spec.id, k), (b, spec.id, k))
    return partner


def test_partner_holding_every_release_recovers_nothing(
    story: Story, linked_specs: list[TableSpec]
) -> None:
    partner = _partner(story, linked_specs)
    # 1. the revision: every cell it moved, between the last two releases
    rules = linked_specs[0].rules
    need = primary(
        pa.table({"item_value": [LATE], "n_taxpayers": [1], "top": [[float(LATE)]]}), rules
    )
    p = float(need.protection[0])
    assert need.sensitive[0] and p > 0
    moved = 0
    for spec in linked_specs:
        for codes in _revised_cells(story, spec):
            lo, hi = partner.bounds(
                {("revised", spec.id, codes): 1.0, ("jan+feb", spec.id, codes): -1.0}
            )
            assert lo <= float(LATE) - p + 1e-3 and hi >= float(LATE) + p - 1e-3, (
                spec.id,
                codes,
                lo,
                hi,
            )
            moved += 1
    assert moved > 0
    # 2. every sensitive cell of every release keeps its protection against all of them
    rng = np.random.default_rng(5)
    for tag, built in story.built.items():
        for spec in linked_specs:
            sens = _internal(built.path, spec).filter(pl.col("reason").str.starts_with("primary"))
            rows = sens.select([*spec.levels, "value", "protection"]).rows()
            for r in [rows[i] for i in rng.choice(len(rows), min(25, len(rows)), replace=False)]:
                codes, x, prot = tuple(r[: len(spec.levels)]), float(r[-2]), float(r[-1])
                lo, hi = partner.bounds({(tag, spec.id, codes): 1.0})
                tol = 1e-6 * max(1.0, x)
                assert lo <= x - min(prot, x) + tol and hi >= x + prot - tol, (tag, spec.id, codes)


def test_release_audit_checks_the_lineage(story: Story, tmp_path: Path) -> None:
    revised = story.built["revised"]
    result = CliRunner().invoke(app, ["release", "audit", str(revised.path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["lineage"] == revised.lineage
    # moved away from the releases it was protected against, it cannot be audited
    alone = tmp_path / revised.version
    shutil.copytree(revised.path, alone)
    result = CliRunner().invoke(app, ["release", "audit", str(alone)])
    assert result.exit_code == 2 and "protected against" in result.output


def test_unchanged_data_keeps_its_pattern(story: Story, linked_specs: list[TableSpec]) -> None:
    again = build_release(story.stores["revised"], linked_specs, story.releases)
    try:
        for spec in linked_specs:
            before = pl.read_parquet(story.built["revised"].path / "tables" / f"{spec.id}.parquet")
            after = pl.read_parquet(again.path / "tables" / f"{spec.id}.parquet")
            assert after.equals(before), spec.id
    finally:
        shutil.rmtree(again.path)


def test_a_redefined_table_is_refused(
    story: Story, linked_specs: list[TableSpec], tmp_path: Path
) -> None:
    releases = tmp_path / "releases"
    shutil.copytree(story.built["jan"].path, releases / story.built["jan"].version)
    spec = next(s for s in linked_specs if "model" in s.levels)
    coarser = TableSpec(
        id=spec.id,
        title=spec.title,
        hierarchies=[
            h if h.name != "activity" else Hierarchy(name=h.name, levels=h.levels[:1])
            for h in spec.hierarchies
        ],
        measures=spec.measures,
        filters=spec.filters,
        rules=spec.rules,
    )
    with pytest.raises(LineageError, match="changed its definition"):
        build_release(story.stores["jan+feb"], [coarser], releases)


# --- small random tables: any revision (late items, cancellations), any pattern --------------


def _publish(
    items: list[tuple[int, int, int, int, int]], earlier: list[Earlier], version: str
) -> Earlier:
    """Protect the cells of ``items`` against ``earlier`` as a build would; the result as the
    next build sees it."""
    con = duckdb.connect()
    register_references(con, REPO / "datasets")
    con.register("facts", _facts(items))
    current = []
    for spec in (SPEC_A, SPEC_B):
        cells = con.sql(cube_sql(spec, "facts")).to_arrow_table()
        current.append(
            PublishedTable(
                spec=spec,
                cells=cells,
                value=cells["item_value"],
                prim=primary(cells, spec.rules),
                hidden=None,
                contributions=con.sql(contributions_sql(spec, "facts")).to_arrow_table(),
            )
        )
    lineage = joint(current, earlier, con)
    unknown, audits, _ = protect_joint(lineage)
    assert all(a.passed for a in audits)
    shown = unknown | lineage.keep_hidden | lineage.conflicts
    tables = [replace(t, hidden=shown[lineage.current_rows(t.spec.id)]) for t in current]
    return Earlier(version=version, tables=tables, requirements=lineage.requirements)


def _codes(spec: TableSpec, it: tuple[int, int, int, int, int]) -> list[tuple[str, ...]]:
    """Every cell of the small tables an item counts in (written apart from the cube SQL)."""
    m, c, t, *_ = it
    cnae = CNAES[c]
    activity = [(cnae[:2], cnae[:3]), (cnae[:2], TOTAL), (TOTAL, TOTAL)]
    other = [MUNIS[m], TOTAL] if spec is SPEC_A else [f"2026-0{t + 1}", TOTAL]
    if spec is SPEC_A:
        return [(o, *a) for o in other for a in activity]
    return [(*a, o) for a in activity for o in other]


def _by_taxpayer(items: list[tuple[int, int, int, int, int]], spec: TableSpec):  # type: ignore[no-untyped-def]
    out: dict[tuple[str, ...], dict[int, Decimal]] = {}
    for it in items:
        for codes in _codes(spec, it):
            cell = out.setdefault(codes, {})
            cell[it[3]] = cell.get(it[3], Decimal(0)) + Decimal(it[4]) / 100
    return out


@settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    st.lists(item, min_size=3, max_size=30),
    st.lists(item, min_size=0, max_size=4),
    st.integers(0, 3),
)
def test_random_revisions_cannot_be_differenced(
    items: list[tuple[int, int, int, int, int]],
    late: list[tuple[int, int, int, int, int]],
    cancelled: int,
) -> None:
    """Holding both releases, a partner narrows no sensitive cell and no revision below its
    protection — except where the first release already pinned it: then even hiding every
    cell of the second release would not protect it (what ``limited`` reports)."""
    revised = items[cancelled:] + late
    releases = [_publish(items, [], "r1")]
    releases.append(_publish(revised, releases, "r2"))
    true = {
        (e.version, t.spec.id): dict(zip(_row_codes(t), t.value.to_pylist(), strict=True))
        for e in releases
        for t in e.tables
    }
    partner = _random_partner(releases, true, False)
    hiding_all = _random_partner(releases, true, True)

    def protected(form: dict[Cell, float], reach: tuple[float, float], at: float) -> bool:
        lo, hi = partner.bounds(form)
        tol = 1e-6 * max(1.0, abs(at), *reach)
        if lo <= at - reach[0] + tol and hi >= at + reach[1] - tol:
            return True
        lo, hi = hiding_all.bounds(form)  # no pattern of the second release could do it
        return not (lo <= at - reach[0] + tol and hi >= at + reach[1] - tol)

    for e in releases:  # every sensitive cell of either release
        for t in e.tables:
            for i in np.flatnonzero(t.prim.sensitive & (t.prim.protection > 0)).tolist():
                x, p = float(t.prim.value[i]), float(t.prim.protection[i])
                cell = (e.version, t.spec.id, _row_codes(t)[i])
                assert protected({cell: 1.0}, (min(p, x), p), x), cell
    # the revision of every cell both publish, grouped by taxpayer, through the same rules
    for spec in (SPEC_A, SPEC_B):
        before, after = _by_taxpayer(items, spec), _by_taxpayer(revised, spec)
        for k, now in after.items():
            if k not in before or true[("r1", spec.id)][k] == true[("r2", spec.id)][k]:
                continue
            moves = [abs(now.get(tp, 0) - before[k].get(tp, 0)) for tp in {*now, *before[k]}]
            moves = sorted((d for d in moves if d), reverse=True)
            need = primary(
                pa.table(
                    {
                        "item_value": pa.array([sum(moves)], pa.decimal128(38, 2)),
                        "n_taxpayers": [len(moves)],
                        "top": [[float(d) for d in moves[:2]]],
                    }
                ),
                spec.rules,
            )
            if not need.sensitive[0] or need.protection[0] <= 0:
                continue
            delta = float(true[("r2", spec.id)][k] - true[("r1", spec.id)][k])
            p = float(need.protection[0])
            # toward "no change" the reach is capped at the revision itself (lineage.py)
            reach = (min(p, delta), p) if delta > 0 else (p, min(p, -delta))
            form = {("r2", spec.id, k): 1.0, ("r1", spec.id, k): -1.0}
            assert protected(form, reach, delta), (spec.id, k)


def _random_partner(
    releases: list[Earlier],
    true: dict[tuple[str, str], dict[tuple[str, ...], Decimal]],
    all_hidden: bool,
) -> Attacker:
    """Both releases' public cells (or, ``all_hidden``, the second one hiding everything),
    A's all-municipality cells linked to B's all-month cells, unchanged cells linked across."""
    partner = Attacker()
    for e in releases:
        for t in e.tables:
            assert t.hidden is not None
            hidden = t.hidden | (all_hidden and e is releases[-1])
            values = t.value.to_pylist()
            partner.add_table(
                e.version,
                t.spec,
                {
                    k: (None if h else float(v))
                    for k, v, h in zip(_row_codes(t), values, hidden, strict=True)
                },
            )
        for k in _row_codes(next(t for t in e.tables if t.spec is SPEC_A)):
            if k[0] == TOTAL:
                partner.link((e.version, "a", k), (e.version, "b", (*k[1:], TOTAL)))
    for spec in (SPEC_A, SPEC_B):
        for k, v in true[("r1", spec.id)].items():
            if true[("r2", spec.id)].get(k) == v:
                partner.link(("r1", spec.id, k), ("r2", spec.id, k))
    return partner


def _row_codes(t: PublishedTable) -> list[tuple[str, ...]]:
    cols = [t.cells[lv].to_pylist() for lv in t.spec.levels]
    return list(zip(*cols, strict=True))
