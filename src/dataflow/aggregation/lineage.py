"""Releases protected against each other: what a partner holding every release can subtract.

(Over 600 lines on purpose: the joint system, its revision cells and their protection are one
argument that reads best in one place; every function here serves `joint`/`protect_joint`.)

A partner keeps every release. Publishing a month again, or a margin that now takes in one more
month, lets them subtract the two figures: the difference is the *revision* — late invoices,
cancellations, often from one taxpayer. So a release is built and audited in one system with
every earlier release (``joint``):

- A cell whose value is the same as in an earlier release is one variable in both (the attacker
  may assume it unchanged); a cell that changed has one variable per value it ever had, each
  with the relations of the release that published it. What an earlier release published is
  known (``frozen``: no perturbation moves it, hiding it again protects nothing), what it hid
  stays hidden. Every earlier release's sensitive cells must stay protected in this system
  too: a new pattern must not give away what an old one hid.
- The revision of each cell, grouped by taxpayer (``cube.delta_sql``), goes through the table's
  primary rules. Where it is sensitive and the earlier release published the cell, the new
  value is the revision plus a known number: the cell must be hidden with an interval that
  covers the revision's protection level (a requirement in the joint system). Where the earlier
  release hid it, the attacker subtracts two unknowns: the requirement is checked against a
  stronger attacker who also knows those earlier values (``KnownCheck``) — sound, since knowing
  more can only narrow the interval. (Knowing the *whole* earlier release would be too strong:
  a cell that vanished would then pin its margins exactly.)
- Every release stores its revision requirements (``internal/requirements.parquet``), and later
  releases keep honouring them: a pattern may change, a promise may not.
- Cells the newest earlier release hid and that did not change stay hidden (stable patterns).

A new cell (absent before) reveals by differencing exactly what it reveals by itself, and a cell
that vanished shows a known zero: neither needs more than the joint audit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataflow.aggregation.cube import delta_sql
from dataflow.aggregation.disclosure.audit import AuditResult, audit
from dataflow.aggregation.disclosure.hypercube import Hypercubes, TableIndex
from dataflow.aggregation.disclosure.linked import CellSystem, build_system, cell_identities
from dataflow.aggregation.disclosure.secondary import protect
from dataflow.aggregation.disclosure.suppression import (
    FLAG,
    FLAG_SUPPRESSED,
    Primary,
    Reason,
    primary,
)
from dataflow.aggregation.levels import TOTAL
from dataflow.aggregation.specs import MAGNITUDE, Hierarchy, TableSpec

__all__ = [
    "CONTRIBUTIONS",
    "LIMITED",
    "REQUIREMENTS",
    "Earlier",
    "Joint",
    "LineageError",
    "PublishedTable",
    "Revisions",
    "audit_joint",
    "joint",
    "load_earlier",
    "load_tables",
    "protect_joint",
    "releases_in",
]

CONTRIBUTIONS = "internal/contributions"  # one Parquet file per table: finest cell × taxpayer
REQUIREMENTS = "internal/requirements.parquet"
LIMITED = "internal/limited.parquet"  # cell → the protection earlier releases left it
REQUIREMENT_SCHEMA = pa.schema(
    [
        ("cell", pa.string()),  # identity (linked.cell_identities)
        ("value", pa.string()),  # the value it had in that release (exact decimal)
        ("protection", pa.float64()),  # symmetric protection level of the revision
        ("against", pa.string()),  # the release the revision was measured against
        ("against_value", pa.string()),  # the cell's value there
    ]
)


class LineageError(RuntimeError):
    """Earlier releases cannot be taken into account (missing, or a table redefined)."""


@dataclass(frozen=True, slots=True)
class PublishedTable:
    """One table of a release as the lineage reads it: true values and what was shown."""

    spec: TableSpec
    cells: pa.Table  # level columns (and, read from files, the internal diagnostics)
    value: pa.ChunkedArray  # true magnitude per row (decimal)
    prim: Primary  # sensitivity and protection per row
    hidden: npt.NDArray[np.bool_] | None  # published pattern; None for the release being built
    # ``cube.contributions_sql``'s result, in memory or as a Parquet file (read by DuckDB when
    # needed, never loaded whole); None for releases built before lineage protection
    contributions: pa.Table | Path | None


@dataclass(frozen=True, slots=True)
class Earlier:
    version: str
    tables: list[PublishedTable]
    requirements: pa.Table  # REQUIREMENT_SCHEMA

    @property
    def legacy(self) -> bool:
        """Built before releases kept their contributions: revisions cannot be measured."""
        return any(t.contributions is None for t in self.tables)


@dataclass(frozen=True, slots=True)
class Revisions:
    """The joint system plus one cell per revision of a cell an earlier release hid
    (``_revision_cells``), those cells its only sensitive ones; they come after the joint
    system's cells and are never shown."""

    system: CellSystem
    indexes: list[TableIndex]

    def extend(self, mask: npt.NDArray[np.bool_], value: bool) -> npt.NDArray[np.bool_]:
        """A mask over the joint system, extended to the revision cells."""
        out: npt.NDArray[np.bool_] = np.r_[mask, np.full(self.system.size - len(mask), value)]
        return out


@dataclass(frozen=True, slots=True)
class Joint:
    system: CellSystem  # this release + every earlier one; sensitive = every requirement
    indexes: list[TableIndex]  # this release's tables, then the earlier ones ("id@version")
    current: int  # global ids below this are the release's own cells
    frozen: npt.NDArray[np.bool_]  # published before with this value: known to the attacker
    fixed_hidden: npt.NDArray[np.bool_]  # earlier values of changed cells that were hidden
    keep_hidden: npt.NDArray[np.bool_]  # unchanged cells the newest earlier release hid
    conflicts: npt.NDArray[np.bool_]  # sensitive now, but published before at this value
    grand_totals: npt.NDArray[np.bool_]  # every table's all-margin cell (boxes keep them)
    revisions: Revisions | None  # revisions of cells an earlier release hid
    requirements: pa.Table  # this release's own revision requirements (to store)
    lineage: list[str]

    def unknown(self, hidden: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        """What the attacker does not know, given the cells this release hides."""
        return (hidden | self.fixed_hidden) & ~self.frozen

    def current_rows(self, table_id: str) -> npt.NDArray[np.int64]:
        return self.system.table_rows[table_id]


def _text(values: pa.ChunkedArray | pa.Array) -> list[str]:
    return pc.cast(values, pa.string()).to_pylist()  # type: ignore[no-any-return]


def _same_definition(a: TableSpec, b: TableSpec) -> bool:
    return (a.hierarchies, a.measures, a.filters) == (b.hierarchies, b.measures, b.filters)


def _row_index(spec: TableSpec, cells: pa.Table) -> dict[tuple[str, ...], int]:
    cols = [cells[lv].to_pylist() for lv in spec.levels]
    return {t: i for i, t in enumerate(zip(*cols, strict=True))}


def joint(
    current: Sequence[PublishedTable],
    earlier: Sequence[Earlier],
    con: duckdb.DuckDBPyConnection,
    limited: Mapping[str, float] | None = None,
) -> Joint:
    """One system over this release and every earlier one, with every requirement in it.

    ``limited``: protections a build had to settle for (``protect_joint``), by cell key; the
    audit of that release holds those cells to them.
    """
    cur_keys = [cell_identities(t.spec, t.cells) for t in current]
    cur_value: dict[str, str] = {}
    for t, keys in zip(current, cur_keys, strict=True):
        for k, v in zip(keys, _text(t.value), strict=True):
            cur_value.setdefault(k, v)
    tables: list[tuple[TableSpec, pa.Table, Primary]] = [(t.spec, t.cells, t.prim) for t in current]
    all_keys: list[list[str] | None] = list(cur_keys)
    old: list[tuple[int, PublishedTable, str]] = []  # (release index, table, pseudo id)
    for j, e in enumerate(earlier):
        for t in e.tables:
            keys = (
                t.cells["cell"].to_pylist()
                if "cell" in t.cells.column_names
                else cell_identities(t.spec, t.cells)
            )
            values = _text(t.value)
            all_keys.append(
                [
                    k if cur_value.get(k) == v else f"{k}@{v}"
                    for k, v in zip(keys, values, strict=True)
                ]
            )
            pseudo = f"{t.spec.id}@{e.version}"
            tables.append((msgspec.structs.replace(t.spec, id=pseudo), t.cells, t.prim))
            old.append((j, t, pseudo))
    system = build_system(tables, all_keys)
    n_cur = len(cur_value)
    gid_of = {k: g for g, k in enumerate(system.keys)}

    frozen = np.zeros(system.size, np.bool_)
    fixed_hidden = np.zeros(system.size, np.bool_)
    keep_hidden = np.zeros(system.size, np.bool_)
    for j, t, pseudo in old:
        assert t.hidden is not None
        rows = system.table_rows[pseudo]
        frozen[rows[~t.hidden]] = True
        hid = rows[t.hidden]
        fixed_hidden[hid[hid >= n_cur]] = True
        if j == len(earlier) - 1:
            keep_hidden[hid[hid < n_cur]] = True
    fixed_hidden &= ~frozen

    sens = system.sensitive.copy()
    prot = system.protection.copy()
    reason = system.reason.copy()
    pairs: dict[tuple[int, int], float] = {}  # (cell, its earlier hidden value) → protection
    own: list[dict[str, object]] = []

    def require(g: int, p: float, before: int) -> None:
        """The revision from ``before`` (the cell's earlier value) to ``g`` needs ``p``."""
        if frozen[before]:  # published: the new value is the revision plus a known number
            if not sens[g]:
                reason[g] = Reason.REVISION
            sens[g] = True
            prot[g] = max(prot[g], p)
        else:
            pairs[(g, before)] = max(pairs.get((g, before), 0.0), p)

    def gid(cell: str, value: str, where: str) -> int:
        found = gid_of.get(cell) if cur_value.get(cell) == value else gid_of.get(f"{cell}@{value}")
        if found is None:
            raise LineageError(
                f"release {where} states a requirement on cell {cell} at {value}, which no "
                "release in the directory published: a published release stays published, "
                "keep every release beside the new ones"
            )
        return found

    versions = [e.version for e in earlier]
    for j, e in enumerate(earlier):
        if not e.legacy:
            _revisions(current, cur_keys, e, system, con, require, own)
        for r in e.requirements.to_pylist():
            if r["against"] not in versions[:j]:
                raise LineageError(
                    f"release {e.version} was protected against release {r['against']}, which "
                    "is not in the releases directory: a published release stays published"
                )
            g = gid(str(r["cell"]), str(r["value"]), e.version)
            before = gid(str(r["cell"]), str(r["against_value"]), e.version)
            require(g, float(r["protection"]), before)
        _check_covered(e, j, old, system, gid_of, n_cur)

    conflicts = sens & frozen
    sens[conflicts], prot[conflicts] = False, 0.0
    caps = dict(limited or {})
    for key, cap in caps.items():
        capped = gid_of.get(key)
        if capped is not None:
            prot[capped] = min(prot[capped], cap)
    for g, before in [k for k in pairs if frozen[k[0]] and frozen[k[1]]]:
        conflicts[g] = True  # both published: the revision is public already
        del pairs[(g, before)]
    system = replace(system, sensitive=sens, protection=prot, reason=reason)
    indexes = [
        TableIndex.build(spec, cells, system.table_rows[spec.id]) for spec, cells, _ in tables
    ]
    grand = np.zeros(system.size, np.bool_)
    for index in indexes:
        r = index.index.get(tuple([TOTAL] * len(index.spec.levels)))
        if r is not None:
            grand[index.gids[r]] = True
    revisions = None
    if pairs:
        quiet = replace(
            system,
            sensitive=np.zeros(system.size, np.bool_),
            protection=np.zeros(system.size),
            reason=np.zeros(system.size, np.int8),
        )
        rev_system, rev_tables = _revision_cells(quiet, pairs, caps)
        revisions = Revisions(
            system=rev_system,
            indexes=indexes
            + [TableIndex.build(s, c, rev_system.table_rows[s.id]) for s, c, _ in rev_tables],
        )
    return Joint(
        system=system,
        indexes=indexes,
        current=n_cur,
        frozen=frozen,
        fixed_hidden=fixed_hidden,
        keep_hidden=keep_hidden,
        conflicts=conflicts,
        grand_totals=grand,
        revisions=revisions,
        requirements=pa.Table.from_pylist(own, schema=REQUIREMENT_SCHEMA),
        lineage=versions,
    )


_PART = TableSpec(
    id="revision",
    title="revision",
    hierarchies=[Hierarchy(name="revision", levels=["part"])],
    measures=[MAGNITUDE],
)
_PARTS = pa.table({"part": [TOTAL, "other", "revision"]})


def _revision_cells(
    system: CellSystem, pairs: dict[tuple[int, int], float], caps: Mapping[str, float]
) -> tuple[CellSystem, list[tuple[TableSpec, pa.Table, Primary]]]:
    """One cell per revision of a cell whose earlier value was hidden, ``d = |new − old|``,
    sensitive with the revision's protection, in a three-cell table ``larger = smaller + d``.

    Taking ``d ≥ 0`` tells the attacker the revision's sign: a smaller feasible set, so a
    revision protected here is protected against the real attacker (the one thing this cannot
    show is an interval reaching past zero: a protection larger than the revision is capped at
    it). The tiny table lets secondary suppression and the audit reach ``d`` through the
    boxes and hypercubes of both values' tables, like any linked cell.
    """
    if not pairs:
        return system, []
    keys, values, relations = list(system.keys), list(system.value), list(system.relations)
    sens, prot = list(system.sensitive), list(system.protection)
    reason, table_rows = list(system.reason), dict(system.table_rows)
    tables = []
    for n, ((g, before), p) in enumerate(sorted(pairs.items())):
        big, small = (g, before) if system.value[g] >= system.value[before] else (before, g)
        d = len(keys)
        key = f"revision:{system.keys[g]}<-{system.keys[before]}"
        keys.append(key)
        values.append(float(system.value[big] - system.value[small]))
        sens.append(True)
        prot.append(min(p, caps.get(key, p)))
        reason.append(int(Reason.REVISION))
        members = np.array([big, small, d], np.int64)
        relations.append(members)
        spec = msgspec.structs.replace(_PART, id=f"revision:{n}")
        table_rows[spec.id] = members
        zero = np.zeros(3)
        tables.append(
            (
                spec,
                _PARTS,
                Primary(
                    value=zero, sensitive=zero > 0, reason=zero.astype(np.int8), protection=zero
                ),
            )
        )
    return (
        CellSystem(
            keys=keys,
            value=np.array(values),
            sensitive=np.array(sens, np.bool_),
            protection=np.array(prot),
            reason=np.array(reason, np.int8),
            relations=relations,
            table_rows=table_rows,
        ),
        tables,
    )


def _register(con: duckdb.DuckDBPyConnection, name: str, contributions: pa.Table | Path) -> None:
    if isinstance(contributions, Path):
        path = str(contributions).replace("'", "''")
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS FROM read_parquet('{path}')")
    else:
        con.register(name, contributions)


def _revisions(
    current: Sequence[PublishedTable],
    cur_keys: list[list[str]],
    e: Earlier,
    system: CellSystem,
    con: duckdb.DuckDBPyConnection,
    require: Callable[[int, float, int], None],
    own: list[dict[str, object]],
) -> None:
    """The revision rules on every table this release shares with ``e``."""
    before = {t.spec.id: t for t in e.tables}
    for t, keys in zip(current, cur_keys, strict=True):
        prev = before.get(t.spec.id)
        if prev is None:
            continue
        if not _same_definition(t.spec, prev.spec):
            raise LineageError(
                f"table {t.spec.id} changed its definition since release {e.version}, which "
                "published it: publish the new definition under a new table id"
            )
        assert t.contributions is not None and prev.contributions is not None
        assert prev.hidden is not None
        _register(con, "lineage_new", t.contributions)
        _register(con, "lineage_old", prev.contributions)
        try:
            delta = con.sql(delta_sql(t.spec, "lineage_new", "lineage_old")).to_arrow_table()
        finally:
            con.execute("DROP VIEW IF EXISTS lineage_new; DROP VIEW IF EXISTS lineage_old")
        moved = primary(delta, t.spec.rules)
        hits = np.flatnonzero(moved.sensitive & (moved.protection > 0))
        if not len(hits):
            continue
        cur_index = _row_index(t.spec, t.cells)
        old_index = _row_index(prev.spec, prev.cells)
        cur_values, old_values = _text(t.value), _text(prev.value)
        rows = system.table_rows[t.spec.id]
        old_rows = system.table_rows[f"{t.spec.id}@{e.version}"]
        codes = [delta[lv].to_pylist() for lv in t.spec.levels]
        for i in hits.tolist():
            tup = tuple(c[i] for c in codes)
            r, o = cur_index.get(tup), old_index.get(tup)
            if r is None or o is None or cur_values[r] == old_values[o]:
                continue  # vanished, new, or back to the value published: nothing to subtract
            p = float(moved.protection[i])
            require(int(rows[r]), p, int(old_rows[o]))
            own.append(
                {
                    "cell": keys[r],
                    "value": cur_values[r],
                    "protection": p,
                    "against": e.version,
                    "against_value": old_values[o],
                }
            )


def _check_covered(
    e: Earlier,
    j: int,
    old: list[tuple[int, PublishedTable, str]],
    system: CellSystem,
    gid_of: dict[str, int],
    n_cur: int,
) -> None:
    """Every cell that changed since ``e`` lies in a table both releases define: otherwise its
    revision cannot be measured (``_revisions`` compares table by table)."""
    if e.legacy:
        return
    covered = np.zeros(n_cur, np.bool_)
    for t in e.tables:
        rows = system.table_rows.get(t.spec.id)
        if rows is not None:
            covered[rows] = True
    for jj, _, pseudo in old:
        if jj != j:
            continue
        for g in system.table_rows[pseudo].tolist():
            base, sep, _ = system.keys[g].partition("@")
            cur = gid_of.get(base) if sep else None
            if cur is not None and cur < n_cur and not covered[cur]:
                raise LineageError(
                    f"cell {base} changed since release {e.version} but no table defines it "
                    "in both releases: its revision cannot be measured"
                )


def protect_joint(
    lineage: Joint,
    *,
    previous: npt.NDArray[np.bool_] | None = None,
    progress: Callable[[str], None] | None = None,
    secondary: bool = True,
) -> tuple[npt.NDArray[np.bool_], list[AuditResult], dict[str, float]]:
    """What the attacker may not know (over the joint system), the audits of record (the
    joint system, then its revisions) and the cells earlier releases pinned closer than their
    protection (cell → the protection they could get): secondary suppression with every
    requirement, or (``secondary=False``) primary suppression only."""
    system, rev = lineage.system, lineage.revisions
    cubes = Hypercubes(system, lineage.indexes)
    unknown = lineage.unknown(system.sensitive | lineage.keep_hidden)
    if not secondary:
        return unknown, audit_joint(lineage, unknown, cubes=cubes), {}
    relax = bool(lineage.lineage)  # only earlier releases can make a cell unprotectable
    res = protect(
        system,
        lineage.indexes,
        previous=previous,
        progress=progress,
        initial=unknown,
        frozen=lineage.frozen,
        grand_totals=lineage.grand_totals,
        cubes=cubes,
        relax=relax,
    )
    limited = {system.keys[g]: p for g, p in res.limited.items()}
    if rev is None:
        return res.suppressed, [res.audit], limited
    if progress:
        progress("revisions of cells hidden before")
    rev_cubes = Hypercubes(rev.system, rev.indexes)
    rev_start = rev.extend(res.suppressed, True)
    res_rev = protect(
        rev.system,
        rev.indexes,
        previous=None if previous is None else rev.extend(previous, False),
        initial=rev_start,
        frozen=rev.extend(lineage.frozen, False),
        grand_totals=rev.extend(lineage.grand_totals, False),
        cubes=rev_cubes,
        relax=relax,
        bulk=True,  # revisions are new requirements, most beyond any small box: one LP each way
    )
    limited.update({rev.system.keys[g]: p for g, p in res_rev.limited.items()})
    unknown = res_rev.suppressed[: system.size]
    # more hidden cells only widen the joint system's intervals: it passes again
    held = system
    if res.limited:
        protection = system.protection.copy()
        for g, p in res.limited.items():
            protection[g] = p
        held = replace(system, protection=protection)
    again = audit(held, unknown, exact=False, cubes=cubes, witnesses=res.witnesses)
    return unknown, [again, res_rev.audit], limited


def audit_joint(
    lineage: Joint,
    unknown: npt.NDArray[np.bool_],
    *,
    exact: bool = False,
    cubes: Hypercubes | None = None,
) -> list[AuditResult]:
    """The audits of a pattern: the joint system, then the revisions of hidden cells."""
    system, rev = lineage.system, lineage.revisions
    out = [audit(system, unknown, exact=exact, cubes=cubes or Hypercubes(system, lineage.indexes))]
    if rev is not None:
        out.append(
            audit(
                rev.system,
                rev.extend(unknown, True),
                exact=exact,
                cubes=Hypercubes(rev.system, rev.indexes),
                bulk=True,
            )
        )
    return out


def releases_in(releases_dir: Path) -> list[Path]:
    """Published releases in a directory, oldest first."""
    if not releases_dir.is_dir():
        return []
    found = [
        p
        for p in releases_dir.iterdir()
        if not p.name.startswith(".") and (p / "manifest.json").is_file()
    ]

    def built_at(p: Path) -> tuple[str, str]:  # two builds in one second: the version ties
        manifest = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
        return str(manifest.get("built_at", "")), p.name

    return sorted(found, key=built_at)


def load_tables(release: Path) -> tuple[dict[str, object], list[PublishedTable]]:
    """A release's manifest and tables: specs (with their confidential rules), true values,
    sensitivity and protection from the internal diagnostics, the published pattern, and the
    taxpayer contributions when the release kept them."""
    manifest = json.loads((release / "manifest.json").read_text(encoding="utf-8"))
    params = json.loads((release / "internal" / "parameters.json").read_text(encoding="utf-8"))
    out = []
    for entry in manifest["tables"]:
        spec = msgspec.convert(
            {
                "id": entry["id"],
                "title": entry["title"],
                "hierarchies": entry["hierarchies"],
                "measures": entry["measures"],
                "filters": entry.get("filters", {}),
                "rules": params["tables"][entry["id"]],
            },
            TableSpec,
        )
        public = pq.read_table(release / entry["file"])
        internal = pq.read_table(release / "internal" / f"{spec.id}.parquet")
        for lv in spec.levels:  # the two files are written in the same row order
            same = pc.cast(public[lv], pa.string()).equals(pc.cast(internal[lv], pa.string()))
            if not same:
                raise ValueError(f"{spec.id}: public and internal rows differ")
        labels = internal["reason"].to_pylist()
        sensitive = np.array(
            [r.startswith("primary") or r == Reason.REVISION.label for r in labels], np.bool_
        )
        prim = Primary(
            value=pc.cast(internal["value"], pa.float64()).to_numpy(zero_copy_only=False),
            sensitive=sensitive,
            reason=np.where(sensitive, Reason.THRESHOLD, 0).astype(np.int8),
            protection=np.where(
                sensitive, internal["protection"].to_numpy(zero_copy_only=False), 0.0
            ),
        )
        hidden = pc.equal(public[FLAG], FLAG_SUPPRESSED).to_numpy(zero_copy_only=False)
        if (hidden & pc.is_valid(public[MAGNITUDE]).to_numpy(zero_copy_only=False)).any():
            raise ValueError(f"{spec.id}: a cell flagged X still shows its value")
        contrib = release / CONTRIBUTIONS / f"{spec.id}.parquet"
        out.append(
            PublishedTable(
                spec=spec,
                cells=internal,
                value=internal["value"],
                prim=prim,
                hidden=hidden,
                contributions=contrib if contrib.is_file() else None,
            )
        )
    return manifest, out


def load_earlier(releases: Sequence[Path]) -> list[Earlier]:
    out = []
    for path in releases:
        manifest, tables = load_tables(path)
        req = path / REQUIREMENTS
        requirements = pq.read_table(req) if req.is_file() else REQUIREMENT_SCHEMA.empty_table()
        out.append(
            Earlier(version=str(manifest["version"]), tables=tables, requirements=requirements)
        )
    return out
