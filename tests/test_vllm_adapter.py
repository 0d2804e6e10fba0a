"""The vLLM adapter's pure parts (no vLLM needed): settings, the state translation, and
the executor side of the parity check. The vLLM side is in test_vllm.py."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pandas as pd
import pytest

from fluidopt.errors import InputError
from fluidopt.executor.policy import make_policy
from fluidopt.integrations.vllm.parity import Step, Trace, compare, executor_trace
from fluidopt.integrations.vllm.settings import Settings, nearest_type_length, predicted_output
from fluidopt.integrations.vllm.state import LiveRequest, build_view, engine_deployment
from fluidopt.threshold_file import Thresholds, ThresholdType
from fluidopt.workload import Workload


def _w(rows: list[tuple[float, int, int]], pred: list[int] | None = None) -> Workload:
    df = pd.DataFrame(rows, columns=["arrival", "prompt", "output"])
    if pred is not None:
        df["pred"] = pred
    return Workload.from_frame(df)


# ---------------------------------------------------------------------------- settings
def test_settings_named_class_and_errors(tmp_path) -> None:
    s = Settings.from_config({"fluidopt": {"params": {"reserve": 5}, "thresholds": "t.json"}}, "wait")
    assert (s.policy, s.params, s.max_wait, s.prediction_key) == (
        "wait", {"reserve": 5, "thresholds": "t.json"}, 1.0, "fluidopt_pred"
    )
    assert Settings.from_config({}, "mc-sf").policy == "mc-sf"
    assert Settings.from_config({"fluidopt": {"policy": "svf", "max_wait": None}}).max_wait is None
    for cfg, policy, msg in [
        ({}, "wait", "WAIT needs 'thresholds'"),
        ({"fluidopt": {"policy": "svf"}}, "mc-sf", "given to the 'mc-sf' scheduler"),
        ({}, None, "'policy' is required"),
        ({"fluidopt": {"policy": "sarathi"}}, None, "not exported to vLLM"),
        ({"fluidopt": {"polcy": "svf"}}, "svf", "unknown key"),
        ({"fluidopt": {"max_wait": -1}}, "svf", "max_wait"),
        ({"fluidopt": ["svf"]}, None, "must be a mapping"),
    ]:
        with pytest.raises(InputError, match=msg):
            Settings.from_config(cfg, policy)


def test_predicted_output_falls_back_to_max_tokens() -> None:
    assert predicted_output({"fluidopt_pred": 12}, 100) == 12
    assert predicted_output({"p": 12}, 100, key="p") == 12
    for bad in (None, {}, {"fluidopt_pred": 0}, {"fluidopt_pred": "12"}, {"fluidopt_pred": 2.5},
                {"fluidopt_pred": True}):
        assert predicted_output(bad, 100) == 100


def test_nearest_type_length() -> None:
    th = Thresholds("wait", (ThresholdType("a", (10, 20), 2), ThresholdType("b", (30, None), 3)))
    assert nearest_type_length(th, 5, 15) == 15  # matches a
    assert nearest_type_length(th, 5, 3) == 10  # below every type: a's lower end
    assert nearest_type_length(th, 5, 24) == 20  # between: a is nearer
    assert nearest_type_length(th, 5, 27) == 30  # b is nearer


# ---------------------------------------------------------------------------- state
def test_view_maps_vllm_tokens_to_the_system_model() -> None:
    """p prompt tokens ↔ s = p − 1; recompute: the kept outputs join the effective prompt."""
    dep = engine_deployment(num_blocks=11, block_size=16, max_num_seqs=8, max_num_batched_tokens=None)
    assert (dep.capacity, dep.block_size, dep.preemption, dep.max_batch) == (160, 16, "recompute", 8)
    live = [
        # decoding, admitted at 2.0 with 3 outputs kept from an earlier run, 2 more since
        LiveRequest("a", 0, 0.0, prompt_tokens=21, output_tokens=5, computed=25, predicted=9, resident=True,
                    kept=3, admitted_at=2.0, admit_rank=1, evictions=1),
        # prefilling (chunked), nothing generated yet in this run
        LiveRequest("b", 1, 0.5, prompt_tokens=41, output_tokens=0, computed=16, predicted=4, resident=True,
                    admitted_at=1.0, admit_rank=0),
        # waiting after a preemption with 2 outputs (they will be re-prefilled)
        LiveRequest("c", 2, 1.0, prompt_tokens=1, output_tokens=2, computed=0, predicted=6),
    ]
    w, v = build_view(live, clock=3.0, iteration=7, deployment=dep, kv_used=96, next_arrival=math.inf,
                      sees_output=True)
    assert w.prompt.tolist() == [20, 40, 1]  # s = p − 1, at least 1
    assert w.output.tolist() == w.pred.tolist() == [9, 4, 6]
    assert v.prompt.tolist() == [23, 40, 3]  # effective: s + kept
    assert v.generated.tolist() == [2, 0, 0]
    assert v.prefilled.tolist() == [23, 16, 0]
    assert v.resident.tolist() == [1, 0]  # admission order
    assert v.waiting.tolist() == [2]
    assert v.output.tolist() == [6, 4, 4]  # predicted − kept
    assert (v.capacity, v.kv_used, v.iteration) == (160, 96, 7)
    # a's holding in vLLM: 21 + 5 − 1 = 25 tokens (token 5's KV is written next step) = the
    # executor's footprint prefilled + generated of the same request
    assert int(v.footprint(np.array([0]))[0]) == 21 + 5 - 1
    with pytest.raises(ValueError):
        v.prompt[0] = 1  # read-only, as the engine hands it


# ---------------------------------------------------------------------------- parity (executor side)
def test_executor_trace_records_admissions_evictions_completions() -> None:
    """C = 2 blocks of 4 tokens = 8. FCFS admits A (s=3, o=3) and B (s=3, o=2) at t=0:
    blocks ⌈4/4⌉ + ⌈4/4⌉ = 8. At t=1 both grow to 5 tokens: 2 blocks each, 16 > 8, so B
    (latest admitted, larger index) is evicted; A alone (8) runs to its end at t=3
    (holding ⌈6/4⌉·4 = 8). Then B re-prefills 3 + 1 kept tokens and finishes."""
    w = _w([(0, 3, 3), (0, 3, 2)])
    tr = executor_trace(w, make_policy("fcfs"), num_blocks=3, block_size=4)
    assert tr.steps[0.0] == Step(admitted=(0, 1))
    assert tr.steps[1.0] == Step(preempted=(1,))
    assert tr.steps[2.0] == Step(completed=(0,))
    assert tr.steps[3.0] == Step(admitted=(1,), completed=(1,))  # recompute: the re-prefill emits token 2
    assert tr.completion == {0: 3.0, 1: 4.0}
    assert (tr.preemptions, tr.admissions, tr.rollbacks) == (1, 3, 0)
    assert tr.completion_order() == [0, 1]


def test_executor_trace_drops_admissions_evicted_in_their_own_iteration() -> None:
    """C = 16 tokens in blocks of 4. A1, A2 (s=3, o=6) start at t=0 holding one block each.
    B (s=3, o=2) arrives at 1; FCFS's test counts the residents' growth in tokens
    (8 + 2 + 4 = 14 ≤ 16) and admits it, but A1 and A2 cross a block boundary (8 tokens
    each), so the iteration needs 20 > 16 and B, the latest admitted, is evicted at once.
    In vLLM B simply stays waiting: the trace drops that admission and eviction. At t=5
    A1 and A2 need a third block each (9 tokens; 24 > 16): A2 is evicted, keeps its 5
    tokens, and its re-prefill at t=6 emits its last one."""
    w = _w([(0, 3, 6), (0, 3, 6), (1, 3, 2)])
    tr = executor_trace(w, make_policy("fcfs"), num_blocks=5, block_size=4)
    assert tr.rollbacks == 1
    assert tr.steps[1.0] == Step()
    assert tr.steps[5.0] == Step(preempted=(1,), completed=(0,))
    assert tr.steps[6.0] == Step(admitted=(1, 2), completed=(1,))
    assert tr.completion == {0: 6.0, 1: 7.0, 2: 8.0}
    assert tr.preemptions == 1


def test_compare_lists_differences() -> None:
    a, b = Trace("executor"), Trace("vllm")
    a.steps[0.0] = b.steps[0.0] = Step(admitted=(1,))
    a.steps[1.0] = Step(completed=(1,))
    a.completion[1] = 2.0
    assert compare(a, a) == []
    diff = compare(a, b)
    assert diff[0].startswith("t=1: executor Step") and "vllm None" in diff[0]
    assert "request 1: completes at 2.0 (executor) vs None (vllm)" in diff


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_scheduler_classes_name_the_extra_without_vllm() -> None:
    import fluidopt.integrations.vllm as plug

    with pytest.raises(ImportError, match=r"pip install 'fluidopt\[vllm\]'"):
        plug.MCSFScheduler  # noqa: B018
    with pytest.raises(AttributeError):
        plug.NoSuchScheduler  # noqa: B018


def test_the_vllm_script_cannot_skip_its_tests_and_the_main_ci_does_not_depend_on_it() -> None:
    from conftest import REPO

    run = (REPO / ".ci" / "run").read_text()
    script = (REPO / ".ci" / "run-vllm").read_text()
    assert "run-vllm" not in run.split("\n", 3)[-1]  # mentioned in the comment only, never run
    assert "set -euo pipefail" in script and "FLUIDOPT_REQUIRE_VLLM=1" in script
    assert "import vllm, vllm.config" in script  # the install is checked before the tests
