"""Baseline policies on hand-worked examples (unit-time model, one round per iteration).

Notation: ``t`` decision epoch, ``fp`` footprint after the round, ``KV`` the
end-of-round sum. "projected" = the policy's admission test value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from fluidopt.deployment import Deployment, TimeModel, unit_deployment
from fluidopt.errors import InputError
from fluidopt.executor.engine import simulate
from fluidopt.executor.policy import make_policy
from fluidopt.workload import Workload


def wl(rows: list[tuple[float, int, int]], **extra: Any) -> Workload:
    frame = pd.DataFrame(rows, columns=["arrival", "prompt", "output"])
    for k, v in extra.items():
        frame[k] = v
    return Workload.from_frame(frame, name="hand")


def run(policy: str, w: Workload, capacity: int, **params: Any) -> Any:
    max_iterations = params.pop("max_iterations", None)
    return simulate(
        w, unit_deployment(), make_policy(policy, **params), capacity=capacity, event_log=True, max_iterations=max_iterations
    )


# A (s 2, o 3, t 0), B (s 3, o 2, t 0), Q (s 2, o 2, t 1)
THREE = [(0, 2, 3), (0, 3, 2), (1, 2, 2)]


def test_fcfs_hand_example() -> None:
    """C = 10.

        t=0: admit A (0 + 3), B (3 + 4 = 7 ≤ 10)      round 1: A 3, B 4       KV 7
        t=1: Q: 7 + 2 growth + 3 = 12 > 10, wait     round 2: A 4, B 5       KV 9, B done (2)
        t=2: Q: 4 + 1 + 3 = 8 ≤ 10, admit; A runs    round 3: A 5 done (3), Q 3   KV 8
        t=3:                                          round 4: Q 4 done (4)   KV 4
    """
    res = run("fcfs", wl(THREE), 10)
    assert res.records["completion"].tolist() == [3.0, 2.0, 4.0]
    assert res.events["kv"].tolist() == [7, 9, 8, 4]
    assert res.events["batch"].tolist() == [2, 2, 2, 1]


def test_fcfs_evicts_most_recently_admitted() -> None:
    """Two requests s 2, o 2 at 0, C = 7: both admitted (3 + 3 = 6 ≤ 7, no future check);
    round 2 would hold 4 + 4 = 8 > 7, so the later admission (request 1) is evicted,
    losing its token 1; request 0 completes at 2, request 1 reruns in rounds 3–4."""
    res = run("fcfs", wl([(0, 2, 2), (0, 2, 2)]), 7)
    assert res.records["completion"].tolist() == [2.0, 4.0]
    assert res.records["wasted_tokens"].tolist() == [0, 1]


def test_vllm_prefills_first_and_pauses_decodes() -> None:
    """Same requests, C = 10, watermark 0.1 → admission limit 9.

        t=0: admit A (3), B (3 + 4 = 7 ≤ 9); prefill-only round   round 1: A 3, B 4   KV 7
        t=1: Q: 7 + 3 = 10 > 9, decode A, B                     round 2: A 4, B 5   KV 9, B done (2)
        t=2: Q: 4 + 3 = 7 ≤ 9 → prefill-only round, A paused     round 3: A 4, Q 3   KV 7
        t=3: decode A, Q                                          round 4: A 5, Q 4   KV 9, both done (4)
    A completes at 4, one round later than under FCFS (paused for Q's prefill).
    """
    res = run("vllm", wl(THREE), 10, watermark=0.1)
    rec = res.records
    assert rec["completion"].tolist() == [4.0, 2.0, 4.0]
    assert rec["first_token"].tolist() == [1.0, 1.0, 3.0]
    assert rec["first_admitted"].tolist() == [0.0, 0.0, 2.0]
    assert res.events["batch"].tolist() == [2, 2, 1, 2]
    assert res.events["kv"].tolist() == [7, 9, 7, 9]


def test_vllm_max_batch_parameter() -> None:
    """max_batch 1: A alone (rounds 1–3), then B (4–5), then Q (6–7)."""
    res = run("vllm", wl(THREE), 100, max_batch=1)
    assert res.records["completion"].tolist() == [3.0, 5.0, 7.0]


def test_sarathi_chunks_and_budget() -> None:
    """A (s 4, o 2, t 0), B (s 1, o 2, t 0); chunk 2, token budget 3, C = 20, watermark 0.

        t=0: no decodes; admit A with chunk min(4, 2, 3) = 2 (budget left 1), B with
             chunk 1 (budget 0)                   round 1: A fp 2, B fp 2 (token 1)   N 3
        t=1: decode B (budget 3 − 1 = 2), continue A with chunk 2
                                                  round 2: B fp 3 done (2); A fp 5 (token 1)  N 3
        t=2: decode A                             round 3: A fp 6 done (3)            N 1
    """
    res = run("sarathi", wl([(0, 4, 2), (0, 1, 2)]), 20, chunk_size=2, token_budget=3, watermark=0.0)
    rec = res.records
    assert rec["first_token"].tolist() == [2.0, 1.0]
    assert rec["completion"].tolist() == [3.0, 2.0]
    assert res.events["new_tokens"].tolist() == [3, 3, 1]
    assert res.events["kv"].tolist() == [4, 8, 6]


def test_sarathi_uses_deployment_chunk_and_token_cap() -> None:
    """Deployment chunk_size 2 and max_tokens 2: one request s 5, o 1 is prefilled in
    chunks 2, 2, 1 over three iterations and completes with the third."""
    dep = Deployment("chunky", 50, TimeModel.unit(), max_tokens=2, chunk_size=2)
    res = simulate(wl([(0, 5, 1)]), dep, "sarathi", event_log=True)
    assert res.events["new_tokens"].tolist() == [2, 2, 1]
    assert res.records["completion"].tolist() == [3.0]
    assert make_policy("sarathi").params()["chunk_size"] == 512


def test_sf_orders_by_true_output_without_prediction() -> None:
    """A (s 1, o 4), B (s 1, o 1), Q (s 1, o 2), all at 0, C = 5. Order B, Q, A.

        t=0: B (2), Q (2 + 2 = 4), A: 4 + 2 = 6 > 5 stop   round 1: B 2 done (1), Q 2   KV 4
        t=1: A: 2 + 1 + 2 = 5 ≤ 5 admit                      round 2: Q 3 done (2), A 2   KV 5
        t=2..4: A alone                                       A done at 5
    """
    res = run("sf", wl([(0, 1, 4), (0, 1, 1), (0, 1, 2)]), 5)
    assert res.records["completion"].tolist() == [5.0, 1.0, 2.0]
    assert res.records["evictions"].sum() == 0


def test_sf_follows_the_prediction_and_can_overflow() -> None:
    """Same requests with wrong point predictions õ = (1, 5, 6): order A, B, Q.

        t=0: A (2), B (4), Q: 6 > 5 stop              round 1: A 2, B 2 done (1)   KV 4
        t=1: Q: 2 + 1 + 2 = 5 ≤ 5 admit               round 2: A 3, Q 2            KV 5
        t=2: no future check: 4 + 3 = 7 > 5 → evict Q (latest), loses 1 token
                                                        round 3: A 4                  KV 4
        t=3: Q: 4 + 1 + 2 = 7 > 5 wait                 round 4: A 5 done (4)
        t=4: Q rounds 5, 6 → done (6)
    """
    res = run("sf", wl([(0, 1, 4), (0, 1, 1), (0, 1, 2)], pred=[1, 5, 6]), 5)
    rec = res.records
    assert rec["completion"].tolist() == [4.0, 1.0, 6.0]
    assert rec["evictions"].tolist() == [0, 0, 1]
    assert rec["wasted_tokens"].tolist() == [0, 0, 1]


def test_alpha_greedy_protects_a_reserve() -> None:
    """A (s 3, o 3, t 0), B (s 2, o 2, t 0), Q (s 2, o 1, t 1); C = 10, α = 0.3 → limit 7.

        t=0: A (4, tested against C: nothing resident), B (4 + 3 = 7 ≤ 7)
                                              round 1: A 4, B 3       KV 7
        t=1: Q: 7 + 2 + 3 = 12 > 7            round 2: A 5, B 4 done (2)   KV 9
        t=2: Q: 5 + 1 + 3 = 9 > 7 (FCFS would admit: 9 ≤ 10)
                                              round 3: A 6 done (3)   KV 6
        t=3: Q admitted                       round 4: Q 3 done (4)
    """
    w = wl([(0, 3, 3), (0, 2, 2), (1, 2, 1)])
    res = run("alpha-greedy", w, 10, alpha=0.3)
    assert res.records["completion"].tolist() == [3.0, 2.0, 4.0]
    assert res.events["kv"].tolist() == [7, 9, 6, 3]
    assert run("fcfs", w, 10).records["completion"].tolist() == [3.0, 2.0, 3.0]


def test_alpha_beta_clears_memory_on_overflow() -> None:
    """Three requests s 1, o 6 at 0; C = 10, α = 0, β = 0.5 (clear down to 5).

        t=0: admit all three (2 + 2 + 2)        round 1: KV 6
        t=1: 6 + 3 = 9 ≤ 10                      round 2: KV 9 (fp 3 each)
        t=2: 9 + 3 = 12 > 10 → clear: victims most recent first (tie → larger
             index): request 2, then 1; each frees fp + 1 = 4; 12 − 4 = 8 > 5,
             12 − 8 = 4 ≤ 5 → evict 2 and 1 (2 tokens wasted each)
                                                 round 3: request 0 fp 4, KV 4
        t=3: 4 + 1 + 2 + 2 = 9 ≤ 10: readmit 1, 2    round 4: 5 + 2 + 2 = 9
        t=4: 9 + 3 = 12 > 10 → clear: order 2, 1, 0 frees 3, 3 (12 − 6 = 6 > 5) and
             would need request 0 too, but the earliest admitted is never cleared:
             evict 2 and 1, run 0                   round 5: fp 6
        t=5: projected 6 + 1 = 7; request 1: 7 + 2 = 9 ≤ 10 admit; request 2: 9 + 2 = 11
             > 10 wait                              round 6: 0 fp 7 done (6), 1 fp 2 → KV 9
    """
    res = run("alpha-beta", wl([(0, 1, 6)] * 3), 10, alpha=0.0, beta=0.5, max_iterations=3)
    rec = res.records
    assert rec["evictions"].tolist() == [0, 1, 1]
    assert rec["wasted_tokens"].tolist() == [0, 2, 2]
    assert res.events["kv"].tolist() == [6, 9, 4]
    assert res.events["evictions"].tolist() == [0, 0, 2]
    full = run("alpha-beta", wl([(0, 1, 6)] * 3), 10, alpha=0.0, beta=0.5)
    assert full.events["kv"].tolist()[:6] == [6, 9, 4, 9, 6, 9]
    assert full.records["completion"].iloc[0] == 6.0
    assert full.records["finished"].all()


def test_large_prompt_is_not_starved_by_a_reserve() -> None:
    """C = 10, watermark 0.2 (limit 8): a request with s + 1 = 9 > 8 still runs once
    memory is empty (the reserve protects residents' growth only)."""
    for name, params in (("vllm", {"watermark": 0.2}), ("alpha-greedy", {"alpha": 0.2}), ("sarathi", {"watermark": 0.2})):
        res = run(name, wl([(0, 8, 2)]), 10, **params)
        assert res.records["finished"].all(), name


def test_baselines_work_on_time_models() -> None:
    """Every baseline finishes a small workload on the linear-kv model, and the
    iteration times follow τ = 1 + 0.5·ΣKV (first round of a lone s 1, o 1 request: 2)."""
    dep = Deployment("lin", 30, TimeModel.linear_kv(1.0, 0.5))
    for name in ("fcfs", "vllm", "sarathi", "sf", "alpha-greedy", "alpha-beta"):
        res = simulate(wl([(0, 1, 1), (0.5, 3, 4), (0.5, 2, 2)]), dep, name)
        assert res.records["finished"].all(), name
        assert res.records["completion"].iloc[0] == 2.0, name


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("vllm", {"watermark": 1.5}),
        ("sarathi", {"chunk_size": 0}),
        ("alpha-greedy", {"alpha": -0.1}),
        ("alpha-beta", {"beta": 1.0}),
        ("fcfs", {"max_batch": 0}),
        ("fcfs", {"no_such": 1}),
    ],
)
def test_bad_parameters_are_input_errors(name: str, params: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        make_policy(name, **params)


def test_whole_prefill_prompt_above_token_cap_is_an_input_error() -> None:
    dep = Deployment("capped", 50, TimeModel.unit(), max_tokens=4)
    with pytest.raises(InputError, match="max_tokens"):
        simulate(wl([(0, 5, 1)]), dep, "fcfs")


def test_params_are_recorded() -> None:
    res = run("alpha-beta", wl([(0, 1, 1)]), 5, alpha=0.2, beta=0.3)
    assert res.params == {"alpha": 0.2, "beta": 0.3, "max_batch": None}
    assert np.isfinite(res.records["completion"]).all()
