"""A partner's attack, written apart from ``audit.py`` on purpose: scipy ``linprog`` over the
public files only (cells by release, table and codes), every hierarchy relation of every
table, links the partner can see (linked margins, cells they assume unchanged between two
releases), non-negativity; then the smallest and largest value of any linear form of cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.optimize import linprog

from dataflow.aggregation.levels import TOTAL
from dataflow.aggregation.specs import TableSpec

Cell = tuple[str, str, tuple[str, ...]]  # (release tag, table id, codes)
_SCALE = 1e-3  # thousands of BRL keep the LP well conditioned


def public_rows(release: Path, spec: TableSpec) -> dict[tuple[str, ...], float | None]:
    """Codes → published value (``None`` where suppressed), straight from the public file."""
    df = pl.read_parquet(release / "tables" / f"{spec.id}.parquet")
    n = len(spec.levels)
    return {
        tuple(r[:n]): (None if r[n] is None else float(r[n]))
        for r in df.select([*spec.levels, "item_value"]).iter_rows()
    }


class Attacker:
    def __init__(self) -> None:
        self.var: dict[Cell, int] = {}
        self.known: dict[Cell, float] = {}
        self.rows: list[list[tuple[Cell, float]]] = []
        self._lp: tuple[sp.csr_matrix, np.ndarray] | None = None

    def __contains__(self, cell: Cell) -> bool:
        return cell in self.var or cell in self.known

    def add_table(
        self, tag: str, spec: TableSpec, rows: dict[tuple[str, ...], float | None]
    ) -> None:
        """A published table: its cells and every ``parent = Σ children`` step."""
        self._lp = None
        for key, v in rows.items():
            cell = (tag, spec.id, key)
            if v is None:
                self.var.setdefault(cell, len(self.var))
            else:
                self.known[cell] = v
        levels = spec.levels
        for h in spec.hierarchies:
            pos = [levels.index(lv) for lv in h.levels]
            for d, p in enumerate(pos):
                groups: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
                for key in rows:
                    if key[p] != TOTAL and all(key[q] == TOTAL for q in pos[d + 1 :]):
                        groups.setdefault((*key[:p], TOTAL, *key[p + 1 :]), []).append(key)
                for parent, kids in groups.items():
                    self.rows.append(
                        [((tag, spec.id, parent), 1.0)] + [((tag, spec.id, k), -1.0) for k in kids]
                    )

    def link(self, a: Cell, b: Cell) -> None:
        """The partner knows (or assumes) that two cells hold the same number."""
        if a in self and b in self:
            self._lp = None
            self.rows.append([(a, 1.0), (b, -1.0)])

    def _system(self) -> tuple[sp.csr_matrix, np.ndarray]:
        if self._lp is None:
            ri: list[int] = []
            ci: list[int] = []
            vals: list[float] = []
            b_eq: list[float] = []
            for row in self.rows:
                coefs: dict[int, float] = {}
                rhs = 0.0
                for cell, s in row:
                    if cell in self.var:
                        coefs[self.var[cell]] = coefs.get(self.var[cell], 0.0) + s
                    else:
                        rhs -= s * self.known[cell] * _SCALE
                coefs = {k: v for k, v in coefs.items() if v}
                if coefs:
                    for k, v in coefs.items():
                        ri.append(len(b_eq))
                        ci.append(k)
                        vals.append(v)
                    b_eq.append(rhs)
            a_eq = sp.csr_matrix((vals, (ri, ci)), shape=(len(b_eq), len(self.var)))
            self._lp = (a_eq, np.array(b_eq))
        return self._lp

    def bounds(self, form: dict[Cell, float]) -> tuple[float, float]:
        """Smallest and largest value of ``Σ coef · cell`` the published data allows."""
        const = sum(c * self.known[cell] for cell, c in form.items() if cell in self.known)
        obj = np.zeros(len(self.var))
        for cell, c in form.items():
            if cell in self.var:
                obj[self.var[cell]] += c
        if not obj.any():
            return const, const
        a_eq, b_eq = self._system()
        out = []
        for sense in (1.0, -1.0):
            res = linprog(sense * obj, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
            assert res.status in (0, 3), res.message  # 3: unbounded
            out.append(sense * res.fun / _SCALE + const if res.status == 0 else -sense * np.inf)
        return out[0], out[1]


def quarter(month: str) -> str:
    return f"{month[:4]}-Q{(int(month[5:]) - 1) // 3 + 1}"


def link_division_month(attacker: Attacker, tag: str, specs: list[TableSpec]) -> None:
    """The catalogue's linked pair: the model table's all-model cells are the section →
    division × quarter → month table's cells of the same division and month."""
    a = next(s for s in specs if "model" in s.levels)
    b = next(s for s in specs if "quarter" in s.levels)
    for cell in [c for c in (*attacker.var, *attacker.known) if c[:2] == (tag, a.id)]:
        codes = dict(zip(a.levels, cell[2], strict=True))
        if codes.get("model", TOTAL) != TOTAL:
            continue
        other = dict.fromkeys(b.levels, TOTAL)
        other.update({lv: codes[lv] for lv in b.levels if lv in codes})
        if codes["month"] != TOTAL:
            other["year"], other["quarter"] = codes["month"][:4], quarter(codes["month"])
        attacker.link(cell, (tag, b.id, tuple(other[lv] for lv in b.levels)))
