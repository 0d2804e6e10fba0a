"""The LP relaxation of the time-indexed program as a lower bound on Σ c_i (rounds).

Spec ``completion-time.md`` §1. The relaxation of the MIP of ``fluidopt.models.tct_mip``
over start windows that cut off no optimal schedule (both deadline rules of
:mod:`fluidopt.completion.windows`) is ≤ the optimum, hence ≤ every policy's Σ c_i.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fluidopt.models.tct_mip import MipArrays, TctData, build_arrays

if TYPE_CHECKING:
    from fluidopt.workload import Workload


def lp_relaxation(data: TctData, time_limit: float | None = None) -> tuple[float | None, float, str]:
    """(LP optimum of the time-indexed MIP over ``data``'s windows, seconds, status), a
    valid lower bound on the optimum whenever the windows cut off no optimal schedule (true
    for both horizon rules of :func:`fluidopt.completion.windows.prepare`).

    Solved as in :func:`lp_solution`: with peak rows, ``base_only`` means the value is
    the LP's without them; the value is ``None`` only if no step finished.
    """
    solution = lp_solution(data, time_limit)
    return solution.value, solution.seconds, solution.status


def _solve_relaxation(arrays: MipArrays, time_limit: float | None) -> tuple[float | None, float, str]:
    from fluidopt.solver import SolveOptions, highs_model, solve

    started = time.perf_counter()
    res = solve(highs_model(arrays, relax=True), SolveOptions(time_limit=time_limit))
    value = res.objective if res.status == "optimal" else None
    return value, time.perf_counter() - started, res.status


def lp_bound(
    workload: Workload,
    capacity: int,
    *,
    upper_bound: float | None = None,
    time_limit: float | None = None,
) -> dict[str, Any]:
    """LP relaxation of the time-indexed MIP, rounds.

    Parameters
    ----------
    workload, capacity
        The instance; C in KV tokens.
    upper_bound
        Σ c of a known feasible schedule, used for per-request deadlines (default: the
        best heuristic schedule of :mod:`fluidopt.completion.heuristics`).
    time_limit
        Seconds for the LP solve.

    Returns
    -------
    dict
        ``bound`` (the LP optimum rounded up to an integer, since Σ c_i is integer;
        ``None`` if the LP did not finish), ``lp_value`` (unrounded), ``seconds``,
        ``n_cols``, ``n_rows``.
    """
    from fluidopt.completion.windows import prepare

    prep = prepare(workload, capacity, horizon="incumbent", upper_bound=upper_bound)
    arrays = build_arrays(prep.data)
    value, seconds, _ = _solve_relaxation(arrays, time_limit)
    n_rows, n_cols = arrays.shape
    return {
        "bound": None if value is None else float(math.ceil(value - 1e-6)),
        "lp_value": value,
        "seconds": seconds,
        "n_cols": n_cols,
        "n_rows": n_rows,
    }


@dataclass
class LpSolution:
    """The LP relaxation with its primal and dual solution (what a decomposition bound
    starts from).

    Attributes
    ----------
    value
        LP optimum, rounds (``None`` if the LP did not finish).
    seconds, status
        Solve time, s, and the solver's status.
    x
        Column values in :func:`~fluidopt.models.tct_mip.build_arrays` order (``None``
        without an optimum).
    duals
        Row duals in the same row order; ≤ 0 on the ≤ rows, as HiGHS reports them for a
        minimisation (``None`` without an optimum).
    """

    value: float | None
    seconds: float
    status: str
    x: np.ndarray | None = None
    duals: np.ndarray | None = None


def lp_solution(data: TctData, time_limit: float | None = None, arrays: MipArrays | None = None) -> LpSolution:
    """The LP relaxation of the time-indexed MIP over ``data``'s windows with its primal
    and dual values (rounds; a valid lower bound, see :func:`lp_relaxation`).

    With peak rows (``data.peak_left``) it is solved in two steps on one HiGHS model:
    first without them (a valid bound on its own, and the cheaper part: at 50 requests
    about a quarter of the time), then with them added, re-solved from that basis. If the
    second step does not finish within ``time_limit``, the first step's solution is
    returned (duals 0 on the peak rows) with status ``base_only``, or ``interrupted`` on
    Ctrl-C. ``arrays`` is ``build_arrays(data)`` if the caller has it already.
    """
    from fluidopt.solver import SolveOptions, highs_model, solve

    started = time.perf_counter()
    arrays = build_arrays(data) if arrays is None else arrays
    n_peak = int(data.peak_rows().shape[0])
    base = arrays.shape[0] - n_peak
    A = arrays.A.tocsr()
    first = MipArrays(arrays.c, A[:base], arrays.row_lo[:base], arrays.row_hi[:base], arrays.col_lo, arrays.col_hi,
                      arrays.integrality)
    h = highs_model(first, relax=True)
    res = solve(h, SolveOptions(time_limit=time_limit))
    if res.status != "optimal":
        return LpSolution(None, time.perf_counter() - started, res.status)
    sol = h.getSolution()
    found = LpSolution(res.objective, 0.0, "optimal", np.asarray(sol.col_value),
                       np.r_[np.asarray(sol.row_dual), np.zeros(n_peak)])
    left = None if time_limit is None else time_limit - (time.perf_counter() - started)
    if n_peak and left is not None and left <= 0:
        found.status = "base_only"
    elif n_peak:
        peak = A[base:]
        h.addRows(peak.shape[0], arrays.row_lo[base:], arrays.row_hi[base:], peak.nnz, peak.indptr[:-1],
                  peak.indices, peak.data)
        res = solve(h, SolveOptions(time_limit=left))
        if res.status == "optimal":
            sol = h.getSolution()
            found = LpSolution(res.objective, 0.0, "optimal", np.asarray(sol.col_value), np.asarray(sol.row_dual))
        else:
            found.status = "interrupted" if res.status == "interrupted" else "base_only"
    found.seconds = time.perf_counter() - started
    return found
