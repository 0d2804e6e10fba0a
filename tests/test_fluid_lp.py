"""Fluid LP: hand-computed optima, prices by finite differences, Pyomo = CVXPY, LP = Thr*.

Hand instance (linear-kv, d0 = 0.5 s, d1 = 0.01 s/token, C = 60):
    a: s = 2, o = 2, V = 7, u = 0.07; capacity coefficient 0.5·7/60 + 0.07 = 0.128333
    b: s = 1, o = 3, V = 9, u = 0.09; capacity coefficient 0.5·9/60 + 0.09 = 0.165
Tokens per unit of capacity: a 2/0.128333 = 15.584, b 3/0.165 = 18.18, so b is admitted
first. With λ = (5, 5): b uses 5·0.165 = 0.825, a gets 0.175/0.128333 = 1.3636/s;
throughput 15 + 2.7273 = 17.7273; capacity price μ = 15.584, demand[b] price 3 − μ·0.165.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluidopt.bounds.fluid import FluidArrays, FluidType, fluid_benchmark, fluid_lp
from fluidopt.deployment import Deployment, TimeModel

LIN = Deployment("toy", 60, TimeModel.linear_kv(0.5, 0.01))
CA, CB = 0.5 * 7 / 60 + 0.07, 0.5 * 9 / 60 + 0.09


@pytest.mark.parametrize("interface", ["pyomo", "cvxpy"])
def test_two_types_over_capacity(interface: str) -> None:
    r = fluid_lp([FluidType(5, 2, 2, "a"), FluidType(5, 1, 3, "b")], LIN, interface=interface)
    assert r.status == "optimal"
    xa = (1 - 5 * CB) / CA
    assert r.admitted_rates == pytest.approx([xa, 5], rel=1e-7)
    assert r.throughput_tokens_per_s == pytest.approx(15 + 2 * xa, rel=1e-7)
    assert r.duals["capacity"] == pytest.approx(2 / CA, rel=1e-6)
    assert r.duals["demand[1]"] == pytest.approx(3 - 2 / CA * CB, rel=1e-6)
    assert r.duals["demand[0]"] == pytest.approx(0, abs=1e-9)
    assert r.kv_in_use == pytest.approx(60, rel=1e-7)


@pytest.mark.parametrize("interface", ["pyomo", "cvxpy"])
def test_single_type_admits_the_edge_of_the_region(interface: str) -> None:
    """λ = 10 of type a: x = 1/0.128333 = 7.7922, and then M = C exactly."""
    r = fluid_lp([FluidType(10, 2, 2)], LIN, interface=interface)
    assert r.admitted_rates[0] == pytest.approx(1 / CA)
    assert r.shed_rates[0] == pytest.approx(10 - 1 / CA)
    assert r.admitted_rates[0] == pytest.approx(10 * fluid_benchmark([FluidType(10, 2, 2)], LIN).max_stable_scale)


@pytest.mark.parametrize("interface", ["pyomo", "cvxpy"])
def test_latency_and_ttft_targets(interface: str) -> None:
    """No capacity, a: u = 0.07, λ = 5. L = 1.5 s: Σxu ≤ 1 − 0.5·2/1.5 = 1/3 → x = 4.7619;
    ΔT = 0.5/(2/3) = 0.75, latency 2·0.75 = 1.5. F = 0.75 gives the same row. L = 3 s
    (rhs 2/3 → x ≤ 9.52) does not bind."""
    dep = Deployment("nocap", None, TimeModel.linear_kv(0.5, 0.01))
    t = [FluidType(5, 2, 2)]
    r = fluid_lp(t, dep, latency_targets=1.5, interface=interface)
    assert r.admitted_rates[0] == pytest.approx((1 / 3) / 0.07)
    assert r.delta_t == pytest.approx(0.75)
    assert r.duals["latency[0]"] == pytest.approx(2 / 0.07, rel=1e-6)
    r2 = fluid_lp(t, dep, ttft_target=0.75, interface=interface)
    assert r2.admitted_rates[0] == pytest.approx((1 / 3) / 0.07)
    r3 = fluid_lp(t, dep, latency_targets=3.0, interface=interface)
    assert r3.admitted_rates[0] == pytest.approx(5)


@pytest.mark.parametrize("interface", ["pyomo", "cvxpy"])
def test_values_and_fairness(interface: str) -> None:
    # Value 10 per token of type a makes a the better use of capacity: 20/CA > 3/CB.
    r = fluid_lp([FluidType(5, 2, 2), FluidType(5, 1, 3)], LIN, values=[10, 1], interface=interface)
    assert r.admitted_rates[0] == pytest.approx(5)
    assert r.admitted_rates[1] == pytest.approx((1 - 5 * CA) / CB)
    # A floor of 80% of both demands does not fit (5·(CA + CB)·0.8 = 1.173 > 1).
    bad = fluid_lp([FluidType(5, 2, 2), FluidType(5, 1, 3)], LIN, fairness=0.8, interface=interface)
    assert bad.status == "infeasible" and bad.admitted_rates is None
    # A 50% floor on a forces 2.5/s of a; b gets the rest.
    f = fluid_lp([FluidType(5, 2, 2), FluidType(5, 1, 3)], LIN, fairness=[0.5, 0], interface=interface)
    assert f.admitted_rates == pytest.approx([2.5, (1 - 2.5 * CA) / CB])


@pytest.mark.parametrize("interface", ["pyomo", "cvxpy"])
def test_capacity_price_matches_finite_difference(interface: str) -> None:
    types = [FluidType(5, 2, 2), FluidType(5, 1, 3)]
    r = fluid_lp(types, LIN, interface=interface)
    h = 1e-4
    up = fluid_lp(types, LIN, capacity=60 + h, interface=interface).throughput_tokens_per_s
    down = fluid_lp(types, LIN, capacity=60 - h, interface=interface).throughput_tokens_per_s
    assert r.capacity_token_price == pytest.approx((up - down) / (2 * h), rel=1e-5)
    # demand price: one more request/s of b
    bump = fluid_lp([FluidType(5, 2, 2), FluidType(5 + h, 1, 3)], LIN, interface=interface).throughput_tokens_per_s
    assert r.duals["demand[1]"] == pytest.approx((bump - r.throughput_tokens_per_s) / h, rel=1e-5)


type_st = st.tuples(
    st.floats(0.05, 5.0), st.integers(1, 2000), st.integers(1, 500)
)


@settings(max_examples=25, deadline=None)
@given(
    raw=st.lists(type_st, min_size=1, max_size=6),
    d0=st.floats(0.005, 0.05),
    d1=st.floats(1e-8, 1e-5),
    cap=st.integers(5_000, 200_000),
    frac=st.floats(0.05, 1.5),
    latency=st.one_of(st.none(), st.floats(0.5, 100.0)),
)
def test_pyomo_and_cvxpy_agree_and_lp_is_thr_star_inside(raw, d0, d1, cap, frac, latency) -> None:
    """Random instances, rates scaled to `frac` of the region's edge (inside when < 1)."""
    dep = Deployment("r", cap, TimeModel.linear_kv(d0, d1))
    types = [FluidType(r, s, o) for r, s, o in raw]
    arrays = FluidArrays.build(types, dep)
    # skip instances where one request cannot fit on its own
    if float(np.max(arrays.prompt + arrays.output)) > cap:
        return
    kappa = fluid_benchmark(types, dep).max_stable_scale
    types = [FluidType(t.rate * kappa * frac, t.prompt, t.output) for t in types]
    a = fluid_lp(types, dep, interface="pyomo", latency_targets=latency)
    b = fluid_lp(types, dep, interface="cvxpy", latency_targets=latency)
    assert a.status == b.status
    if a.status != "optimal":
        return
    assert b.throughput_tokens_per_s == pytest.approx(a.throughput_tokens_per_s, rel=1e-6, abs=1e-9)
    for k in set(a.duals) & set(b.duals):
        assert b.duals[k] == pytest.approx(a.duals[k], rel=1e-5, abs=1e-6)
    if frac < 0.999 and latency is None:
        assert a.throughput_tokens_per_s == pytest.approx(
            fluid_benchmark(types, dep).throughput_tokens_per_s, rel=1e-7
        )
