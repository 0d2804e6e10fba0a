"""Capacity planning against hand computations.

Type s = 2, o = 2 (V = 7), linear-kv d0 = 0.5 s, d1 = 0.01 s/token (u = 0.07 s).
One GPU with C = 60 serves x with x(0.5·7 + 60·0.07) = 7.7x ≤ 60: 7.79/s.
One GPU with C = 120: 11.9x ≤ 120: 10.08/s.
"""

from __future__ import annotations

import pytest

from fluidopt.bounds.fluid import FluidType
from fluidopt.deployment import Deployment, TimeModel
from fluidopt.errors import InputError
from fluidopt.fleet import GpuKind, parse_gpus, plan

SMALL = Deployment("small", 60, TimeModel.linear_kv(0.5, 0.01))
BIG = Deployment("big", 120, TimeModel.linear_kv(0.5, 0.01))


@pytest.mark.parametrize(
    ("rate", "big_cost", "counts", "cost"),
    [
        (10, 1.8, [0, 1], 1.8),  # 1 big (1.8) beats 2 small (2.0)
        (10, 2.5, [2, 0], 2.0),  # 2 small (2.0) beat 1 big (2.5)
        (17, 1.8, [1, 1], 2.8),  # 7.79 + 10.08 ≥ 17: 2.8 < 3 small (3.0) < 2 big (3.6)
    ],
)
def test_plan_by_hand(rate: float, big_cost: float, counts: list[int], cost: float) -> None:
    res = plan([FluidType(rate, 2, 2)], [GpuKind(SMALL, 1.0), GpuKind(BIG, big_cost)])
    assert res.status == "optimal"
    assert list(res.counts) == counts and res.cost_per_hour == pytest.approx(cost)
    assert res.routing.sum() == pytest.approx(rate)
    for g in res.to_dict()["gpus"]:
        if g["count"]:
            assert g["kv_in_use_per_gpu"] <= g["capacity"] * (1 + 1e-7)


def test_count_limit_and_latency_target() -> None:
    # at most 1 small GPU and no big one: 10/s does not fit
    res = plan([FluidType(10, 2, 2)], [GpuKind(SMALL, 1.0, 1)])
    assert res.status == "infeasible"
    # L = 2 s on the small kind: Σxu ≤ (1 − 0.5·2/2) y = 0.5 y → x ≤ 7.14 y (tighter than 7.79)
    res = plan([FluidType(10, 2, 2)], [GpuKind(SMALL, 1.0)], latency_target=2.0)
    assert list(res.counts) == [2]
    res = plan([FluidType(15, 2, 2)], [GpuKind(SMALL, 1.0)], latency_target=2.0)
    assert list(res.counts) == [3]  # 15/7.14 = 2.1 → 3, whereas 15/7.79 = 1.93 → 2 without it
    assert list(plan([FluidType(15, 2, 2)], [GpuKind(SMALL, 1.0)]).counts) == [2]


def test_headroom() -> None:
    # 20% headroom: C' = 48, 0.5·7 + 48·0.07 = 6.86 → 7.0/s per GPU, so 7.5/s needs 2
    assert list(plan([FluidType(7.5, 2, 2)], [GpuKind(SMALL, 1.0)], headroom=0.2).counts) == [2]
    assert list(plan([FluidType(7.5, 2, 2)], [GpuKind(SMALL, 1.0)]).counts) == [1]


def test_parse_gpus() -> None:
    kinds = parse_gpus("llama2-7b-a100:2.5:4, llama2-7b-a100-linear:1")
    assert [(k.deployment.name, k.cost_per_hour, k.max_count) for k in kinds] == [
        ("llama2-7b-a100", 2.5, 4),
        ("llama2-7b-a100-linear", 1.0, None),
    ]
    for bad in ("llama2-7b-a100", "llama2-7b-a100:x", "llama2-7b-a100:1:-2", "nosuch:1", ""):
        with pytest.raises(InputError):
            parse_gpus(bad)


def test_derate_scales_the_capacity_row() -> None:
    """Derate 0.5 on the small kind: one GPU carries 0.5 · 60/7.7 = 3.90/s, so 10/s needs
    ⌈2.57⌉ = 3 GPUs (2 without it); the big kind at derate 1 is unchanged."""
    assert list(plan([FluidType(10, 2, 2)], [GpuKind(SMALL, 1.0)], derate=[0.5]).counts) == [3]
    res = plan([FluidType(10, 2, 2)], [GpuKind(SMALL, 1.0), GpuKind(BIG, 1.8)], derate=[0.5, 1.0])
    assert list(res.counts) == [0, 1] and res.to_dict()["gpus"][0]["derate"] == 0.5
    for bad in ([0.0], [1.5], [0.5, 0.5]):
        with pytest.raises(InputError, match="derate"):
            plan([FluidType(10, 2, 2)], [GpuKind(SMALL, 1.0)], derate=bad)
