"""The solver layer: time limits, MIP starts, Ctrl-C, matrix models."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from fluidopt.models.tct_mip import build_arrays, start_vector
from fluidopt.solver import SolveOptions, highs_model, process_threads, solve
from fluidopt.tct import prepare
from fluidopt.workload import Workload

# Ten requests of the [KV] family (all at 0, C = 47): HiGHS does not close this in a minute.
HARD_PROMPT = [4, 3, 2, 2, 1, 1, 1, 1, 5, 4]
HARD_OUTPUT = [40, 23, 28, 44, 34, 30, 26, 26, 40, 12]
HARD_C = 47


def hard_instance():
    w = Workload.from_frame(pd.DataFrame({"arrival": 0, "prompt": HARD_PROMPT, "output": HARD_OUTPUT}))
    prep = prepare(w, HARD_C, horizon="serial", aggregate=False, executor=False)
    return w, prep


class Knapsack:
    """max 5x + 4y + 3z s.t. 2x + 3y + z ≤ 5, binary: optimum 9 at x = y = 1, z = 0 (10 needs 6 weight).

    As a minimisation: min −5x − 4y − 3z; x = z = 1 gives −8, x = y = 1 gives −9.
    """

    c = np.array([-5.0, -4.0, -3.0])
    A = sp.csr_matrix(np.array([[2.0, 3.0, 1.0]]))
    row_lo = np.array([-np.inf])
    row_hi = np.array([5.0])
    col_lo = np.zeros(3)
    col_hi = np.ones(3)
    integrality = np.ones(3, dtype=np.int8)


def test_matrix_model_solves_to_hand_optimum() -> None:
    res = solve(Knapsack())
    assert res.status == "optimal"
    assert res.objective == -9.0
    np.testing.assert_allclose(res.solution, [1, 1, 0])


def test_lp_relaxation_of_matrix_model() -> None:
    """LP: x = 1 (ratio 2.5), z = 1 (ratio 3), y = 2/3 → −5 − 3 − 8/3 = −10.667."""
    res = solve(highs_model(Knapsack(), relax=True))
    assert res.status == "optimal"
    assert abs(res.objective - (-5 - 3 - 8 / 3)) < 1e-6


def test_time_limit_returns_incumbent_bound_and_gap_without_raising() -> None:
    w, prep = hard_instance()
    h = highs_model(build_arrays(prep.data))
    x0 = start_vector(prep.data, prep.incumbent)
    res = solve(h, SolveOptions(time_limit=2.0), start=x0)
    assert res.status == "time_limit"
    assert res.seconds < 15  # HiGHS checks its clock only between phases
    assert res.objective is not None
    assert res.objective <= prep.upper_bound  # never worse than the start it was given
    # Before its root LP is solved HiGHS may report no bound or the trivial one (0 here,
    # every cost is non-negative), whose gap is exactly 1.
    if res.bound is not None:
        assert 0 <= res.bound < res.objective
        assert res.gap == pytest.approx((res.objective - res.bound) / res.objective)
        assert 0 < res.gap <= 1


def test_time_limited_tct_solve_reports_incumbent_bound_and_gap() -> None:
    from fluidopt.tct import solve_tct

    w, prep = hard_instance()
    res = solve_tct(w, HARD_C, time_limit=2.0, executor=False)
    assert res.status == "time_limit"
    assert res.objective_tct is not None and res.objective_tct <= prep.upper_bound
    assert res.best_bound is not None and res.best_bound < res.objective_tct
    assert res.gap == (res.objective_tct - res.best_bound) / res.objective_tct
    assert sorted(res.starts_by_id(w)) == list(range(10))


def test_mip_start_is_accepted_as_first_incumbent() -> None:
    """With a node limit of 0 nothing but presolve runs; the start is the incumbent."""
    w, prep = hard_instance()
    h = highs_model(build_arrays(prep.data))
    h.setOptionValue("mip_max_nodes", 0)
    h.setOptionValue("mip_heuristic_effort", 0.0)
    h.setOptionValue("presolve", "off")
    x0 = start_vector(prep.data, prep.incumbent)
    res = solve(h, SolveOptions(time_limit=5.0), start=x0)
    assert res.objective is not None
    assert res.objective <= prep.upper_bound
    assert "MIP start" in res.message


def test_ctrl_c_returns_what_was_found(sigint) -> None:
    w, prep = hard_instance()
    h = highs_model(build_arrays(prep.data))
    x0 = start_vector(prep.data, prep.incumbent)
    timer = threading.Timer(1.0, os.kill, args=(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        res = solve(h, SolveOptions(time_limit=60.0), start=x0)
    finally:
        timer.cancel()
    assert res.status == "interrupted"
    assert res.seconds < 20  # HiGHS polls the interrupt between phases, not continuously
    assert res.objective is not None and res.objective <= prep.upper_bound
    if res.bound is not None:  # only once the root LP is solved
        assert res.bound <= res.objective


def test_thread_count_is_fixed_by_the_first_request() -> None:
    first = process_threads(3)
    assert process_threads(7) == first


def test_a_time_limit_counts_from_each_solve_not_from_the_models_first() -> None:
    """HiGHS compares ``time_limit`` with the run time of all solves of the object: a
    model solved again (the LP with its peak rows added, the path master) must still get
    the seconds it is given."""
    rng = np.random.default_rng(0)
    n, m = 1500, 750
    A = sp.random(m, n, density=0.01, random_state=1, format="csr")

    class Covering:
        c = rng.random(n)
        row_lo = np.ones(m)
        row_hi = np.full(m, np.inf)
        col_lo = np.zeros(n)
        col_hi = np.ones(n)
        integrality = np.zeros(n, dtype=np.int8)

    Covering.A = A
    h = highs_model(Covering(), relax=True)
    while h.getRunTime() < 1.5:  # earlier solves add up to more than the next limit
        h.clearSolver()
        assert solve(h).status == "optimal"
    h.clearSolver()  # one more from scratch (a few hundredths of a second) within 1 s
    res = solve(h, SolveOptions(time_limit=1.0))
    assert res.status == "optimal"
