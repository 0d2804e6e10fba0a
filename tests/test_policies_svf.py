"""SVF and 1-bit SVF: volume order, MC-SF's admission check, overflow-freedom."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fluidopt.deployment import unit_deployment
from fluidopt.errors import InputError
from fluidopt.executor.engine import simulate
from fluidopt.executor.policies.svf import projected_volume
from fluidopt.executor.policy import make_policy
from fluidopt.generators import kv_synthetic
from fluidopt.workload import Workload


def _w(rows: list[tuple[float, int, int]]) -> Workload:
    return Workload.from_frame(pd.DataFrame(rows, columns=["arrival", "prompt", "output"]))


def test_projected_volume_is_the_system_model_volume() -> None:
    assert projected_volume(np.array([3, 20]), np.array([2, 3])).tolist() == [2 * 3 + 3, 3 * 20 + 6]


def test_svf_orders_by_volume_where_mcsf_orders_by_length() -> None:
    """A: s = 1, o = 10 (V = 65); B: s = 20, o = 3 (V = 66). With C = 23 both cannot run
    together (at k = 2: 3 + 22 = 25 > 23). H-SF (shortest output) starts B first; SVF
    (smallest volume) starts A first and B when A completes at round 10."""
    w = _w([(0, 1, 10), (0, 20, 3)])
    svf = simulate(w, unit_deployment(), "svf", capacity=23).records
    hsf = simulate(w, unit_deployment(), "h-sf", capacity=23).records
    assert svf["start"].tolist() == [0.0, 10.0]
    assert hsf["start"].tolist() == [3.0, 0.0]


def test_one_bit_svf_uses_only_the_class_lengths() -> None:
    """θ = 5, bounds: A (o = 10) is long (õ = L = 10), B and C are short (õ = 5); order by
    the projected volumes 1·10 + 55 = 65 (A), 20·5 + 15 = 115 (B), 2·5 + 15 = 25 (C)."""
    w = _w([(0, 1, 10), (0, 20, 3), (0, 2, 4)])
    pol = make_policy("svf-1bit", threshold=5, projection="bound")
    res = simulate(w, unit_deployment(), pol, capacity=24)
    assert res.params == {"threshold": 5, "projection": "bound", "short_length": 5, "long_length": 10}
    starts = res.records["start"].tolist()
    assert starts[2] == 0.0  # C first (smallest projected volume)
    assert starts[0] <= starts[1]  # then A before B
    assert int(res.records["evictions"].sum()) == 0
    with pytest.raises(InputError, match="below the longest output"):
        simulate(w, unit_deployment(), make_policy("svf-1bit", projection="bound", long_length=3), capacity=24)
    # class means (the default): short {3, 4} → 4, long {10} → 10
    mean = simulate(w, unit_deployment(), "svf-1bit", capacity=24)
    assert mean.params == {"threshold": 4, "projection": "mean", "short_length": 4, "long_length": 10}


@pytest.mark.parametrize(("name", "params"), [("svf", {}), ("svf-1bit", {"projection": "bound"})])
def test_never_evicts_with_upper_bound_lengths_on_kv_synthetic(name: str, params: dict) -> None:
    for seed in range(10):
        w, cap = kv_synthetic(2, seed)
        res = simulate(w, unit_deployment(), make_policy(name, **params), capacity=cap)
        assert int(res.records["evictions"].sum()) == 0 and bool(res.records["finished"].all())
