"""The profile-based time model and the Vidur-compatible preset."""

from __future__ import annotations

import math

import pytest

from fluidopt.deployment import load_deployment
from fluidopt.errors import InputError
from fluidopt.executor.engine import simulate
from fluidopt.executor.timing import ProfileTime

SPEC = {
    "layers": 2,
    "token_round": 8,
    "kv_round": 64,
    "linear_ops_ms": {"tokens": [1, 8, 16], "ms": [1.0, 2.0, 4.0]},
    "attention_ms_per_layer": {"prefill": {"p1": 0.5, "p2": 0.25, "p3": 0.125}, "decode": {"d1": 1.0, "d2": 0.5}},
}


def test_profile_time_by_hand() -> None:
    pt = ProfileTime(SPEC)
    # 9 new tokens → 16 (rounded up to 8): 4 ms per layer × 2 layers
    assert pt.linear_ops(9) == pytest.approx(0.008)
    assert pt.linear_ops(4) == pytest.approx(2 * (1.0 + (8 - 1) * (2.0 - 1.0) / 7) / 1000)  # 4 → 8
    # past the table: slope of the last segment (0.25 ms per token per layer), 24 → 4 + 2
    assert pt.linear_ops(20) == pytest.approx(2 * 6.0 / 1000)
    # decode: 2 members with 100 cached tokens: mean 50 → 64; 1·2 + 0.5·2·64 = 66 ms per layer
    # prefill: chunks 3 and 4 → c = round(√25) = 5 after Σkv 64 (rounded by the caller):
    #   0.5·5 + 0.25·25 + 0.125·5·64 = 48.75 ms per layer
    # new tokens 2 + 7 = 9 → 16 → 4 ms per layer
    tau = pt.tau(new_tokens=9, n_dec=2, dec_kv=100, pf_kv=64, pf_chunk_sq=25)
    assert tau == pytest.approx(2 * (4.0 + 66.0 + 48.75) / 1000)
    assert pt.round_kv(1) == 64 and pt.round_kv(64) == 64 and pt.round_kv(65) == 128


def test_bad_profile_table_is_an_input_error() -> None:
    from fluidopt.deployment import Deployment

    dep = load_deployment("llama2-7b-a100-vidur")
    bad = {**SPEC, "linear_ops_ms": {"tokens": [8, 1], "ms": [1.0, 2.0]}}
    with pytest.raises(InputError, match="profile_time"):
        Deployment.from_dict({**dep.to_dict(), "profile_time": bad})
    with pytest.raises(InputError, match="needs a profile_time"):
        dep.with_settings(profile_time=None)


def test_preset_is_vidurs_configuration() -> None:
    dep = load_deployment("llama2-7b-a100-vidur")
    assert dep.capacity == 7_424 * 16 and dep.max_batch == 128 and dep.max_tokens == 4096
    assert dep.engine_settings == {"block_size": 16, "token_budget": "padded", "preemption": "recompute",
                                   "victim": "latest-arrival", "iteration_time": "profile"}
    assert dep.cpu_overhead is not None and dep.cpu_overhead["included"] is False
    # the profile model against the components it was built from: a decode step of 64
    # sequences at 1,024 cached tokens, 32 layers
    pt = ProfileTime(dep.profile_time)
    a = dep.profile_time["attention_ms_per_layer"]["decode"]
    expect = pt.linear_ops(64) + 32 * (a["d1"] * 64 + a["d2"] * 64 * 1024) / 1000
    assert pt.tau(64, 64, 64 * 1024, 0, 0) == pytest.approx(expect)
    held = dep.provenance["heldout_error"]
    assert set(held) == {"linear_ops", "decode_attention", "prefill_attention"}


@pytest.mark.parametrize("policy", ["vllm", "sarathi"])
def test_preset_runs_vidurs_workload(policy: str) -> None:
    from fluidopt.traces import load_workload

    w = load_workload("vidur-conv", requests=400)
    res = simulate(w, load_deployment("llama2-7b-a100-vidur"), policy, event_log=True)
    assert res.time_model == "profile" and res.summary()["unfinished"] == 0
    ev = res.events
    assert (ev["batch"] <= 128).all() and (ev["kv"] % 16 == 0).all()
    # the CPU overhead switched on makes every iteration longer by c0 + c_seq·B
    dep = load_deployment("llama2-7b-a100-vidur").with_cpu_overhead(True)
    res2 = simulate(w, dep, policy)
    assert res2.summary()["mean_latency"] > res.summary()["mean_latency"]
    assert not math.isnan(res.summary()["mean_ttft"])
