"""A thin HiGHS wrapper: one model, many objectives (the solver keeps its basis between solves).

scipy's ``linprog`` rebuilds and presolves the model on every call; the audit asks the same
system for the min and max of every suppressed cell, so reusing one warm model is far faster.
"""

from __future__ import annotations

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

__all__ = ["LpModel", "LpUnsolved"]

INF = highspy.kHighsInf


class LpUnsolved(RuntimeError):
    """HiGHS ended with neither an optimum nor an unbounded ray."""


class LpModel:
    """``min c·x`` subject to ``row_lo ≤ A·x ≤ row_hi`` and ``lo ≤ x ≤ hi``."""

    def __init__(
        self,
        a: sp.spmatrix | sp.sparray,
        row_lo: npt.NDArray[np.float64],
        row_hi: npt.NDArray[np.float64],
        lo: npt.NDArray[np.float64],
        hi: npt.NDArray[np.float64],
        cost: npt.NDArray[np.float64] | None = None,
    ) -> None:
        csc = sp.csc_matrix(a)
        n_row, n_col = csc.shape
        lp = highspy.HighsLp()
        lp.num_col_ = n_col
        lp.num_row_ = n_row
        lp.col_cost_ = np.zeros(n_col) if cost is None else np.asarray(cost, np.float64)
        lp.col_lower_ = np.asarray(lo, np.float64)
        lp.col_upper_ = np.where(np.isinf(hi), INF, hi).astype(np.float64)
        lp.row_lower_ = np.where(np.isinf(row_lo), -INF, row_lo).astype(np.float64)
        lp.row_upper_ = np.where(np.isinf(row_hi), INF, row_hi).astype(np.float64)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
        lp.a_matrix_.index_ = csc.indices.astype(np.int32)
        lp.a_matrix_.value_ = csc.data.astype(np.float64)
        self.n = n_col
        self.h = highspy.Highs()  # type: ignore[no-untyped-call]
        self.h.setOptionValue("output_flag", False)
        self.h.setOptionValue("random_seed", 0)
        self.h.setOptionValue("presolve", "off")
        self.h.passModel(lp)

    def set_cost(self, cols: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
        self.h.changeColsCost(len(cols), cols.astype(np.int32), values.astype(np.float64))

    def solve(self) -> tuple[str, float, npt.NDArray[np.float64] | None]:
        """``("optimal", objective, x)``, ``("unbounded", -inf, None)`` or ``("infeasible", …)``."""
        self.h.run()
        status = self.h.getModelStatus()
        ms = highspy.HighsModelStatus
        if status == ms.kOptimal:
            x = np.array(self.h.getSolution().col_value)
            return "optimal", float(self.h.getInfo().objective_function_value), x
        if status in (ms.kUnbounded, ms.kUnboundedOrInfeasible):
            return "unbounded", -np.inf, None
        if status == ms.kInfeasible:
            return "infeasible", np.inf, None
        raise LpUnsolved(self.h.modelStatusToString(status))
