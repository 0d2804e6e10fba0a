"""Closed forms of the fluid benchmark, checked against hand computations.

Reference instance (linear-kv, d0 = 0.5 s, d1 = 0.01 s/token, C = 60 tokens):

    type 1: s = 2, o = 2 → V = 2·2 + 2·3/2 = 7,  u = 0.07 s, λ = 2/s
    type 2: s = 1, o = 3 → V = 3·1 + 3·4/2 = 9,  u = 0.09 s, λ = 4/s
    A = 2·0.07 + 4·0.09 = 0.5,  ΔT* = 0.5 / (1 − 0.5) = 1 s
    n* = (2, 4), N* = (4, 12), M* = 1·(2·7 + 4·9) = 50 tokens, Thr* = 2·2 + 4·3 = 16 tok/s
    max scale κ = C / (d0·W + C·A) = 60 / (0.5·50 + 60·0.5) = 12/11
    (check: A = 6/11, ΔT = 0.5/(5/11) = 1.1, M = 1.1·50·12/11 = 60 = C)
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fluidopt.bounds.fluid import (
    FluidArrays,
    FluidType,
    fluid_benchmark,
    fluid_from_arrays,
    parse_types,
    volume,
    wait_paper_volume,
)
from fluidopt.deployment import Deployment, TimeModel
from fluidopt.errors import InputError


@pytest.fixture
def lin() -> Deployment:
    return Deployment("toy", 60, TimeModel.linear_kv(0.5, 0.01))


TYPES = [FluidType(2, 2, 2, "a"), FluidType(4, 1, 3, "b")]


def test_closed_forms_by_hand(lin: Deployment) -> None:
    b = fluid_benchmark(TYPES, lin)
    assert b.stable and b.reason == ""
    assert b.load == pytest.approx(0.5)
    assert b.delta_t == pytest.approx(1.0)
    assert b.n_per_stage == pytest.approx([2, 4])
    assert b.n_in_service == pytest.approx([4, 12])
    assert b.kv_in_use == pytest.approx(50)
    assert b.throughput_tokens_per_s == pytest.approx(16)
    assert b.throughput_requests_per_s == pytest.approx(6)
    assert b.latency == pytest.approx([2, 3])
    assert b.max_stable_scale == pytest.approx(12 / 11)


def test_outside_region_by_memory_and_by_load(lin: Deployment) -> None:
    # C = 40 < M* = 50: outside by memory; κ = 40 / (25 + 20) = 8/9.
    b = fluid_benchmark(TYPES, lin, capacity=40)
    assert not b.stable and "exceeds the capacity" in b.reason
    assert b.max_stable_scale == pytest.approx(8 / 9)
    # Doubling the rates gives A = 1: the server cannot keep up at all.
    b2 = fluid_benchmark([FluidType(4, 2, 2), FluidType(8, 1, 3)], lin)
    assert not b2.stable and "≥ 1" in b2.reason and math.isinf(b2.delta_t)


def test_max_scale_is_the_edge_of_the_region(lin: Deployment) -> None:
    """Bisection on the stable test (an independent route) finds the same κ."""
    arrays = FluidArrays.build(TYPES, lin)
    lo, hi = 0.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        scaled = FluidArrays(**{**arrays.__dict__, "rate": arrays.rate * mid})
        lo, hi = (mid, hi) if fluid_from_arrays(scaled).stable else (lo, mid)
    assert lo == pytest.approx(fluid_benchmark(TYPES, lin).max_stable_scale, rel=1e-9)


def test_no_capacity_scale_is_one_over_load() -> None:
    dep = Deployment("nocap", None, TimeModel.linear_kv(0.5, 0.01))
    b = fluid_benchmark(TYPES, dep)
    assert b.stable and b.max_stable_scale == pytest.approx(2.0)


def test_affine_marginal_work_enters_delta_t() -> None:
    """Affine: s = 2, o = 2, c_seq = 0.01, c_kv = 0.001, c_new = 0.002, c_pf2 = 1e-4:
    u = 2·0.01 + 0.001·7 + 0.002·(2 + 1) + 1e-4·4 = 0.0334 s; λ = 10 → A = 0.334,
    ΔT* = 0.1 / 0.666 s, M* = ΔT*·10·7."""
    dep = Deployment("aff", 1000, TimeModel("affine", 0.1, c_seq=0.01, c_kv=0.001, c_new=0.002, c_pf2=1e-4))
    b = fluid_benchmark([FluidType(10, 2, 2)], dep)
    assert b.load == pytest.approx(0.334)
    assert b.delta_t == pytest.approx(0.1 / 0.666)
    assert b.kv_in_use == pytest.approx(0.1 / 0.666 * 70)


def test_wait_paper_convention_mapping() -> None:
    """[WAIT] p512d20: (l'+1)(l + l'/2) = 21·522 = 10,962; ours 20·512 + 20·21/2 = 10,450;
    the difference is exactly the paper's separate prefill iteration holding l = 512."""
    assert wait_paper_volume(512, 20) == 10962
    assert volume(512, 20) == 10450
    s, o = np.array([1, 10, 512, 7]), np.array([1, 3, 20, 1000])
    assert np.allclose(wait_paper_volume(s, o) - s, volume(s, o))
    # linear-kv: u = d1·V in our convention
    dep = Deployment("w", 10**6, TimeModel.linear_kv(0.2, 1e-5))
    assert FluidArrays.build([FluidType(1, 512, 20)], dep).work[0] == pytest.approx(1e-5 * 10450)


def test_parse_types() -> None:
    ts = parse_types("22:512:20, 3.5:100:7")
    assert [(t.rate, t.prompt, t.output) for t in ts] == [(22, 512, 20), (3.5, 100, 7)]
    for bad in ("22:512", "a:1:2", "", "1:0:3", "-1:5:5"):
        with pytest.raises(InputError):
            parse_types(bad)


def test_to_dict_is_json_safe(lin: Deployment) -> None:
    d = fluid_benchmark([FluidType(4, 2, 2), FluidType(8, 1, 3)], lin).to_dict()
    assert d["delta_t"] is None and d["kv_in_use"] is None and d["types"][0]["n_per_stage"] is None
