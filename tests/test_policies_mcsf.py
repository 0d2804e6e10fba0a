"""MC-SF, H-SF, MC-Benchmark: the future-memory check, decisions, and runs.

Conventions in the drawings: unit time, a request started at epoch t holds s + j tokens
in round t + j and completes at t + o. "fp" is a resident's current footprint
(prompt + generated), "rem" its predicted remaining iterations, k an offset in
iterations from the decision epoch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluidopt.deployment import unit_deployment
from fluidopt.errors import InputError
from fluidopt.executor.engine import simulate
from fluidopt.executor.policies.mcsf import HSF, MCSF, FutureMemoryCheck, MCBenchmark, naive_future_check
from fluidopt.executor.policies.robust import Amax
from fluidopt.executor.policy import Decision, make_policy
from fluidopt.workload import Workload

from conftest import make_view


def workload(rows: list[tuple], columns: str = "arrival prompt output") -> Workload:
    return Workload.from_frame(pd.DataFrame(rows, columns=columns.split()))


def ready(policy, w: Workload):
    policy.reset(w, unit_deployment())
    return policy


# ---------------------------------------------------------------- the check itself


def test_check_at_completion_points_by_hand() -> None:
    """Residents R1 (fp 4, rem 2) and R2 (fp 1, rem 3), C = 14.

    Loads: k=1: 5 + 2 = 7, k=2: 6 + 3 = 9, k=3: 4. Candidate X (s 2, õ 2):
    k=1: 7 + 3 = 10, k=2: 9 + 4 = 13 ≤ 14 → accepted. Candidate Y (s 1, õ 1):
    k=1: 10 + 2 = 12 ≤ 14, and its own point k=1 is the same → accepted (loads now
    k=1: 12, k=2: 13, k=3: 4). Candidate Z (s 1, õ 3): k=1: 12 + 2 = 14, k=2: 13 + 3 = 16
    > 14 → rejected, state unchanged: W (s 2, õ 3) with k=3: 4 + 5 = 9 but k=2: 13 + 4 = 17
    → rejected too; V (s 1, õ 1): k=1 12 + 2 = 14 → accepted.
    """
    chk = FutureMemoryCheck(np.array([2, 3]), np.array([4, 1]), 14)
    assert chk.base_ok
    assert chk.try_add(2, 2)
    assert chk.try_add(1, 1)
    assert not chk.try_add(3, 1)
    assert not chk.try_add(3, 2)
    assert chk.try_add(1, 1)
    assert not chk.try_add(1, 1)  # k=1 would be 16


def test_check_sees_points_beyond_the_candidate() -> None:
    """Residents alone over C at a later point (k=3: fp 8 + 3 = 11 > C = 10): admit nothing."""
    chk = FutureMemoryCheck(np.array([3]), np.array([8]), 10)
    assert not chk.base_ok
    assert not chk.try_add(1, 1)


@settings(max_examples=150, deadline=None)
@given(
    res=st.lists(st.tuples(st.integers(1, 12), st.integers(1, 15)), max_size=8),
    cands=st.lists(st.tuples(st.integers(1, 12), st.integers(1, 8)), min_size=1, max_size=8),
    capacity=st.integers(5, 80),
)
def test_check_matches_every_round_reference(res, cands, capacity) -> None:
    """Each try_add agrees with the explicit load of every future round (independent code)."""
    r = np.array([a for a, _ in res], dtype=np.int64)
    b = np.array([c for _, c in res], dtype=np.int64)
    chk = FutureMemoryCheck(r, b, capacity)
    acc_o: list[int] = []
    acc_s: list[int] = []
    for o, s in cands:
        want = naive_future_check(r, b, np.array(acc_o + [o]), np.array(acc_s + [s]), capacity)
        assert chk.try_add(o, s) == want
        if want:
            acc_o.append(o)
            acc_s.append(s)


@settings(max_examples=150, deadline=None)
@given(
    res=st.lists(st.tuples(st.integers(1, 12), st.integers(1, 15)), max_size=8),
    cands=st.lists(st.tuples(st.integers(1, 12), st.integers(1, 8)), min_size=1, max_size=10),
    capacity=st.integers(5, 80),
    chunk=st.integers(1, 4),
)
def test_prefix_admission_matches_reference(res, cands, capacity, chunk) -> None:
    """admit_prefix = the longest prefix of candidates that passes the every-round check
    (each prefix checked from scratch); small chunks exercise the loop after the block."""
    r = np.array([a for a, _ in res], dtype=np.int64)
    b = np.array([c for _, c in res], dtype=np.int64)
    o = np.array([a for a, _ in cands], dtype=np.int64)
    s = np.array([c for _, c in cands], dtype=np.int64)
    want = 0
    while want < len(cands) and naive_future_check(r, b, o[: want + 1], s[: want + 1], capacity):
        want += 1
    assert FutureMemoryCheck(r, b, capacity).admit_prefix(o, s, chunk=chunk) == want
    # in two calls (the second on top of accepted candidates), then one more by try_add
    chk = FutureMemoryCheck(r, b, capacity)
    half = len(cands) // 2
    got = chk.admit_prefix(o[:half], s[:half], chunk=chunk)
    if got == half:
        got += chk.admit_prefix(o[half:], s[half:], chunk=chunk)
    assert got == want
    if want < len(cands):
        assert not chk.try_add(o[want], s[want])
    extra = naive_future_check(r, b, np.r_[o[:want], 3], np.r_[s[:want], 2], capacity)
    assert chk.try_add(3, 2) == extra


@settings(max_examples=100, deadline=None)
@given(
    res=st.lists(st.tuples(st.integers(1, 10), st.integers(1, 12)), min_size=1, max_size=6),
    cand=st.tuples(st.integers(1, 10), st.integers(1, 8)),
    capacity=st.integers(5, 70),
)
def test_blocked_delays_match_delayed_reference(res, cand, capacity) -> None:
    """Starting the candidate d iterations later = residents with rem − d and fp + d."""
    r = np.array([a for a, _ in res], dtype=np.int64)
    b = np.array([c for _, c in res], dtype=np.int64)
    fails = FutureMemoryCheck(r, b, capacity).blocked_delays(*cand)
    assert fails.shape == (int(r.min()),)
    for d in range(int(r.min())):
        ok = naive_future_check(r - d, b + d, np.array([cand[0]]), np.array([cand[1]]), capacity)
        assert fails[d] == (not ok)


# ---------------------------------------------------------------- decisions


def test_mcsf_stops_at_first_failure_and_mc_benchmark_uses_fcfs() -> None:
    """C = 10, resident R (s 3, generated 1, õ = o = 3: fp 4, rem 2; loads k=1: 5, k=2: 6).

    Waiting, in arrival order: Y (s 1, o 3) then X (s 4, o 2).
    MC-SF tries X first (shorter): k=1: 5 + 5 = 10, k=2: 6 + 6 = 12 > 10 → fails, stop;
    Y (k=1: 7, k=2: 9, k=3: 4, would fit) is not tried. Nothing admitted.
    MC-Benchmark tries Y first: fits (loads 7, 9, 4), then X: k=1: 7 + 5 = 12 > 10 → stop.
    Run = R + Y.
    """
    w = workload([(0, 3, 3), (0, 1, 3), (0, 4, 2)])
    view = make_view(10, [3, 1, 4], resident=[0], generated={0: 1}, waiting=[1, 2])
    d = ready(MCSF(), w).decide(view)
    assert list(d.run) == [0]
    d = ready(MCBenchmark(), w).decide(view)
    assert list(d.run) == [0, 1]


def test_mcsf_order_ties_by_arrival_then_id() -> None:
    """Four waiting, s = 1 each, C = 6, no residents; (arrival, id, o) per index:
    0: (0, 8, 3), 1: (0, 7, 2), 2: (1, 9, 2), 3: (1, 5, 2). Engine's waiting order
    (arrival, id): 1, 0, 3, 2. MC-SF order (o, arrival, id): 1, 3, 2, 0.
    Loads (k=1, k=2): after 1: 2, 3; after 3: 4, 6; request 2 would give 6, 9 > 6 → stop.
    """
    w = workload([(8, 0, 1, 3), (7, 0, 1, 2), (9, 1, 1, 2), (5, 1, 1, 2)], "id arrival prompt output")
    view = make_view(6, [1, 1, 1, 1], waiting=[1, 0, 3, 2], arrival=[0, 0, 1, 1], iteration=1)
    d = ready(MCSF(), w).decide(view)
    assert list(d.run) == [1, 3]


def test_under_prediction_counts_one_more_iteration() -> None:
    """Resident R (s 2, pred 2, true 5) has generated 2 and still runs: fp 4, rem = 1.

    Candidate W (s 3, pred 2): k=1: R 5 + W 4 = 9 ≤ C = 9, k=2: W 5 → admitted. (Were R
    still counted for 2 more iterations, k=2 would be 6 + 5 = 11 > 9.)
    """
    w = workload([(0, 2, 5, 2), (0, 3, 2, 2)], "arrival prompt output pred")
    view = make_view(9, [2, 3], resident=[0], generated={0: 2}, waiting=[1])
    pol = ready(MCSF(), w)
    assert not pol.overflow_free  # 2 < 5: predictions are not upper bounds
    assert list(pol.decide(view).run) == [0, 1]


def test_steady_when_blocked_until_the_next_completion() -> None:
    """C = 10, resident R (s 3, generated 1, o 3: fp 4, rem 2), exact lengths.

    Candidate X (s 4, o 2). d=0: k=2: R 6 + X 6 = 12 > 10. d=1: k=2: R 6 + X 5 = 11 > 10.
    Blocked at every delay before R completes → steady. With X' (s 3, o 2) instead:
    d=0: k=2: 6 + 5 = 11 fails, d=1: k=2: 6 + 4 = 10 and k=3: 5 → passes → not steady.
    """
    w = workload([(0, 3, 3), (0, 4, 2)])
    d = ready(HSF(), w).decide(make_view(10, [3, 4], resident=[0], generated={0: 1}, waiting=[1]))
    assert list(d.run) == [0] and d.steady
    w = workload([(0, 3, 3), (0, 3, 2)])
    d = ready(HSF(), w).decide(make_view(10, [3, 3], resident=[0], generated={0: 1}, waiting=[1]))
    assert list(d.run) == [0] and not d.steady


def test_steady_with_nothing_waiting_and_idle_when_empty() -> None:
    w = workload([(0, 2, 3), (5, 2, 3)])
    pol = ready(HSF(), w)
    d = pol.decide(make_view(10, [2, 2], resident=[0], generated={0: 1}))
    assert list(d.run) == [0] and d.steady
    d = pol.decide(make_view(10, [2, 2]))
    assert d.run.size == 0


def test_mcsf_lengths_and_overflow_free_flag() -> None:
    exact = workload([(0, 2, 3, 3), (0, 2, 4, 5)], "arrival prompt output pred")
    pol = ready(MCSF(), exact)
    assert pol.overflow_free and pol.params() == {"lengths": "pred"}
    pol = ready(MCSF(), workload([(0, 2, 3)]))
    assert pol.overflow_free and pol.params() == {"lengths": "truth"}


# ---------------------------------------------------------------- runs through the engine


def test_mcsf_run_by_hand() -> None:
    """All four arrive at 0, C = 10: A (s 2, o 3), B (s 1, o 1), C (s 3, o 2), D (s 2, o 4).

    Epoch 0, order B, C, A, D. B: k=1: 2. C: k=1: 2 + 4 = 6, k=2: 5. A: k=1: 6 + 3 = 9,
    k=2: 5 + 4 = 9, k=3: 5. D: k=1: 9 + 3 = 12 > 10 → stop. Start B, C, A.
        round 1: B 2, C 4, A 3 = 9 → B completes (c = 1)
    Epoch 1: C (fp 4, rem 1), A (fp 3, rem 2); D: k=1: 5 + 4 + 3 = 12 > 10 → wait.
        round 2: C 5, A 4 = 9 → C completes (c = 2)
    Epoch 2: A (fp 4, rem 1); D: k=1: 5 + 3 = 8, k=4: 6 → start D.
        round 3: A 5, D 3 = 8 → A completes (c = 3); D completes at 2 + 4 = 6.
    Σ c = 1 + 2 + 3 + 6 = 12, peak 9, no eviction.
    """
    w = workload([(0, 2, 3), (0, 1, 1), (0, 3, 2), (0, 2, 4)])
    for name in ("mc-sf", "h-sf"):
        r = simulate(w, unit_deployment(), name, capacity=10)
        assert list(r.records["completion"]) == [3, 1, 2, 6]
        assert list(r.records["start"]) == [0, 0, 0, 2]
        assert r.summary()["tct"] == 12
        assert r.summary()["evictions"] == 0
        assert r.summary()["peak_kv"] == 9


def test_mc_benchmark_run_by_hand() -> None:
    """Same requests, FCFS order A, B, C, D, C = 10.

    Epoch 0: A: k=3: 5 (k=1: 3). B: k=1: 3 + 2 = 5. C: k=1: 5 + 4 = 9, k=2: 4 + 5 = 9,
    k=3: 5. D: k=1: 12 > 10 → stop. Start A, B, C (same set as MC-SF here).
    Epoch 1: A (fp 3, rem 2), C (fp 4, rem 1); D: k=1: 4 + 5 + 3 = 12 → wait.
    Epoch 2: A (fp 4, rem 1); D: k=1: 5 + 3 = 8 → start. Completions 3, 1, 2, 6.
    A second instance where FCFS differs: C = 8, E (s 4, o 3) arrives before F (s 1, o 1)
    and G (s 2, o 2). FCFS: E (k=3: 7), F: k=1: 5 + 2 = 7, G: k=1: 7 + 3 = 10 > 8 → stop.
        round 1: E 5, F 2 → F done (c 1). Epoch 1: E (fp 5, rem 2); G: k=1: 6 + 3 = 9 > 8.
        round 2: E 6. Epoch 2: E (fp 6, rem 1); G: k=1: 7 + 3 = 10 > 8. round 3: E done (c 3).
        Epoch 3: G starts, completes at 5. Σ c = 3 + 1 + 5 = 9.
    MC-SF on it: F (k=1: 2), G: k=1: 2 + 3 = 5, k=2: 4; E: k=1: 5 + 5 = 10 > 8 → stop.
        round 1: F done (c 1). Epoch 1: G (fp 3, rem 1); E: k=1: 4 + 5 = 9 > 8 → wait.
        round 2: G done (c 2). Epoch 2: E starts, completes at 5. Σ c = 5 + 1 + 2 = 8.
    """
    w = workload([(0, 2, 3), (0, 1, 1), (0, 3, 2), (0, 2, 4)])
    r = simulate(w, unit_deployment(), "mc-benchmark", capacity=10)
    assert list(r.records["completion"]) == [3, 1, 2, 6]
    w = workload([(0, 4, 3), (0, 1, 1), (0, 2, 2)])
    r = simulate(w, unit_deployment(), "mc-benchmark", capacity=8)
    assert list(r.records["completion"]) == [3, 1, 5]
    r = simulate(w, unit_deployment(), "mc-sf", capacity=8)
    assert list(r.records["completion"]) == [5, 1, 2]


class _NoShortcut(HSF):
    """H-SF without the steady/blocked shortcuts: decides every iteration afresh."""

    name = "h-sf-no-shortcut"

    def _blocked(self, state, check, first, n_res):  # type: ignore[no-untyped-def]
        return False


class _AmaxNoShortcut(Amax):
    name = "amax-no-shortcut"

    def _blocked(self, state, check, first, n_res):  # type: ignore[no-untyped-def]
        return False


rows = st.lists(
    st.tuples(st.integers(0, 12), st.integers(1, 6), st.integers(1, 9), st.integers(0, 6)),
    min_size=1,
    max_size=14,
)


def _frame(data, capacity_slack):  # type: ignore[no-untyped-def]
    data = sorted(data)
    frame = pd.DataFrame(data, columns=["arrival", "prompt", "output", "extra"])
    frame["pred_lo"] = np.maximum(frame["output"] - frame["extra"], 1)
    frame["pred_hi"] = frame["output"] + frame["extra"]
    frame["pred"] = frame["output"] + frame["extra"] // 2  # an upper bound
    cap = int((frame["prompt"] + frame["pred_hi"]).max()) + capacity_slack
    return Workload.from_frame(frame.drop(columns="extra")), cap


@settings(max_examples=40, deadline=None)
@given(data=rows, slack=st.integers(0, 12))
def test_never_evict_with_right_lengths(data, slack) -> None:
    """MC-SF (upper-bound points), H-SF, Amax, MC-Benchmark: no eviction, all finish.

    The engine raises PolicyError if an overflow-free policy ever needs an eviction.
    """
    w, cap = _frame(data, slack)
    for name in ("mc-sf", "h-sf", "amax", "mc-benchmark"):
        pol = make_policy(name)
        r = simulate(w, unit_deployment(), pol, capacity=cap)
        assert pol.overflow_free
        s = r.summary()
        assert s["evictions"] == 0 and s["unfinished"] == 0 and s["peak_kv"] <= cap


@settings(max_examples=40, deadline=None)
@given(data=rows, slack=st.integers(0, 12))
def test_shortcuts_do_not_change_the_schedule(data, slack) -> None:
    """The steady / blocked-delay shortcuts only skip decisions that would admit nothing."""
    w, cap = _frame(data, slack)
    # H-SF: exact lengths; Amax: upper bounds, so requests finish before predicted
    for fast_pol, slow_pol in ((HSF(), _NoShortcut()), (Amax(), _AmaxNoShortcut())):
        fast = simulate(w, unit_deployment(), fast_pol, capacity=cap)
        slow = simulate(w, unit_deployment(), slow_pol, capacity=cap)
        pd.testing.assert_frame_equal(fast.records, slow.records)
        assert fast.run["iterations"] == slow.run["iterations"]


def test_amax_needs_intervals() -> None:
    with pytest.raises(InputError, match="pred_lo"):
        simulate(workload([(0, 1, 2)]), unit_deployment(), "amax", capacity=10)


def test_deployment_caps_by_hand() -> None:
    """C = 100, all at 0, o = 1. max_batch 2, prompts 1, 1, 1: epoch 0 admits 0, 1 (batch
    full), both done at 1; 2 starts at 1, done at 2. max_tokens 3, prompts 2, 2, 1:
    epoch 0 admits 0 (2 tokens), 1 would make 4 > 3 → stop (2 is not tried); epoch 1:
    1 and 2 (2 + 1 = 3) → done at 2.
    """
    from fluidopt.deployment import Deployment, TimeModel

    batch_cap = Deployment("capped", 100, TimeModel.unit(), max_batch=2)
    w = workload([(0, 1, 1), (0, 1, 1), (0, 1, 1)])
    for name in ("mc-sf", "h-sf", "mc-benchmark", "sorted-f"):
        assert list(simulate(w, batch_cap, name).records["completion"]) == [1, 1, 2]
    token_cap = Deployment("capped", 100, TimeModel.unit(), max_tokens=3)
    w = workload([(0, 2, 1), (0, 2, 1), (0, 1, 1)])
    for name in ("mc-sf", "h-sf", "mc-benchmark"):
        assert list(simulate(w, token_cap, name).records["completion"]) == [1, 2, 2]


@settings(max_examples=25, deadline=None)
@given(data=rows, slack=st.integers(0, 12), max_batch=st.integers(1, 4), max_tokens=st.integers(6, 12))
def test_caps_are_respected(data, slack, max_batch, max_tokens) -> None:
    """With max_batch and max_tokens (≥ every prompt) the engine never has to raise."""
    from fluidopt.deployment import Deployment, TimeModel

    w, cap = _frame(data, slack)
    dep = Deployment("capped", cap, TimeModel.unit(), max_batch=max_batch, max_tokens=max_tokens)
    for name in ("mc-sf", "h-sf", "amax", "amin", "mc-benchmark", "sorted-f"):
        r = simulate(w, dep, make_policy(name))
        assert r.records["finished"].all()


@pytest.mark.parametrize("name", ["mc-sf", "mc-benchmark", "amax"])
def test_prediction_beyond_capacity_is_clipped_not_blocking(name: str) -> None:
    """C = 12, unit time. A (s 3, o 5, õ 30) and B (s 2, o 4, õ 4) at 0; D (s 2, o 3, õ 3) at 1.

    õ_A = 30 > C − s = 9 would fail the check for ever; clipped to 9 it is still ≥ o_A.
    MC-SF (and Amax, õ = pred_hi), order B, D, A:
    Epoch 0: B: k ≤ 4: 2 + k ≤ 6 → start. A: k=4: (2+4) + (3+4) = 13 > 12 → wait.
    Epoch 1: B (fp 3, rem 3). D: k ≤ 3: (3+k) + (2+k) ≤ 11 → start.
        A: k=3: 6 + 5 + 6 = 17 > 12 → wait.
    Epoch 4: B (c = 4) and D (c = 1 + 3 = 4) done; A starts, c = 4 + 5 = 9. Σ c = 17.
    MC-Benchmark (FCFS): A first, alone: k ≤ 9: 3 + k ≤ 12 → start; B: k=1: 4 + 3 = 7,
        k=4: 7 + 6 = 13 > 12 → wait (and blocks D). Epoch 5: A done (c = 5);
        B and D (k ≤ 4: (2+k) + (2+k) ≤ 12) start, c = 9 and 8. Σ c = 22.
    Without the clip A never starts (and under FCFS neither does anything behind it).
    """
    rows = [(0, 3, 5, 1, 30, 30), (0, 2, 4, 1, 4, 4), (1, 2, 3, 1, 3, 3)]
    w = workload(rows, "arrival prompt output pred_lo pred_hi pred")
    r = simulate(w, unit_deployment(), name, capacity=12)
    s = r.summary()
    assert s["unfinished"] == 0 and s["evictions"] == 0
    assert s["tct"] == (22 if name == "mc-benchmark" else 17)


# ---------------------------------------------------------------- first-fit reading


def test_first_fit_skips_a_failing_candidate() -> None:
    """The drawing of ``test_mcsf_stops_at_first_failure_and_mc_benchmark_uses_fcfs``
    (C = 10, R: fp 4, rem 2), with the waiting queue in arrival order X (s 4, o 2), Y
    (s 1, o 3). X fails (k=2: 6 + 6 = 12 > 10); stopping admits nothing, first fit goes
    on to Y (loads 7, 9, 4 ≤ 10) and admits it. MC-SF meets X first too (shorter)."""
    w = workload([(0, 3, 3), (0, 4, 2), (0, 1, 3)])
    view = make_view(10, [3, 4, 1], resident=[0], generated={0: 1}, waiting=[1, 2])
    for cls in (MCSF, MCBenchmark):
        assert list(ready(cls(), w).decide(view).run) == [0]
        assert list(ready(cls(first_fit=True), w).decide(view).run) == [0, 2]
    assert make_policy("mc-benchmark", first_fit=True).params() == {"lengths": "pred", "first_fit": True}


class _NaiveFirstFit(MCSF):
    """First fit with the every-round reference check, one candidate at a time."""

    name = "mc-sf-naive-first-fit"

    def decide(self, state):  # type: ignore[no-untyped-def]
        res = np.asarray(state.resident, dtype=np.int64)
        wait = np.asarray(state.waiting, dtype=np.int64)
        remaining, footprint = self._remaining(state, res), state.prompt[res] + state.generated[res]
        accepted: list[int] = []
        for j in self._order(self._key(state, wait), wait):
            cand = np.asarray(accepted + [j], dtype=np.int64)
            if naive_future_check(remaining, footprint, self._otil[cand], state.prompt[cand], state.capacity):
                accepted.append(int(j))
        return Decision(run=np.concatenate([res, np.asarray(accepted, dtype=np.int64)]))


@settings(max_examples=40, deadline=None)
@given(data=rows, slack=st.integers(0, 12))
def test_first_fit_matches_the_reference_and_never_evicts(data, slack) -> None:
    """With upper-bound lengths, first fit admits exactly what a candidate-by-candidate
    every-round check admits, and never needs an eviction."""
    w, cap = _frame(data, slack)
    fast = simulate(w, unit_deployment(), MCSF(first_fit=True), capacity=cap)
    slow = simulate(w, unit_deployment(), _NaiveFirstFit(), capacity=cap)
    pd.testing.assert_frame_equal(fast.records, slow.records)
    for name in ("mc-sf", "mc-benchmark"):
        s = simulate(w, unit_deployment(), make_policy(name, first_fit=True), capacity=cap).summary()
        assert s["evictions"] == 0 and s["unfinished"] == 0 and s["peak_kv"] <= cap
