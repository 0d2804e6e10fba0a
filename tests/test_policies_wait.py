"""WAIT and Nested WAIT ([WAIT] Algorithms 1 and 2): hand-worked runs and decisions.

Unit time: an iteration is a round; a request started at epoch t emits token j in round
t + j. "stage" = tokens generated so far (0 = waiting). All prompts are 1 token and the
capacity is large unless a test says otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluidopt.deployment import unit_deployment
from fluidopt.errors import InputError
from fluidopt.executor.engine import simulate
from fluidopt.executor.policies.nested_wait import NestedWait
from fluidopt.executor.policies.wait import Wait
from fluidopt.executor.policy import StateView, make_policy
from fluidopt.threshold_file import Segment, Thresholds, ThresholdType, save_thresholds
from fluidopt.workload import Workload

from conftest import make_view

# WAIT trace: index: (arrival, output, type) — a1 (0, 2, a), b1 (0, 3, b), a2 (1, 2, a),
# a3 (1, 2, a), b2 (3, 3, b); thresholds n_a = 2, n_b = 1.
TRACE = [(0, 1, 2, "a"), (0, 1, 3, "b"), (1, 1, 2, "a"), (1, 1, 2, "a"), (3, 1, 3, "b")]


def wl(rows: list[tuple], cols: str = "arrival prompt output type") -> Workload:
    return Workload.from_frame(pd.DataFrame(rows, columns=cols.split()))


def completions(r) -> list[float]:  # type: ignore[no-untyped-def]
    return [None if math.isnan(c) else c for c in r.records["completion"]]


def test_wait_paper_rule_idles_below_threshold() -> None:
    """drain off. Epoch 0: waiting a1, b1: a has 1 < 2, b has 1 ≥ 1 → run b1.
    Epoch 1: a2, a3 arrive: a has 3 ≥ 2 → a1, a2 (FCFS); b has 0 waiting → b1 pauses.
    Epoch 2: a has 1 (a3), b 0 → no type eligible → idle until b2 arrives at 3.
    Epoch 3: b eligible → b2 new + b1 (stage 1); a1, a2 (stage 1) pause.
    Epoch 4: a has 1, b 0 → idle, no arrival left → the run stalls, nothing finished.
    Iterations at rounds 1, 2, 4 with batches 1, 2, 2; first tokens a1 2, b1 1, a2 2, b2 4.
    """
    r = simulate(wl(TRACE), unit_deployment(), Wait({"a": 2, "b": 1}, drain=False), capacity=100, event_log=True)
    assert list(r.events["time"]) == [1, 2, 4]
    assert list(r.events["batch"]) == [1, 2, 2]
    ft = r.records["first_token"]
    assert list(ft[[0, 1, 2, 4]]) == [2, 1, 2, 4] and math.isnan(ft[3])
    assert not r.records["finished"].any()
    assert r.run["stop_reason"] == "stalled"


def test_wait_drain_finishes_the_tail() -> None:
    """Same trace, drain on. Epochs 0–2 as in the paper rule (b2 not yet arrived).
    Epoch 3: b2 arrives, no arrival left → every type with requests is eligible:
    residents b1 (stage 1), a1, a2 (stage 1), new a3 (min(2, 1)), b2 → round 4:
    a1, a2 complete (c 4). Epoch 4: b1 (stage 2), a3, b2 (stage 1) → round 5: b1, a3
    complete (c 5). Round 6: b2 completes (c 6).
    """
    r = simulate(wl(TRACE), unit_deployment(), Wait({"a": 2, "b": 1}), capacity=100)
    assert completions(r) == [4, 5, 4, 5, 6]


def test_wait_advance_resident_variant() -> None:
    """drain off, resident stages advance whether or not their type is eligible.
    Epoch 0: b1. Epoch 1: a eligible → a1, a2 new; b1 (stage 1) advances too.
    Epoch 2: nobody eligible; b1 (stage 2), a1, a2 (stage 1) advance → round 3: all three
    complete (c 3). Epoch 3: b2 eligible → round 4. Epochs 4, 5: b2 advances alone →
    completes at 6. a3 never reaches the threshold: unfinished.
    """
    pol = Wait({"a": 2, "b": 1}, advance_resident=True, drain=False)
    r = simulate(wl(TRACE), unit_deployment(), pol, capacity=100, event_log=True)
    assert completions(r) == [3, 3, 3, None, 6]
    assert list(r.events["batch"]) == [1, 3, 3, 1, 1, 1]


def test_wait_types_from_a_thresholds_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Types by output range: short = outputs 1–2 (n 2), long = 3–10 (n 1): the same
    classes as a/b above, so the same completions as the drain run."""
    th = Thresholds(
        "wait",
        types=(ThresholdType("short", (1, 2), 2), ThresholdType("long", (3, 10), 1)),
    )
    path = tmp_path / "th.json"
    save_thresholds(th, path)
    w = wl([row[:3] for row in TRACE], "arrival prompt output")
    for spec in (th, str(path)):
        r = simulate(w, unit_deployment(), make_policy("wait", thresholds=spec), capacity=100)
        assert completions(r) == [4, 5, 4, 5, 6]
    outside = wl([(0, 1, 11)], "arrival prompt output")
    with pytest.raises(InputError, match="matches no threshold type"):
        Wait(th).reset(outside, unit_deployment())


def test_wait_bad_inputs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "nested.json"
    save_thresholds(Thresholds("nested-wait", segments=(Segment(1, 4, 2),)), path)
    with pytest.raises(InputError, match="policy 'wait'"):
        Wait(str(path))
    with pytest.raises(InputError, match="type"):
        Wait({"a": 1}).reset(wl([(0, 1, 2)], "arrival prompt output"), unit_deployment())
    with pytest.raises(InputError, match="no threshold"):
        Wait({"a": 1}).reset(wl([(0, 1, 2, "z")]), unit_deployment())
    with pytest.raises(InputError, match="≥ 1"):
        Wait({"a": 0})


def view(
    capacity: int, prompt: list[int], resident: dict[int, int], waiting: list[int], nxt: float = 99.0
) -> StateView:
    """Residents as {index: generated} (admitted in dict order, prompts prefilled)."""
    return make_view(capacity, prompt, resident=list(resident), generated=resident, waiting=waiting, next_arrival=nxt)


def test_wait_takes_n_per_stage() -> None:
    """Type a (n 2): residents 0, 1, 2 at stage 3 (three after an eviction), resident 3
    at stage 1, waiting 4, 5, 6. Type b (n 1): resident 7 at stage 2, nothing waiting.
    a eligible (3 ≥ 2) → stage 3: 0, 1 (first admitted); stage 1: 3; new: 4, 5.
    b not eligible → 7 pauses. Batch {0, 1, 3, 4, 5}, not steady (new admissions).
    """
    types = ["a"] * 7 + ["b"]
    w = wl([(0, 1, 9, t) for t in types])
    pol = Wait({"a": 2, "b": 1})
    pol.reset(w, unit_deployment())
    d = pol.decide(view(1000, [1] * 8, {0: 3, 1: 3, 2: 3, 3: 1, 7: 2}, [4, 5, 6]))
    assert sorted(d.run) == [0, 1, 3, 4, 5] and not d.steady


def test_wait_memory_guard() -> None:
    """C = 10, n_a = 2. Resident 0 (s 3, stage 2: fp 5) runs and grows to 6. Waiting 1, 2
    (s 2): type a is eligible (2 ≥ 2). New ones end the round at s + 1 = 3 each:
    6 + 3 = 9 ≤ 10, 6 + 3 + 3 = 12 > 10 → only request 1 with the guard; both without."""
    w = wl([(0, 3, 9, "a"), (0, 2, 9, "a"), (0, 2, 9, "a")])
    v = view(10, [3, 2, 2], {0: 2}, [1, 2])
    guarded = Wait({"a": 2})
    guarded.reset(w, unit_deployment())
    assert list(guarded.decide(v).run) == [0, 1]
    raw = Wait({"a": 2}, memory_guard=False)
    raw.reset(w, unit_deployment())
    assert list(raw.decide(v).run) == [0, 1, 2]


# ---------------------------------------------------------------- Nested WAIT

SEGS = [(2, 2), (4, 1)]  # segment 1: iterations 1–2, n 2; segment 2: iterations 3–4, n 1
# index: (arrival, output): r0 (0, 1), r1 (0, 3), r2 (1, 4), r3 (1, 2), r5 (2, 1), r6 (2, 1), r4 (10, 1)
NESTED = [(0, 1, 1), (0, 1, 3), (1, 1, 4), (1, 1, 2), (2, 1, 1), (2, 1, 1), (10, 1, 1)]


def test_nested_wait_by_hand() -> None:
    """Segments b = (2, 4), n = (2, 1).
    Epoch 0: waiting r0, r1 (2 ≥ 2); segment 2's entry (stage 2) empty → k = 1:
      run r0, r1. Round 1: r0 done (c 1).
    Epoch 1: r2, r3 arrive (2 ≥ 2), entry 2 empty → k = 1: stage 1 r1, stage 0 r2, r3.
      Round 2: r1 at stage 2 (boundary), r2, r3 at stage 1.
    Epoch 2: r5, r6 arrive (2 ≥ 2), entry 2 holds r1 (1 ≥ 1) → k = 2: stage 0 r5, r6;
      stage 1 r2, r3; stage 2 r1. Round 3: r1 (3 tokens), r3 (2), r5, r6 (1) done (c 3);
      r2 at stage 2.
    Epoch 3: nothing waiting (0 < 2) → idle until r4 at 10.
    Epoch 10 (drain on: no arrival left): r4 (stage 0), r2 (stage 2) → round 11: r4 done
      (c 11); round 12: r2 done (c 12).
    With drain off, epoch 10 has 1 < 2 waiting → idle, no arrival left: r2, r4 unfinished.
    """
    w = wl(NESTED, "arrival prompt output")
    r = simulate(w, unit_deployment(), NestedWait(SEGS), capacity=100)
    assert completions(r) == [1, 3, 12, 3, 3, 3, 11]
    r = simulate(w, unit_deployment(), NestedWait(SEGS, drain=False), capacity=100)
    assert completions(r) == [1, 3, None, 3, 3, 3, None]
    assert not NestedWait.sees_output


def test_nested_wait_largest_prefix_of_full_entry_queues() -> None:
    """Segments (1, n 1), (2, n 1), (3, n 1). Waiting: request 0. Entry of segment 2
    (stage 1): empty. Entry of segment 3 (stage 2): request 1. k = 1 (segment 2 fails,
    so segment 3 is not active although its entry is full) → run {0}; 1 pauses.
    With segment 1 short (nothing waiting) → idle even with residents at boundaries.
    """
    pol = NestedWait([(1, 1), (2, 1), (3, 1)])
    pol.reset(wl([(0, 1, 5), (0, 1, 5)], "arrival prompt output"), unit_deployment())
    assert list(pol.decide(view(100, [1, 1], {1: 2}, [0])).run) == [0]
    assert pol.decide(view(100, [1, 1], {1: 2, 0: 1}, [])).run.size == 0


def test_nested_wait_segments_input(tmp_path) -> None:  # type: ignore[no-untyped-def]
    th = Thresholds("nested-wait", segments=(Segment(1, 2, 2), Segment(3, 4, 1)))
    path = tmp_path / "seg.json"
    save_thresholds(th, path)
    for spec in (th, str(path), SEGS):
        assert NestedWait(spec).params()["segments"] == [[2, 2], [4, 1]]
    with pytest.raises(InputError):
        NestedWait([(2, 2), (2, 1)])  # boundaries must increase
    with pytest.raises(InputError, match="policy 'nested-wait'"):
        NestedWait(Thresholds("wait", types=(ThresholdType("x", (1, 2), 1),)))


def test_wait_runs_on_linear_kv_time() -> None:
    """Smoke: WAIT and Nested WAIT under a linear-kv time model finish a small trace."""
    from fluidopt.deployment import Deployment, TimeModel

    dep = Deployment("lin", 100, TimeModel.linear_kv(0.01, 0.001))
    w = wl([(0.1 * i, 2, 1 + i % 3, "a" if i % 3 < 2 else "b") for i in range(12)])
    assert simulate(w, dep, Wait({"a": 2, "b": 1})).records["finished"].all()
    assert simulate(w, dep, NestedWait([(1, 2), (3, 1)])).records["finished"].all()


def test_wait_respects_deployment_caps() -> None:
    """max_batch 2: the drain-phase batch of the WAIT trace (5 requests) is cut to the 2
    earliest-admitted residents; the run still finishes and never exceeds the caps (the
    engine raises otherwise). Same for Nested WAIT with max_tokens 2 (prompts are 1)."""
    from fluidopt.deployment import Deployment, TimeModel

    dep = Deployment("capped", 100, TimeModel.unit(), max_batch=2)
    r = simulate(wl(TRACE), dep, Wait({"a": 2, "b": 1}), event_log=True)
    assert r.records["finished"].all() and r.events["batch"].max() == 2
    dep = Deployment("capped", 100, TimeModel.unit(), max_tokens=2)
    r = simulate(wl(NESTED, "arrival prompt output"), dep, NestedWait(SEGS), event_log=True)
    assert r.records["finished"].all() and r.events["new_tokens"].max() <= 2


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), max_size=20))
def test_first_per_group_matches_a_counter(entries) -> None:  # type: ignore[no-untyped-def]
    """Keep the first limit[group] entries of each group, in input order."""
    from fluidopt.executor.policies.wait import first_per_group

    groups = np.array([g for g, _ in entries], dtype=np.int64)
    caps = {g: c for g, c in entries}  # one cap per group (last one given wins)
    limit = np.array([caps[g] for g, _ in entries], dtype=np.int64)
    seen: dict[int, int] = {}
    want = []
    for g, _ in entries:
        seen[g] = seen.get(g, 0) + 1
        want.append(seen[g] <= caps[g])
    assert list(first_per_group(groups, limit)) == want


def test_nested_wait_advance_resident_by_hand() -> None:
    """Same trace and segments as :func:`test_nested_wait_by_hand`, residents always advance.
    Epochs 0–2 as there (admission needs 2 waiting; in epoch 2 r1 at stage 2 runs as
    segment 2's one, r2, r3 as segment 1's): round 3 completes r1, r3, r5, r6.
    Epoch 3: nothing waits, but r2 (stage 2) advances anyway → done in round 5, not 12.
    Epoch 10: r4 alone waits (1 < 2); the drain admits it → c 11 (unfinished without)."""
    w = wl(NESTED, "arrival prompt output")
    r = simulate(w, unit_deployment(), NestedWait(SEGS, advance_resident=True), capacity=100)
    assert completions(r) == [1, 3, 5, 3, 3, 3, 11]
    r = simulate(w, unit_deployment(), NestedWait(SEGS, advance_resident=True, drain=False), capacity=100)
    assert completions(r) == [1, 3, 5, 3, 3, 3, None]


def test_nested_wait_one_segment_advance_is_wait_one_type_advance() -> None:
    """One segment with n = 1, residents always advancing, is WAIT with one type and n = 1
    in the authors' variant (neither uses the lengths then)."""
    rng = np.random.default_rng(3)
    rows = [(float(t), int(p), int(o)) for t, p, o in zip(np.sort(rng.uniform(0, 30, 40)).round(), rng.integers(1, 4, 40),
                                                          rng.integers(1, 9, 40))]
    w = wl(rows, "arrival prompt output")
    th = Thresholds("wait", types=(ThresholdType("all", (1, None), threshold=1),))
    a = simulate(w, unit_deployment(), NestedWait([(8, 1)], advance_resident=True), capacity=25)
    b = simulate(w, unit_deployment(), Wait(th, advance_resident=True), capacity=25)
    assert completions(a) == completions(b)


def test_nested_wait_reserve_holds_back_admission(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """C = 5, two requests (prompt 1, output 3) at 0, one segment n = 1, advance.
    R = 0: r1 is admitted at epoch 1 (end-of-iteration KV 3 + 2 = 5 ≤ 5) and evicted
    when both grow in round 3.
    R = 1 (from the file): at epoch 1 the room is 5 − 1 − 2 − 1 = 1 < 2, at epoch 2 it is
    0; r0 completes in round 3 and r1 runs in rounds 4–6 (c 6), no eviction."""
    w = wl([(0, 1, 3), (0, 1, 3)], "arrival prompt output")
    path = tmp_path / "n.json"
    save_thresholds(Thresholds("nested-wait", segments=(Segment(1, 3, 1),), reserve=1), path)
    pol = NestedWait(path, advance_resident=True)
    assert pol.reserve == 1 and pol.params()["reserve"] == 1
    r = simulate(w, unit_deployment(), pol, capacity=5)
    assert completions(r) == [3, 6] and r.summary()["evictions"] == 0
    r0 = simulate(w, unit_deployment(), NestedWait(path, advance_resident=True, reserve=0), capacity=5)
    assert r0.records["first_admitted"].iloc[1] == 1 and r0.summary()["evictions"] == 1
    with pytest.raises(InputError, match="reserve"):
        NestedWait([(3, 1)], reserve=-5)
