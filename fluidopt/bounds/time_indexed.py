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
    """(LP optimum of the time-indexed MIP over ``data``'s windows, seconds, status); the
    value is ``None`` if the LP did not finish. A valid lower bound on the optimum whenever
    the windows cut off no optimal schedule (true for both horizon rules of
    :func:`fluidopt.completion.windows.prepare`)."""
    return _solve_relaxation(build_arrays(data), time_limit)


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


def lp_solution(data: TctData, time_limit: float | None = None) -> LpSolution:
    """The LP relaxation of :func:`lp_relaxation` (with ``data``'s peak rows, in one
    solve), keeping its primal and dual values."""
    from fluidopt.solver import SolveOptions, highs_model, solve

    started = time.perf_counter()
    h = highs_model(build_arrays(data), relax=True)
    res = solve(h, SolveOptions(time_limit=time_limit))
    seconds = time.perf_counter() - started
    if res.status != "optimal":
        return LpSolution(None, seconds, res.status)
    sol = h.getSolution()
    return LpSolution(res.objective, seconds, res.status, np.asarray(sol.col_value), np.asarray(sol.row_dual))
