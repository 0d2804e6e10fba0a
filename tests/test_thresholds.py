"""WAIT and Nested WAIT threshold programs against hand computations and brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from fluidopt.calibrate import ThresholdInfeasible, solve_wait
from fluidopt.bounds.fluid import FluidArrays
from fluidopt.models import thresholds as th
from fluidopt.solver import solve


def arrays(rate, output, volume, work, c0=0.5, capacity=1000.0) -> FluidArrays:
    m = len(rate)
    return FluidArrays(
        rate=np.array(rate, float), prompt=np.ones(m), output=np.array(output, float),
        volume=np.array(volume, float), work=np.array(work, float), c0=c0, capacity=capacity,
        labels=tuple(f"t{j}" for j in range(m)),
    )


def brute_wait(a: FluidArrays, eps: float, key, cap: int = 40):
    """Every n in {1..cap}^m satisfying keep-up and Σ V n ≤ C; the best by ``key``."""
    best = None
    for n in itertools.product(range(1, cap + 1), repeat=len(a.rate)):
        n = np.array(n)
        dt = a.c0 + float(np.dot(a.work, n))
        if np.any(n < (1 + eps) * a.rate * dt - 1e-9) or np.dot(a.volume, n) > a.capacity:
            continue
        v = key(n)
        if best is None or v < best[0] - 1e-12:
            best = (v, n)
    return best


def test_keep_up_by_hand() -> None:
    """One type, c0 = 0.5, u = 0.1, λ = 2, ε = 0: n ≥ 2(0.5 + 0.1 n) ⇔ 0.8 n ≥ 1 ⇔ n ≥ 2."""
    a = arrays([2.0], [2], [7], [0.1])
    sol = solve_wait(a, objective="memory", epsilon=0.0)
    assert list(sol.thresholds) == [2]
    assert sol.pipeline_memory == 14 and sol.delta_t == pytest.approx(0.7)


@pytest.mark.parametrize("seed", range(4))
def test_memory_ip_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = arrays(rng.uniform(0.5, 3, 3), [2, 3, 5], rng.uniform(5, 30, 3), rng.uniform(0.01, 0.08, 3), capacity=900.0)
    ref = brute_wait(a, 0.05, lambda n: float(np.dot(a.volume, n)))
    if ref is None:
        with pytest.raises(ThresholdInfeasible):
            solve_wait(a, objective="memory", epsilon=0.05)
        return
    sol = solve_wait(a, objective="memory", epsilon=0.05)
    assert sol.pipeline_memory == pytest.approx(ref[0])


@pytest.mark.parametrize("rule", ["paper", "advance"])
@pytest.mark.parametrize("seed", range(3))
def test_latency_milp_at_fixed_cap_matches_brute_force(seed: int, rule: str) -> None:
    """For one cap D the MILP's optimum equals enumeration of the proxy with ρ = λD:
    (Σ_j q_j + Σ_j o_j n_j)/Λ under the paper's rule, (Σ_j q_j + D Σ_j λ_j o_j)/Λ under
    the authors' simulator variant."""
    rng = np.random.default_rng(10 + seed)
    rate, work, vol, out = rng.uniform(0.5, 3, 2), rng.uniform(0.01, 0.05, 2), rng.uniform(5, 30, 2), np.array([3.0, 6.0])
    data = th.WaitData(rate, out, vol, work, 0.5, 2000.0, 0.05, rule=rule)
    D = 1.6
    model = th.build_wait_latency(data, D)
    res = solve(model)
    best = None
    for n in itertools.product(range(1, 60), repeat=2):
        n = np.array(n)
        dt = 0.5 + float(np.dot(work, n))
        if dt > D or np.any(n < 1.05 * rate * dt - 1e-9) or np.any(n <= rate * D) or np.dot(vol, n) > 2000:
            continue
        service = np.dot(out, n) if rule == "paper" else D * np.dot(rate, out)
        v = (sum(th.queue_bound(n, rate * D)) + service) / rate.sum()
        best = v if best is None else min(best, v)
    assert res.status == "optimal" and res.objective == pytest.approx(best, rel=1e-7)


def test_queue_bound_by_hand() -> None:
    # n = 4, ρ = 2: 2·4 + 2/(2·2) = 8.5; n ≤ ρ: unbounded
    assert th.queue_bound(4, 2) == 8.5
    assert math.isinf(th.queue_bound(2, 2))


def test_outside_region_names_reason_and_lp_rates() -> None:
    a = arrays([20.0], [2], [7], [0.1])  # A = 2 ≥ 1
    with pytest.raises(ThresholdInfeasible, match=r"≥ 1.*fluid LP admits rates t0="):
        solve_wait(a, objective="memory")
    # inside the fluid region but the pipeline does not fit: C = 10 < V = 7·2
    b = arrays([2.0], [2], [7], [0.1], capacity=10.0)
    with pytest.raises(ThresholdInfeasible) as exc:
        solve_wait(b, objective="memory", epsilon=0.0)
    assert "C = 10" in str(exc.value) and exc.value.admissible is not None


def test_theta_root_by_hand() -> None:
    """n_prev = 3, n_k = 2, p = 1/2, x = e^θ: (1 + x)³ = 8x² ⇔ (x − 1)(x² − 4x − 1) = 0,
    so θ = ln(2 + √5) = 1.4436."""
    assert th.theta_root(3, 2, 0.5) == pytest.approx(math.log(2 + math.sqrt(5)), rel=1e-10)


def nested_toy(capacity: float = 5000.0) -> th.NestedData:
    """s = 10; lengths 2 (λ 6/s) and 4 (λ 2/s); w(j) = 0.01 s; c0 = 0.1 s."""
    return th.NestedData(
        prompt=10, lengths=np.array([2, 4]), rates=np.array([6.0, 2.0]), stage_work=np.full(4, 0.01),
        c0=0.1, capacity=capacity, epsilon=0.0, delta=0.1, horizon=100.0,
    )


def test_nested_accounting_by_hand() -> None:
    """Segments (1..2), (3..4), n = (3, 2): p_2 = 2/8 = 0.25 < 2/3 < 1.
    Base memory 3·(11 + 12) + 2·(13 + 14) = 123; ΔT = 0.1 + 0.01·(2·3 + 2·2) = 0.2 ≤ 3/8.
    Buffer (10 + 2)·(2 + ln(2·(1 + 100/0.1)/0.1)/θ) with θ the root for (3, 2, 0.25)."""
    d = nested_toy()
    plan = th.evaluate_nested(d, [2, 4], [3, 2])
    assert plan.feasible and plan.base_memory == 123 and plan.delta_t == pytest.approx(0.2)
    theta = th.theta_root(3, 2, 0.25)
    assert math.exp(-theta * 2) * (0.75 + 0.25 * math.exp(theta)) ** 3 == pytest.approx(1.0)
    assert plan.buffer == pytest.approx(12 * (2 + math.log(2 * 1001 / 0.1) / theta))
    bad = th.evaluate_nested(d, [2, 4], [3, 3])
    assert not bad.feasible and "p_k < n_k/n_(k-1) < 1" in bad.reason


def test_nested_search_matches_brute_force() -> None:
    d = th.NestedData(
        prompt=10, lengths=np.array([2, 4, 7]), rates=np.array([6.0, 3.0, 1.0]), stage_work=np.full(7, 0.004),
        c0=0.1, capacity=3000.0, epsilon=0.05, delta=0.1, horizon=100.0,
    )
    plan = th.nested_search(d, [2, 4], max_segments=3)
    best = None
    for bounds in ([7], [2, 7], [4, 7], [2, 4, 7]):
        for n in itertools.product(range(1, 30), repeat=len(bounds)):
            p = th.evaluate_nested(d, bounds, n)
            if p.feasible and (best is None or p.total_memory < best.total_memory):
                best = p
    assert plan.total_memory == pytest.approx(best.total_memory)


def test_nested_best_fixed_boundaries_matches_brute_force() -> None:
    """Boundaries fixed at (2, 7) and (2, 4, 7): the exact plan equals the best of an
    exhaustive scan of thresholds checked by evaluate_nested; p_k = 1 gives None."""
    d = th.NestedData(
        prompt=10, lengths=np.array([2, 4, 7]), rates=np.array([6.0, 3.0, 1.0]), stage_work=np.full(7, 0.004),
        c0=0.1, capacity=3000.0, epsilon=0.05, delta=0.1, horizon=100.0,
    )
    for bounds in ([2, 7], [2, 4, 7]):
        plan = th.nested_best(d, bounds)
        best = None
        for n in itertools.product(range(1, 30), repeat=len(bounds)):
            p = th.evaluate_nested(d, bounds, n)
            if p.feasible and (best is None or p.total_memory < best.total_memory):
                best = p
        assert plan is not None and plan.boundaries == bounds
        assert plan.total_memory == pytest.approx(best.total_memory)
    assert th.nested_best(d, [1, 7]) is None  # nobody finishes in iteration 1: p_2 = 1


def test_nested_infeasible_says_why() -> None:
    with pytest.raises(Exception, match="no Nested WAIT configuration fits"):
        th.nested_search(nested_toy(capacity=50.0), [2])


def test_practical_rule_by_hand() -> None:
    """Lengths 20 (0.7) and 50 (0.3), L = 2 → cuts 25, 50; p_2 = 0.3, q_2 = 0.35;
    tl = 135 = n_1 (25 + 25·0.35) → n_1 = 4, n_2 = round(1.4) = 1."""
    d = th.NestedData(
        prompt=512, lengths=np.array([20, 50]), rates=np.array([0.7, 0.3]) * 20, stage_work=np.full(50, 1e-3),
        c0=0.01, capacity=118784.0,
    )
    plan = th.practical_rule(d, 135, 2)
    assert plan.boundaries == [25, 50] and plan.thresholds == [4, 1]
    assert plan.continue_prob[1] == pytest.approx(0.3)


def test_paper_rule_needs_the_full_pipeline() -> None:
    """Σ V_j = 700 + 900 > C = 1000: no thresholds under the paper's rule (every stage stays
    full); the authors' variant with the chance row finds some."""
    a = arrays([0.5, 0.5], [20, 30], [700, 900], [0.001, 0.001], c0=0.01)
    with pytest.raises(ThresholdInfeasible, match="even at n = 1"):
        solve_wait(a, objective="latency", rule="paper")
    from fluidopt.errors import InputError

    with pytest.raises(InputError, match="--rule advance"):
        solve_wait(a, objective="latency", rule="paper", memory_rule="chance", stage_sq=np.array([1e4, 1e4]))
    sol = solve_wait(a, objective="latency", rule="advance", stage_sq=np.array([1e4, 2e4]))
    assert sol.memory_rule == "chance" and list(sol.thresholds) == [1, 1]
