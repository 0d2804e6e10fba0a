"""Engine semantics on hand-worked examples (unit model unless stated).

Notation in the docstrings: ``t`` is the decision epoch (clock before the iteration),
``fp`` a footprint (prompt tokens processed + tokens generated), ``KV`` the
end-of-iteration sum over residents.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from fluidopt.deployment import Deployment, TimeModel, unit_deployment
from fluidopt.errors import InputError, PolicyError
from fluidopt.executor.engine import simulate
from fluidopt.executor.policy import Decision, Policy, StateView

AFFINE = TimeModel("affine", 1.0, c_seq=0.25, c_kv=0.0625, c_new=0.125, c_pf2=0.03125)


def wl(rows: list[tuple[float, int, int]], **extra: Any) -> Any:
    from fluidopt.workload import Workload

    frame = pd.DataFrame(rows, columns=["arrival", "prompt", "output"])
    for k, v in extra.items():
        frame[k] = v
    return Workload.from_frame(frame, name="hand")


class RunAll(Policy):
    """Admit everything waiting, run every resident, whole prefill; optional chunk."""

    name = "run-all"

    def __init__(self, chunk: int | None = None, steady: bool = False) -> None:
        self.chunk = chunk
        self.steady = steady

    def decide(self, state: StateView) -> Decision:
        run = np.concatenate([state.resident, state.waiting])
        chunk = None
        if self.chunk is not None:
            rem = state.prompt[run] - state.prefilled[run]
            chunk = np.minimum(rem, self.chunk)
        return Decision(run=run, chunk=chunk, steady=self.steady and state.waiting.size == 0 and self.chunk is None)


class Scripted(Policy):
    """Returns the decisions of a script, one per call; records the views it saw."""

    name = "scripted"

    def __init__(self, script: list[Decision]) -> None:
        self.script = list(script)
        self.seen: list[dict[str, Any]] = []

    def decide(self, state: StateView) -> Decision:
        self.seen.append(
            {
                "clock": state.clock,
                "waiting": state.waiting.tolist(),
                "resident": state.resident.tolist(),
                "kv": state.kv_used,
                "generated": state.generated.tolist(),
            }
        )
        if self.script:
            return self.script.pop(0)
        return Decision(run=np.concatenate([state.resident, state.waiting]))  # then run everything


def test_single_request_unit_model() -> None:
    """s = 2, o = 3, arrival 0, C = 5. Started at t = 0:

        round 1: fp 3 (prompt + token 1)   round 2: fp 4   round 3: fp 5 → completes
        c = 0 + 3 = 3, ttft = 1, KV per iteration [3, 4, 5].
    """
    res = simulate(wl([(0, 2, 3)]), unit_deployment(), RunAll(), capacity=5, event_log=True)
    r = res.records.iloc[0]
    assert (r.start, r.first_token, r.completion, r.finished) == (0.0, 1.0, 3.0, True)
    assert res.events["kv"].tolist() == [3, 4, 5]
    assert res.events["time"].tolist() == [1.0, 2.0, 3.0]
    assert res.run["peak_kv"] == 5


def test_overflow_evicts_most_recent_and_recomputes() -> None:
    """Two requests (s = 2, o = 2) at 0, C = 7, run-all policy.

        t=0: admit 0, 1            → round 1: fp 3 + 3 = 6 ≤ 7, both emit token 1
        t=1: run both              → round 2 would be 4 + 4 = 8 > 7: evict the most
             recently admitted (tie at t=0 → larger index: request 1); it loses token 1
             (wasted 1) → KV 4, request 0 emits token 2 and completes at 2
        t=2: readmit 1             → rounds 3, 4: fp 3, 4 → completes at 4
        first_token of request 1 stays 1 (first token ever); start = 2.
        Emitted tokens: 2 + 1 + 1 + 1 = 5 = Σ o (4) + wasted (1).
    """
    res = simulate(wl([(0, 2, 2), (0, 2, 2)]), unit_deployment(), RunAll(), capacity=7, event_log=True)
    rec = res.records
    assert rec["completion"].tolist() == [2.0, 4.0]
    assert rec["evictions"].tolist() == [0, 1]
    assert rec["wasted_tokens"].tolist() == [0, 1]
    assert rec["first_token"].tolist() == [1.0, 1.0]
    assert rec["start"].tolist() == [0.0, 2.0]
    assert rec["first_admitted"].tolist() == [0.0, 0.0]
    assert res.events["kv"].tolist() == [6, 4, 3, 4]
    assert res.events["evictions"].tolist() == [0, 1, 0, 0]
    assert res.events["emitted"].tolist() == [2, 1, 1, 1]


def test_chunked_prefill_affine_times() -> None:
    """s = 5, o = 2, chunks of 2 tokens, τ = 1 + 0.25·B + 0.0625·ΣKV + 0.125·N_new + 0.03125·Σchunk².

        it 1: chunk 2, fp 2, N 2 → τ = 1 + .25 + .125 + .25 + .125     = 1.75
        it 2: chunk 2, fp 4, N 2 → τ = 1 + .25 + .25  + .25 + .125     = 1.875
        it 3: chunk 1, fp 6 (prompt done, token 1), N 1
                                 → τ = 1 + .25 + .375 + .125 + .03125  = 1.78125
        it 4: decode, fp 7, N 1  → τ = 1 + .25 + .4375 + .125          = 1.8125
        first token at 5.40625, completion at 7.21875.
    """
    dep = Deployment("affine-test", 100, AFFINE)
    res = simulate(wl([(0, 5, 2)]), dep, RunAll(chunk=2), event_log=True)
    r = res.records.iloc[0]
    assert r.first_token == 5.40625 and r.completion == 7.21875
    assert res.events["duration"].tolist() == [1.75, 1.875, 1.78125, 1.8125]
    assert res.events["kv"].tolist() == [2, 4, 6, 7]
    assert res.events["new_tokens"].tolist() == [2, 2, 1, 1]


def test_iteration_time_matches_time_model() -> None:
    """The engine's τ equals TimeModel.iteration_time on the same batch (real coefficients)."""
    from fluidopt.deployment import load_deployment

    dep = load_deployment("llama2-7b-a100")
    res = simulate(wl([(0, 300, 4), (0, 200, 3)]), dep, RunAll(), event_log=True)
    ev = res.events
    # iteration 1: both prefill whole prompts: B 2, ΣKV 301 + 201, N 500, Σchunk² 300² + 200²
    assert ev["duration"].iloc[0] == dep.time.iteration_time(2, 502, 500, 300**2 + 200**2)
    # iteration 2: two decodes: ΣKV 302 + 202, N 2
    assert ev["duration"].iloc[1] == dep.time.iteration_time(2, 504, 2, 0)


def test_unit_model_fractional_arrival_waits_for_next_epoch() -> None:
    """Arrival 1.5 in the unit model is available at epoch 2; o = 2 → c = 4."""
    res = simulate(wl([(1.5, 1, 2)]), unit_deployment(), RunAll(), capacity=3)
    r = res.records.iloc[0]
    assert (r.start, r.completion) == (2.0, 4.0)


def test_time_model_idles_until_arrival() -> None:
    """linear-kv τ = 1 + 0.5·ΣKV; request at 2.5 with s = 1, o = 1: one iteration of
    ΣKV = 2 (prompt + token 1) → τ = 2, completes at 4.5."""
    dep = Deployment("lin", 10, TimeModel.linear_kv(1.0, 0.5))
    res = simulate(wl([(2.5, 1, 1)]), dep, RunAll())
    r = res.records.iloc[0]
    assert (r.start, r.first_token, r.completion) == (2.5, 4.5, 4.5)


def test_paused_resident_keeps_footprint() -> None:
    """Requests 0 (s 2, o 2) and 1 (s 3, o 1), C = 7.

        t=0: run [0]      → fp0 3                      KV 3
        t=1: run [1]      → 0 paused keeps 3, fp1 4    KV 7 (1 completes at 2, counted)
        t=2: run [0]      → fp0 4, completes at 3      KV 4
    """
    script = [
        Decision(run=np.array([0])),  # t=0: only request 0 (fp 3)
        Decision(run=np.array([1])),  # t=1: request 0 paused (keeps 3), 1 runs: fp 4 → KV 7
        Decision(run=np.array([0])),  # t=2: request 0 decodes: fp 4 → completes at 3
    ]
    pol = Scripted(script)
    res = simulate(wl([(0, 2, 2), (0, 3, 1)]), unit_deployment(), pol, capacity=7, event_log=True)
    assert res.events["kv"].tolist() == [3, 7, 4]
    assert pol.seen[1]["kv"] == 3 and pol.seen[2]["kv"] == 3  # request 1 freed after completing
    assert res.records["completion"].tolist() == [3.0, 2.0]


def test_waiting_order_puts_evicted_request_back_by_arrival() -> None:
    """Requests at arrivals 0, 1, 2 (ids 0, 1, 2). Request 0 runs at t = 0, 1 and is
    evicted voluntarily at t = 2 while 2 is admitted: at t = 3 the waiting queue is
    ordered by (arrival, id) → [0, 1], not [1, 0]."""
    script = [
        Decision(run=np.array([0])),  # t=0: fp0 2 (token 1)
        Decision(run=np.array([0])),  # t=1: fp0 3 (token 2); request 1 waits
        Decision(run=np.array([2]), evict=np.array([0])),  # t=2: 0 loses 2 tokens; 2 runs, completes at 3
    ]
    pol = Scripted(script)
    res = simulate(wl([(0, 1, 5), (1, 1, 1), (2, 1, 1)]), unit_deployment(), pol, capacity=20)
    assert pol.seen[2]["waiting"] == [1, 2] and pol.seen[2]["resident"] == [0]
    assert pol.seen[3]["waiting"] == [0, 1]  # not [1, 0]: the evicted request keeps its arrival
    assert res.records["wasted_tokens"].tolist() == [2, 0, 0]
    assert res.records["evictions"].tolist() == [1, 0, 0]


def test_view_arrays_are_read_only() -> None:
    class Writer(Policy):
        name = "writer"

        def decide(self, state: StateView) -> Decision:
            state.generated[0] = 5
            return Decision()

    with pytest.raises(ValueError, match="read-only"):
        simulate(wl([(0, 1, 1)]), unit_deployment(), Writer(), capacity=3)


@pytest.mark.parametrize(
    ("decision", "match"),
    [
        (Decision(run=np.array([0, 0])), "duplicate"),
        (Decision(run=np.array([1])), "neither waiting nor resident"),  # request 1 not arrived
        (Decision(run=np.array([0]), chunk=np.array([0])), "chunk"),
        (Decision(run=np.array([0]), chunk=np.array([9])), "chunk"),
        (Decision(run=np.array([7])), "outside"),
        (Decision(run=np.array([0]), evict=np.array([0])), "not resident"),
    ],
)
def test_invalid_decisions_raise(decision: Decision, match: str) -> None:
    with pytest.raises(PolicyError, match=match):
        simulate(wl([(0, 3, 1), (5, 1, 1)]), unit_deployment(), Scripted([decision]), capacity=10)


def test_caps_are_enforced() -> None:
    dep = Deployment("capped", 100, AFFINE, max_batch=1)
    with pytest.raises(PolicyError, match="max_batch"):
        simulate(wl([(0, 1, 1), (0, 1, 1)]), dep, RunAll())
    dep = Deployment("capped", 100, AFFINE, max_tokens=4)
    with pytest.raises(PolicyError, match="max_tokens"):
        simulate(wl([(0, 3, 1), (0, 2, 1)]), dep, RunAll())
    # within the cap with chunks: 2 + 2 new tokens
    res = simulate(wl([(0, 3, 1), (0, 2, 1)]), dep, RunAll(chunk=2))
    assert res.records["finished"].all()


def test_capacity_is_validated_up_front() -> None:
    with pytest.raises(InputError, match="row 2.*more than the capacity 5"):
        simulate(wl([(0, 1, 1), (0, 3, 3)]), unit_deployment(), RunAll(), capacity=5)
    with pytest.raises(InputError, match="capacity"):
        simulate(wl([(0, 1, 1)]), unit_deployment(), RunAll())


def test_stalled_policy_reports_unfinished() -> None:
    class Never(Policy):
        name = "never"

        def decide(self, state: StateView) -> Decision:
            return Decision()

    res = simulate(wl([(0, 1, 1), (3, 1, 1)]), unit_deployment(), Never(), capacity=5)
    assert not res.records["finished"].any()
    assert res.run["stop_reason"] == "stalled"
    assert res.summary()["unfinished"] == 2


def test_max_iterations_stops_the_run() -> None:
    res = simulate(wl([(0, 1, 10)]), unit_deployment(), RunAll(), capacity=20, max_iterations=4)
    assert res.run["iterations"] == 4 and res.run["stop_reason"] == "max_iterations"
    r = res.records.iloc[0]
    assert not r.finished and np.isnan(r.completion) and r.start == 0.0


def test_wake_at_idles_until_then() -> None:
    """A policy that waits until 3.0 before starting a request that arrived at 0."""

    class Late(Policy):
        name = "late"

        def decide(self, state: StateView) -> Decision:
            if state.clock < 3.0:
                return Decision(wake_at=3.0)
            return Decision(run=np.concatenate([state.resident, state.waiting]))

    dep = Deployment("lin", 10, TimeModel.linear_kv(1.0, 0.5))
    res = simulate(wl([(0, 1, 1)]), dep, Late())
    assert res.records["start"].iloc[0] == 3.0 and res.records["completion"].iloc[0] == 5.0
    # the request waited 3 s: the waiting integral counts it
    assert res.run["waiting_integral"] == 3.0


def test_steady_fast_forward_stops_at_arrival_and_completion() -> None:
    """linear-kv τ = 1 + 0.25·ΣKV, C = 100. Request 0 (s 2, o 6) at 0, request 1 (s 1, o 1) at 7.

        it 1: fp 3 → τ 1.75 (t 1.75)    it 2: fp 4 → τ 2 (t 3.75)
        it 3: fp 5 → τ 2.25 (t 6.0)     it 4: fp 6 → τ 2.5 (t 8.5 ≥ 7: stop, admit 1)
        it 5: fp 7 + 2 = 9 → τ 3.25 (t 11.75): request 1 completes
        it 6: fp 8 → τ 3 (t 14.75): request 0 completes (6 tokens).
    The steady run-all policy reaches the same numbers as without fast-forward.
    """
    dep = Deployment("lin", 100, TimeModel.linear_kv(1.0, 0.25))
    w = wl([(0, 2, 6), (7, 1, 1)])
    fast = simulate(w, dep, RunAll(steady=True), event_log=True)
    slow = simulate(w, dep, RunAll(steady=False), event_log=True)
    assert fast.events["time"].tolist() == [1.75, 3.75, 6.0, 8.5, 11.75, 14.75]
    assert fast.records["completion"].tolist() == [14.75, 11.75]
    pd.testing.assert_frame_equal(fast.events, slow.events, check_exact=True)
    pd.testing.assert_frame_equal(fast.records, slow.records, check_exact=True)


class ChunkedSteady(Policy):
    """Admit everything waiting, run every resident with prefill chunks of at most
    ``chunk``; ``steady`` (with the chunks) whenever nothing is admitted."""

    name = "chunked-steady"

    def __init__(self, chunk: int, steady: bool = True, last_chunk: bool = False) -> None:
        self.chunk = chunk
        self.steady = steady
        self.last_chunk = last_chunk

    def decide(self, state: StateView) -> Decision:
        run = np.concatenate([state.resident, state.waiting])
        rem = state.prompt[run] - state.prefilled[run]
        steady = self.steady and not state.waiting.size
        # with nothing waiting and no arrival, the last chunk's decision is the same rule
        return Decision(run=run, chunk=np.minimum(rem, self.chunk), steady=steady, last_chunk=self.last_chunk)


def test_chunked_steady_stretch_stops_before_a_prompts_last_chunk() -> None:
    """linear-kv τ = 1 + 0.25·ΣKV, C = 100, chunk 3. Request 0 (s 1, o 6) and request 1
    (s 10, o 2) at 0.

        it 1 (admits both): fp 2 + 3 = 5 → τ 2.25 (t 2.25)
        steady, request 1 has 7 left: 2 iterations before its last chunk
        it 2: 3 + 6 = 9 → τ 3.25 (t 5.5)     it 3: 4 + 9 = 13 → τ 4.25 (t 9.75)
        it 4 (last chunk, 1 token, emits token 1): 5 + 11 = 16 → τ 5 (t 14.75)
        it 5: 6 + 12 = 18 → τ 5.5 (t 20.25): request 1 completes
        it 6: 7 → τ 2.75 (t 23): request 0 completes.
    """
    dep = Deployment("lin", 100, TimeModel.linear_kv(1.0, 0.25))
    w = wl([(0, 1, 6), (0, 10, 2)])
    fast = simulate(w, dep, ChunkedSteady(3), event_log=True)
    slow = simulate(w, dep, ChunkedSteady(3, steady=False), event_log=True)
    assert fast.events["time"].tolist() == [2.25, 5.5, 9.75, 14.75, 20.25, 23.0]
    assert fast.events["new_tokens"].tolist() == [4, 4, 4, 2, 2, 1]
    assert fast.records["first_token"].tolist() == [2.25, 14.75]
    assert fast.records["completion"].tolist() == [23.0, 20.25]
    pd.testing.assert_frame_equal(fast.events, slow.events, check_exact=True)
    pd.testing.assert_frame_equal(fast.records, slow.records, check_exact=True)
    assert fast.run["decisions"] == 5 and slow.run["decisions"] == 6


def test_chunked_steady_stretch_runs_the_last_chunk_when_promised() -> None:
    """The instance above with ``Decision.last_chunk``: the stretch also runs iteration 4
    (request 1's last chunk, capped at its remaining token), one decision fewer, the same
    results. With an arrival during the stretch the last chunk is decided as usual."""
    dep = Deployment("lin", 100, TimeModel.linear_kv(1.0, 0.25))
    for rows, decisions in (([(0, 1, 6), (0, 10, 2)], 4), ([(0, 1, 6), (0, 10, 2), (7, 2, 1)], 5)):
        w = wl(rows)
        last = simulate(w, dep, ChunkedSteady(3, last_chunk=True), event_log=True)
        slow = simulate(w, dep, ChunkedSteady(3, steady=False), event_log=True)
        pd.testing.assert_frame_equal(last.events, slow.events, check_exact=True)
        pd.testing.assert_frame_equal(last.records, slow.records, check_exact=True)
        assert last.run["decisions"] == decisions


def test_steady_decision_with_a_bad_chunk_still_raises() -> None:
    """A steady promise does not skip the checks: the chunk is validated as usual."""
    script = [
        Decision(run=np.array([0]), chunk=np.array([2])),
        Decision(run=np.array([0]), chunk=np.array([0]), steady=True),
    ]
    with pytest.raises(PolicyError, match="chunk"):
        simulate(wl([(0, 5, 2)]), unit_deployment(), Scripted(script), capacity=10)


class OneBatchAtATime(Policy):
    """Admit the whole queue when nothing is resident; otherwise run the residents,
    steady through arrivals (they wait for the batch to drain)."""

    name = "one-batch"

    def __init__(self, steady: bool = True) -> None:
        self.steady = steady

    def decide(self, state: StateView) -> Decision:
        if state.resident.size:
            return Decision(run=state.resident, steady=self.steady, through_arrivals=True)
        return Decision(run=state.waiting)


@pytest.mark.parametrize("output", [5, 40, 300])
def test_steady_stretch_through_arrivals_matches_the_slow_path(output: int) -> None:
    """Stretches of a few iterations (Python loop) and of hundreds (block path) run
    past many arrivals; the queue integrals and the event log's ``waiting`` count each
    arrival from the iteration after the one it arrived in, as one iteration at a time
    does. Fitted (non-dyadic) time model: the floats must match bit for bit."""
    from fluidopt.deployment import load_deployment

    rng = np.random.default_rng(7)
    n = 60
    rows = list(zip(np.cumsum(rng.exponential(0.05, n)), rng.integers(1, 400, n), rng.integers(1, output + 1, n)))
    dep = load_deployment("llama2-7b-a100")
    fast = simulate(wl(rows), dep, OneBatchAtATime(), event_log=True)
    slow = simulate(wl(rows), dep, OneBatchAtATime(steady=False), event_log=True)
    pd.testing.assert_frame_equal(fast.events, slow.events, check_exact=True)
    pd.testing.assert_frame_equal(fast.records, slow.records, check_exact=True)
    fast_run, slow_run = dict(fast.run), dict(slow.run)
    assert fast_run.pop("decisions") < slow_run.pop("decisions")
    assert fast_run == slow_run
    assert fast.events["waiting"].diff().gt(0).any()  # arrivals did happen inside stretches


def test_fast_forward_never_passes_an_overflow() -> None:
    """Unit model, C = 9, two requests s = 1, o = 4 at 0 with the steady run-all policy.

        t=0: fp 2 + 2 = 4;  t=1: 3 + 3 = 6;  t=2: 4 + 4 = 8;  t=3: 5 + 5 = 10 > 9 →
        the fast path stops after round 3 (8 + 2 > 9); round 4 evicts request 1
        (most recent by index), request 0 completes at 4 with fp 5; request 1 restarts
        at 4 and completes at 8.
    """
    res = simulate(wl([(0, 1, 4), (0, 1, 4)]), unit_deployment(), RunAll(steady=True), capacity=9, event_log=True)
    assert res.events["kv"].tolist() == [4, 6, 8, 5, 2, 3, 4, 5]
    assert res.records["completion"].tolist() == [4.0, 8.0]
    assert res.records["wasted_tokens"].tolist() == [0, 3]


def test_policy_by_name_and_result_conversions() -> None:
    res = simulate(wl([(0, 2, 3), (1, 1, 1)]), unit_deployment(), "fcfs", capacity=10)
    assert res.policy == "fcfs" and res.capacity == 10 and res.deployment == "unit"
    frame = res.to_frame()
    assert {"ttft", "latency", "tpot"} <= set(frame.columns)
    import json

    d = res.to_dict()
    json.dumps(d)  # JSON-safe
    assert d["workload_digest"] == res.workload_digest and d["policy"] == "fcfs"
