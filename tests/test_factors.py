"""fluidopt.factors: length samples cut at maximum lengths, their fluid limit, and the
fluid memory curve a table of (λ, M*) pairs implies."""

from __future__ import annotations

import numpy as np
import pytest

from fluidopt.bounds.fluid import FluidArrays, FluidType, fluid_from_arrays
from fluidopt.deployment import load_deployment
from fluidopt.errors import InputError
from fluidopt.factors import (
    crossing_rate,
    fit_fluid_curve,
    fluid_limit,
    linear_kv_deployment,
    sample_arrays,
    truncate_lengths,
    with_engine_mechanics,
    with_poisson_arrivals,
)


def test_filter_drops_requests_over_any_limit() -> None:
    s, o = truncate_lengths(np.array([10, 300, 20, 50]), np.array([40, 10, 700, 60]), max_prompt=199, max_output=499)
    assert s.tolist() == [10, 50] and o.tolist() == [40, 60]
    s, o = truncate_lengths(np.array([10, 300]), np.array([40, 10]), max_total=100)
    assert s.tolist() == [10] and o.tolist() == [40]


def test_clip_takes_the_excess_off_both_in_proportion() -> None:
    """s = 3,000, o = 3,000, max 4,096: 1,904 over, half off each (ceil) → 2,048 + 2,048;
    a request within the limit is unchanged."""
    s, o = truncate_lengths(np.array([3000, 100]), np.array([3000, 50]), max_total=4096, mode="clip")
    assert s.tolist() == [2048, 100] and o.tolist() == [2048, 50]
    assert (s + o <= 4096).all()


def test_truncation_errors() -> None:
    with pytest.raises(InputError, match="every request"):
        truncate_lengths(np.array([10]), np.array([10]), max_total=5)
    with pytest.raises(InputError, match="mode"):
        truncate_lengths(np.array([10]), np.array([10]), mode="cut")


def test_fluid_limit_of_identical_requests_is_that_of_one_type() -> None:
    dep = load_deployment("llama2-7b-a100")
    one = fluid_from_arrays(FluidArrays.build([FluidType(1.0, 512, 20)], dep)).max_stable_scale
    assert fluid_limit(np.full(7, 512), np.full(7, 20), dep) == pytest.approx(one, rel=1e-12)
    arr = sample_arrays(np.full(7, 512), np.full(7, 20), dep)
    assert arr.rate.sum() == pytest.approx(1.0)


def test_fit_recovers_the_curve_and_its_crossing() -> None:
    """Pairs on M = aλ/(1 − bλ) with a = 300, b = 0.0113: the fit returns them, and the
    crossing of C is where the closed form reaches C."""
    lam = np.array([50.0, 60.0, 70.0, 80.0])
    mem = 300 * lam / (1 - 0.0113 * lam)
    a, b, resid = fit_fluid_curve(lam, mem)
    assert a == pytest.approx(300, rel=1e-9) and b == pytest.approx(0.0113, rel=1e-9) and resid < 1e-9
    x = crossing_rate(a, b, 118_784)
    assert a * x / (1 - b * x) == pytest.approx(118_784)
    _, _, bad = fit_fluid_curve(lam, mem * np.array([1.0, 1.2, 1.0, 1.0]))
    assert bad > 0.01


def test_linear_kv_curve_has_a_over_b_equal_to_d0_over_d1() -> None:
    """Under τ = d0 + d1·ΣKV, a = d0·E[V] and b = d1·E[V], so a/b = d0/d1 for any sample,
    and the crossing of C is the fluid limit."""
    dep = linear_kv_deployment("paper", 0.276, 0.0115e-3, 118_784)
    s, o = np.array([10, 40, 200]), np.array([5, 80, 300])
    arr = sample_arrays(s, o, dep)
    a, b = arr.c0 * float(arr.rate @ arr.volume), float(arr.rate @ arr.work)
    assert a / b == pytest.approx(0.276 / 0.0115e-3)
    assert crossing_rate(a, b, 118_784) == pytest.approx(fluid_limit(s, o, dep))


def test_poisson_arrivals_scale_with_the_rate() -> None:
    s, o = np.array([5, 6, 7]), np.array([1, 2, 3])
    slow, fast = with_poisson_arrivals(s, o, 1.0, seed=3), with_poisson_arrivals(s, o, 4.0, seed=3)
    np.testing.assert_allclose(slow.arrival, 4 * fast.arrival)
    assert fast.prompt.tolist() == [5, 6, 7] and fast.output.tolist() == [1, 2, 3]


def test_engine_mechanics_change_the_engine_alone() -> None:
    """Our affine fit under Vidur's replica mechanics: caps, blocks, budget, preemption and
    victim from the preset; time model, capacity and name from ours."""
    ours, vidur = load_deployment("llama2-7b-a100"), load_deployment("llama2-7b-a100-vidur")
    mixed = with_engine_mechanics(ours, vidur)
    assert (mixed.max_batch, mixed.block_size, mixed.token_budget, mixed.preemption, mixed.victim) == (
        128, 16, "padded", "recompute", "latest-arrival")
    assert mixed.max_tokens == vidur.max_tokens
    assert mixed.time == ours.time and mixed.capacity == ours.capacity and mixed.name == ours.name
    assert mixed.iteration_time == ours.iteration_time != vidur.iteration_time
