"""One system of cells and additivity relations over every table of a release.

A cell's identity is the set of facts it sums: the table's single-code level filters plus, per
level family, the finest non-margin code (``cnae_group=471`` already says ``cnae_division=47``).
Two tables that publish the same identity publish the same number — they are *linked* — so
their cells become one variable and each table's relations apply to it. Every relation says
``parent = Σ children`` along one hierarchy step of one table, at every level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from dataflow.aggregation.disclosure.suppression import Primary
from dataflow.aggregation.levels import LEVEL_SQL, TOTAL, family_of
from dataflow.aggregation.specs import TableSpec

__all__ = ["CellSystem", "build_system", "cell_identities"]


@dataclass(slots=True)
class CellSystem:
    """Global cells (deduplicated across tables) and relations (first member is the parent)."""

    keys: list[str]
    value: npt.NDArray[np.float64]
    sensitive: npt.NDArray[np.bool_]
    protection: npt.NDArray[np.float64]
    reason: npt.NDArray[np.int8]
    relations: list[npt.NDArray[np.int64]]
    table_rows: dict[str, npt.NDArray[np.int64]]  # table id → global id of each of its rows
    _cell_relations: list[list[int]] | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return len(self.keys)

    def cell_relations(self) -> list[list[int]]:
        """For each cell, the relations it takes part in (built once)."""
        if self._cell_relations is None:
            out: list[list[int]] = [[] for _ in range(self.size)]
            for r, members in enumerate(self.relations):
                for c in members.tolist():
                    out[c].append(r)
            self._cell_relations = out
        return self._cell_relations


def _fixed_pairs(spec: TableSpec) -> tuple[str, dict[str, tuple[int, str]]]:
    """The filters as (signature of non-level filters, family → (rank, "level=code"))."""
    sig: list[str] = []
    fixed: dict[str, tuple[int, str]] = {}
    for key, value in sorted(spec.filters.items()):
        if key in LEVEL_SQL and isinstance(value, str):
            fam, rank = family_of(key)
            if fam not in fixed or fixed[fam][0] < rank:
                fixed[fam] = (rank, f"{key}={value}")
        else:
            values = [value] if isinstance(value, str) else sorted(value)
            sig.append(f"{key} in {','.join(values)}")
    return ";".join(sig), fixed


def cell_identities(spec: TableSpec, cells: pa.Table) -> list[str]:
    """Identity of each cell: equal strings ⇔ the same set of facts, across tables."""
    sig, fixed = _fixed_pairs(spec)
    columns = {lv: cells[lv].to_pylist() for lv in spec.levels}
    # Per hierarchy, the finest non-margin level decides; scan fine → coarse.
    plan = [
        (family_of(h.levels[0])[0], [(lv, family_of(lv)[1]) for lv in reversed(h.levels)])
        for h in spec.hierarchies
    ]
    out = []
    for i in range(cells.num_rows):
        pairs = dict(fixed)
        for fam, levels in plan:
            for lv, rank in levels:
                code = columns[lv][i]
                if code != TOTAL:
                    if fam not in pairs or pairs[fam][0] < rank:
                        pairs[fam] = (rank, f"{lv}={code}")
                    break
        out.append(sig + "|" + ";".join(pairs[f][1] for f in sorted(pairs)))
    return out


def _table_relations(spec: TableSpec, cells: pa.Table) -> list[list[int]]:
    """Row-index relations [parent, child…] of one table, along every hierarchy step."""
    levels = spec.levels
    cols = [cells[lv].to_pylist() for lv in levels]
    tuples = list(zip(*cols, strict=True))
    index = {t: i for i, t in enumerate(tuples)}
    out: list[list[int]] = []
    for h in spec.hierarchies:
        pos = [levels.index(lv) for lv in h.levels]
        for d, p in enumerate(pos):
            finer = pos[d + 1 :]
            groups: dict[int, list[int]] = {}
            for i, t in enumerate(tuples):
                # children at depth d+1: code at level d, margin at every finer level
                if t[p] == TOTAL or any(t[q] != TOTAL for q in finer):
                    continue
                parent = index.get((*t[:p], TOTAL, *t[p + 1 :]))
                if parent is None:  # cannot happen with GROUPING SETS; guard anyway
                    raise ValueError(f"{spec.id}: margin missing for {t}")
                groups.setdefault(parent, []).append(i)
            out.extend([parent, *children] for parent, children in groups.items())
    return out


def build_system(
    tables: Sequence[tuple[TableSpec, pa.Table, Primary]],
    keys: Sequence[list[str] | None] | None = None,
) -> CellSystem:
    """Merge every table's cells by identity and collect all their relations.

    ``keys`` overrides a table's identities (``None``: ``cell_identities``); the lineage uses it
    to keep apart what an earlier release published of a cell that has changed since.
    """
    gid: dict[str, int] = {}
    value: list[float] = []
    sens: list[bool] = []
    prot: list[float] = []
    reason: list[int] = []
    table_rows: dict[str, npt.NDArray[np.int64]] = {}
    relations: dict[tuple[int, ...], npt.NDArray[np.int64]] = {}
    for t, (spec, cells, prim) in enumerate(tables):
        given = keys[t] if keys is not None else None
        ids = given if given is not None else cell_identities(spec, cells)
        rows = np.empty(len(ids), np.int64)
        for i, key in enumerate(ids):
            g = gid.get(key)
            if g is None:
                g = gid[key] = len(value)
                value.append(float(prim.value[i]))
                sens.append(bool(prim.sensitive[i]))
                prot.append(float(prim.protection[i]))
                reason.append(int(prim.reason[i]))
            else:  # a linked cell: the strictest table's rules apply
                sens[g] = sens[g] or bool(prim.sensitive[i])
                prot[g] = max(prot[g], float(prim.protection[i]))
                reason[g] = reason[g] or int(prim.reason[i])
            rows[i] = g
        table_rows[spec.id] = rows
        for rel in _table_relations(spec, cells):
            members = rows[rel]
            rel_key = (int(members[0]), *sorted(int(c) for c in members[1:]))
            relations.setdefault(rel_key, np.array(rel_key, np.int64))
    return CellSystem(
        keys=list(gid),
        value=np.array(value, np.float64),
        sensitive=np.array(sens, np.bool_),
        protection=np.array(prot, np.float64),
        reason=np.array(reason, np.int8),
        relations=[relations[k] for k in sorted(relations)],
        table_rows=table_rows,
    )
