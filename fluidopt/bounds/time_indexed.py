"""The LP relaxation of the time-indexed program as a lower bound on Σ c_i (rounds).

Spec ``completion-time.md`` §1. The relaxation of the MIP of ``fluidopt.models.tct_mip``
over start windows that cut off no optimal schedule (both deadline rules of
:mod:`fluidopt.completion.windows`) is ≤ the optimum, hence ≤ every policy's Σ c_i.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from fluidopt.models.tct_mip import MipArrays, TctData, build_arrays

if TYPE_CHECKING:
    from fluidopt.workload import Workload


def lp_relaxation(data: TctData, time_limit: float | None = None) -> tuple[float | None, float, str]:
    """(LP optimum of the time-indexed MIP over ``data``'s windows, seconds, status), a
    valid lower bound on the optimum whenever the windows cut off no optimal schedule (true
    for both horizon rules of :func:`fluidopt.completion.windows.prepare`).

    With peak rows (``data.peak_left``) the LP is solved in two steps on one HiGHS model:
    first without them (a valid bound on its own, and the cheaper part: at 50 requests
    about a quarter of the time), then with them added, re-solved from that basis. If
    the second step does not finish within ``time_limit``, the first one's value is
    returned with status ``base_only``; the value is ``None`` only if neither finished.
    """
    arrays = build_arrays(data)
    n_peak = int(data.peak_rows().shape[0])
    if n_peak == 0:
        return _solve_relaxation(arrays, time_limit)
    return _solve_in_two_steps(arrays, n_peak, time_limit)


def _solve_in_two_steps(arrays: MipArrays, n_peak: int, time_limit: float | None) -> tuple[float | None, float, str]:
    from fluidopt.solver import SolveOptions, highs_model, solve

    started = time.perf_counter()
    base = arrays.shape[0] - n_peak
    A = arrays.A.tocsr()
    first = MipArrays(arrays.c, A[:base], arrays.row_lo[:base], arrays.row_hi[:base], arrays.col_lo, arrays.col_hi,
                      arrays.integrality)
    h = highs_model(first, relax=True)
    res = solve(h, SolveOptions(time_limit=time_limit))
    if res.status != "optimal":
        return None, time.perf_counter() - started, res.status
    value = res.objective
    left = None if time_limit is None else time_limit - (time.perf_counter() - started)
    if left is not None and left <= 0:
        return value, time.perf_counter() - started, "base_only"
    peak = A[base:]
    h.addRows(peak.shape[0], arrays.row_lo[base:], arrays.row_hi[base:], peak.nnz, peak.indptr[:-1], peak.indices,
              peak.data)
    res = solve(h, SolveOptions(time_limit=left))
    if res.status == "optimal":
        return res.objective, time.perf_counter() - started, "optimal"
    status = "interrupted" if res.status == "interrupted" else "base_only"
    return value, time.perf_counter() - started, status


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
