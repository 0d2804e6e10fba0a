"""Trace-scale lower bounds (mean busy time, Lagrangian) never exceed the optimum.

Optima come from the time-indexed MIP (``fluidopt.tct.solve_tct``, HiGHS) on tiny
instances, and every bound must also stay below the Σ c of executor runs and of list
schedules (replayed through the executor) on larger ones.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fluidopt.bounds.checker import check_schedule
from fluidopt.bounds.lagrangian import RampDual, dual_value, lagrangian_bound
from fluidopt.bounds.mean_busy_time import mean_busy_time_bound, ramp_offsets, shortest_volume_first
from fluidopt.bounds.ramp import memory_load, ramp_instance
from fluidopt.bounds.tct import volume_bound_arrays
from fluidopt.deployment import unit_deployment
from fluidopt.errors import InputError
from fluidopt.executor.engine import simulate
from fluidopt.executor.policy import make_policy
from fluidopt.search.list_schedule import priority_order, serial_schedule
from fluidopt.tct import solve_tct
from fluidopt.workload import Workload

#: few price-search iterations keep the tests fast; any prices give a valid bound
QUICK = {"temperatures": (3.0, 0.3), "iterations": 15}


def wl(arrival, prompt, output) -> Workload:
    return Workload.from_frame(pd.DataFrame({"arrival": arrival, "prompt": prompt, "output": output}))


def random_instance(rng: np.random.Generator, family: str, n: int, spread: bool):
    """(arrival, prompt, output, capacity) of one small instance of a family.

    Families: ``random``; ``identical`` (n copies of one request); ``huge`` (one request
    with s + o = C among small ones); ``tight`` (C = max peak, or one more).
    """
    if family == "identical":
        s = np.full(n, rng.integers(1, 6))
        o = np.full(n, rng.integers(1, 7))
    else:
        s = rng.integers(1, 7, n)
        o = rng.integers(1, 7, n)
    if spread:
        a = np.sort(rng.integers(0, 2 * n + 1, n))
    else:
        a = np.zeros(n, dtype=np.int64)
    peak = int((s + o).max())
    if family == "huge":
        C = peak + int(rng.integers(0, 6))
        j = int(rng.integers(n))
        o[j] = max(1, C - int(s[j]))
        s[j] = C - o[j]
    elif family == "tight":
        C = peak + int(rng.integers(0, 2))
    else:
        C = peak + int(rng.integers(0, 9))
    return a.astype(np.int64), s.astype(np.int64), o.astype(np.int64), int(C)


FAMILIES = ("random", "identical", "huge", "tight")


def test_ramp_offset_is_completion_minus_mean_busy_time() -> None:
    """c_i = M_i + δ_i with M_i computed round by round from the ramp."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        s, o, t = int(rng.integers(1, 500)), int(rng.integers(1, 300)), int(rng.integers(0, 50))
        r = np.arange(t + 1, t + o + 1)
        m = s + r - t
        busy = float(np.sum((r - 0.5) * m) / m.sum())
        assert busy + ramp_offsets(np.array([s]), np.array([o]))[0] == pytest.approx(t + o, rel=1e-12)


def test_mean_busy_time_hand_computed() -> None:
    """Three requests at 0 with s = 1, o = 2 (V = 5 each), C = 5.

    The machine of speed 5 serves them in [0, 1], [1, 2], [2, 3]: M = 0.5, 1.5, 2.5.
    μ = (1·2 + 2·3)/5 = 1.6 and δ = 2 + 0.5 − 1.6 = 0.9, so the bound is
    ⌈4.5 + 2.7⌉ = 8; the optimum is 9 (``tests/conftest.py::small``) and the volume
    bound 7.
    """
    bound, info = mean_busy_time_bound([0, 0, 0], [1, 1, 1], [2, 2, 2], 5)
    assert info["sum_mean_busy"] == pytest.approx(4.5)
    assert info["sum_offsets"] == pytest.approx(2.7)
    assert bound == 8
    assert volume_bound_arrays(np.zeros(3, dtype=np.int64), np.ones(3), np.full(3, 2), 5) == 7


def test_shortest_volume_first_preempts_for_a_smaller_arrival() -> None:
    """Rate 2: job A (volume 10) at 0, job B (volume 2) at 1: A runs [0, 1], B [1, 2],
    A [2, 6]. M_A = (2·0.5 + 8·4)/10 = 3.3, M_B = 1.5."""
    pieces = shortest_volume_first(np.array([0.0, 1.0]), np.array([10.0, 2.0]), 2.0)
    np.testing.assert_allclose(pieces.mean_busy_times(np.array([10.0, 2.0])), [3.3, 1.5])
    assert pieces.makespan == pytest.approx(6.0)


def brute_force_dual(a, s, o, C, lam) -> float:
    """L(λ) by enumerating every start epoch of every request, round by round."""
    R = lam.shape[0]
    total = 0.0
    for ai, si, oi in zip(a, s, o):
        best = math.inf
        for t in range(int(ai), max(int(ai), R) + 1):
            cost = t + oi + sum(lam[r - 1] * (si + r - t) for r in range(t + 1, t + oi + 1) if r <= R)
            best = min(best, cost)
        total += best
    return total - C * float(lam.sum())


def test_dual_value_matches_enumeration() -> None:
    rng = np.random.default_rng(1)
    for _ in range(30):
        a, s, o, C = random_instance(rng, "random", int(rng.integers(1, 6)), bool(rng.integers(2)))
        R = int(rng.integers(1, 25))
        lam = rng.exponential(0.3, R) * (rng.random(R) < 0.7)
        point = dual_value(RampDual(ramp_instance(a, s, o, C), R), lam)
        assert point.value == pytest.approx(brute_force_dual(a, s, o, C, lam), rel=1e-9, abs=1e-9)
        assert point.value - 1 < point.bound <= math.ceil(point.value)  # Σ c_i is an integer
        assert np.all(point.starts >= a)


def test_smoothed_dual_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(2)
    a, s, o, C = random_instance(rng, "random", 5, True)
    dual = RampDual(ramp_instance(a, s, o, C), 12)
    lam = rng.exponential(0.2, 12)
    _, _, value, grad = dual.evaluate(lam, tau=0.7)
    h = 1e-6
    for r in range(12):
        up = lam.copy()
        up[r] += h
        assert (dual.evaluate(up, tau=0.7)[2] - value) / h == pytest.approx(grad[r], rel=1e-4, abs=1e-4)


def test_lagrangian_time_limit_returns_a_valid_bound() -> None:
    rng = np.random.default_rng(3)
    a, s, o, C = random_instance(rng, "random", 6, False)
    bound, info = lagrangian_bound(a, s, o, C, time_limit=0.0)
    assert info["stopped"] == "time_limit"
    assert info["evaluations"] >= 1
    assert float(np.sum(a + o)) <= bound <= solve_tct(wl(a, s, o), C, backend="highs", executor=False, gap=0.0, mip_start=False).objective_tct


def test_bad_input_is_an_input_error() -> None:
    with pytest.raises(InputError, match="more than the capacity"):
        lagrangian_bound([0], [5], [6], 10)
    with pytest.raises(InputError, match="prompt must be an integer"):
        mean_busy_time_bound([0], [1.5], [2], 10)
    with pytest.raises(InputError, match="differ in length"):
        mean_busy_time_bound([0, 1], [1], [2], 10)


@pytest.mark.parametrize("chunk", range(5))
def test_bounds_never_exceed_the_proven_optimum(chunk: int) -> None:
    """100 instances per chunk (500 in all): every family, both arrival models, n ≤ 6."""
    rng = np.random.default_rng(1000 + chunk)
    for k in range(100):
        family = FAMILIES[k % len(FAMILIES)]
        spread = bool((k // len(FAMILIES)) % 2)
        a, s, o, C = random_instance(rng, family, int(rng.integers(1, 7)), spread)
        # no MIP start: with one, HiGHS can stop "optimal" with a dual bound below its
        # incumbent (e.g. a = 0,0,0, s = 6,5,2, o = 5,5,4, C = 19), leaving a gap
        opt = solve_tct(wl(a, s, o), C, backend="highs", executor=False, gap=0.0, mip_start=False)
        assert opt.status == "optimal", (a, s, o, C)
        mbt, _ = mean_busy_time_bound(a, s, o, C)
        lag, info = lagrangian_bound(a, s, o, C, **QUICK)
        assert mbt <= opt.objective_tct, (family, a, s, o, C)
        assert float(np.sum(a + o)) <= lag <= opt.objective_tct, (family, a, s, o, C)
        inst = ramp_instance(a, s, o, C)
        starts = serial_schedule(inst, priority_order(info["starts"], inst.volume))
        assert float(np.sum(starts + o)) >= opt.objective_tct


@pytest.mark.parametrize("spread", [False, True])
def test_bounds_below_executor_and_list_schedules(spread: bool) -> None:
    """Larger instances (n = 20–60): bounds ≤ MC-SF's Σ c and ≤ a replayed list schedule."""
    rng = np.random.default_rng(7 + spread)
    for _ in range(8):
        n = int(rng.integers(20, 61))
        s = rng.integers(1, 200, n)
        o = rng.integers(1, 120, n)
        a = np.sort(rng.integers(0, 3 * n, n)) if spread else np.zeros(n, dtype=np.int64)
        C = int((s + o).max() * rng.uniform(1.0, 4.0))
        w = wl(a, s, o)
        run = simulate(w, unit_deployment(C), make_policy("mc-sf"), capacity=C)
        policy_tct = float(run.summary()["tct"])
        mbt, _ = mean_busy_time_bound(a, s, o, C)
        lag, info = lagrangian_bound(a, s, o, C, **QUICK)
        inst = ramp_instance(a, s, o, C)
        starts = serial_schedule(inst, priority_order(info["starts"], inst.volume))
        check = check_schedule(w, C, starts)
        assert check.accepted, check.problems
        assert max(mbt, lag) <= min(policy_tct, check.tct_executor)
        assert memory_load(starts, s, o, int((starts + o).max())).max() <= C


def test_warm_start_from_earlier_prices_never_loses() -> None:
    rng = np.random.default_rng(11)
    a, s, o, C = random_instance(rng, "random", 6, True)
    first, info = lagrangian_bound(a, s, o, C, temperatures=(3.0,), iterations=5)
    again, _ = lagrangian_bound(a, s, o, C, prices=info["prices"], temperatures=(0.3,), iterations=5)
    assert first <= again
