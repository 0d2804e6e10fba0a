"""Sorted-F ([VAR]): batch peaks, batch formation by F, runs and re-planning.

Unit time: a request started at epoch t holds s + j tokens in round t + j and completes
at t + o. F(X) = Σ_{i∈X} o_i / |X|².
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
from fluidopt.executor.policies.sorted_f import SortedF, batch_peak, form_batches
from fluidopt.workload import Workload


def workload(rows: list[tuple]) -> Workload:
    return Workload.from_frame(pd.DataFrame(rows, columns=["arrival", "prompt", "output"]))


def test_batch_peak_by_hand() -> None:
    """(s, o) = (2, 1), (2, 2), (2, 3) started together.

    Footprints at k=1 are s + 1 = 3, 3, 3 → 9; k=2: 4 + 4 = 8; k=3: 5. Peak 9.
    Adding (4, 6): k=1: 9 + 5 = 14. (4, 6) with (2, 1): k=1: 5 + 3 = 8, k=6: 10 → 10.
    """
    assert batch_peak(np.array([2, 2, 2]), np.array([1, 2, 3])) == 9
    assert batch_peak(np.array([2, 2, 2, 4]), np.array([1, 2, 3, 6])) == 14
    assert batch_peak(np.array([4, 2]), np.array([6, 1])) == 10


def test_form_batches_by_hand() -> None:
    """C = 12, sorted (s, o): a (2, 1), b (2, 2), c (2, 3), d (4, 6).

    Prefix peaks 3, 6, 9, 14 → the feasible prefixes are 1..3. F: 1/1 = 1, 3/4 = 0.75,
    6/9 ≈ 0.667 → batch {a, b, c} (F 2/3). Then {d}: F 6.
    """
    batches = form_batches(np.array([2, 2, 2, 4]), np.array([1, 2, 3, 6]), 12)
    assert [list(b) for b, _ in batches] == [[0, 1, 2], [3]]
    assert [f for _, f in batches] == pytest.approx([6 / 9, 6.0])


def test_form_batches_prefers_small_f_over_the_longest_prefix() -> None:
    """C = 14, sorted (s, o): (1, 1), (1, 1), (1, 10). All three fit (peak: k=1 3·2 = 6,
    k=10 11) but F: 1, 2/4 = 0.5, 12/9 ≈ 1.33 → batch of the first two, then {third}.
    With a batch cap of 1: {first} (F 1), {second} (1), {third} (10).
    """
    batches = form_batches(np.array([1, 1, 1]), np.array([1, 1, 10]), 14)
    assert [list(b) for b, _ in batches] == [[0, 1], [2]]
    capped = form_batches(np.array([1, 1, 1]), np.array([1, 1, 10]), 14, max_batch=1)
    assert [list(b) for b, _ in capped] == [[0], [1], [2]]


def test_sorted_f_runs_batches_by_f_and_beats_sf() -> None:
    """C = 10, all at 0: a (s 8, o 1), b, c, d (s 1, o 2 each).

    Sorted by o: a, b, c, d. {a, b} peaks at 9 + 2 = 11 > 10 → batch {a} (F 1). Then
    {b, c, d}: peak k=2: 3·3 = 9 → F 6/9 ≈ 0.667. Run order by F: {b, c, d}, then {a}.
    Epoch 0: start b, c, d; a: k=1: 3·2 + 9 = 15 > 10 → wait. Rounds 1, 2: 6, 9 →
    b, c, d complete at 2. Epoch 2: a starts, completes at 3. Σ c = 2 + 2 + 2 + 3 = 9.
    H-SF: a first (k=1: 9), b: 9 + 2 = 11 → stop; a done at 1; b, c, d start at 1, done
    at 3. Σ c = 1 + 3·3 = 10.
    """
    w = workload([(0, 8, 1), (0, 1, 2), (0, 1, 2), (0, 1, 2)])
    r = simulate(w, unit_deployment(), "sorted-f", capacity=10)
    assert list(r.records["completion"]) == [3, 2, 2, 2]
    assert r.summary()["tct"] == 9
    assert simulate(w, unit_deployment(), "h-sf", capacity=10).summary()["tct"] == 10


def test_sorted_f_replans_on_arrival() -> None:
    """As above plus e (s 1, o 1) arriving at 1.

    Epoch 0: plan {b, c, d} then {a}; b, c, d start. Epoch 1: e is new → re-plan over
    {a, e}: sorted a (o 1, arrival 0), e (o 1, arrival 1); {a, e} peaks at 9 + 2 = 11 > 10
    → {a} (F 1), {e} (F 1), ties in formation order. Residents b, c, d (fp 2, rem 1):
    a: k=1: 9 + 9 = 18 → wait (e behind it is not tried). Epoch 2: a starts (k=1: 9);
    e: 9 + 2 = 11 → wait. a done at 3; e starts at 3, done at 4.
    """
    w = workload([(0, 8, 1), (0, 1, 2), (0, 1, 2), (0, 1, 2), (1, 1, 1)])
    pol = SortedF()
    r = simulate(w, unit_deployment(), pol, capacity=10)
    assert list(r.records["completion"]) == [3, 2, 2, 2, 4]
    assert list(r.records["start"]) == [2, 0, 0, 0, 3]
    assert pol.replans == 2


def test_request_larger_than_capacity() -> None:
    with pytest.raises(InputError, match="capacity"):
        form_batches(np.array([5]), np.array([6]), 10)


@settings(max_examples=30, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(0, 8), st.integers(1, 6), st.integers(1, 9)), min_size=1, max_size=12),
    slack=st.integers(0, 10),
)
def test_sorted_f_never_evicts_and_batches_fit(data, slack) -> None:
    """Overflow-free (the engine would raise), finishes; every formed batch fits alone."""
    w = workload(sorted(data))
    cap = int((w.prompt + w.output).max()) + slack
    r = simulate(w, unit_deployment(), "sorted-f", capacity=cap)
    assert r.records["finished"].all() and r.summary()["evictions"] == 0
    order = np.argsort(w.output, kind="stable")
    for batch, _ in form_batches(w.prompt[order], w.output[order], cap):
        idx = order[batch]
        # independent peak: explicit load of every round
        load = [sum(s + k for s, o in zip(w.prompt[idx], w.output[idx]) if k <= o) for k in range(1, 10)]
        assert max(load) <= cap


def test_sorted_f_against_the_mip() -> None:
    """The instance above is optimal for Sorted-F: a (peak 9) can share no round with
    another request (each adds ≥ 2), so it runs first (Σ c = 1 + 3·3 = 10) or after
    b, c, d (Σ c = 2·3 + 3 = 9): the MIP optimum is 9. On small random instances the
    Sorted-F schedule is MIP-feasible and never beats the MIP optimum.
    """
    from fluidopt.tct import schedule_problems, solve_tct

    w = workload([(0, 8, 1), (0, 1, 2), (0, 1, 2), (0, 1, 2)])
    assert solve_tct(w, 10, executor=False).objective_tct == 9
    rng = np.random.default_rng(5)
    for _ in range(4):
        n = 6
        w = workload(
            list(zip(np.sort(rng.integers(0, 4, n)), rng.integers(1, 6, n), rng.integers(1, 6, n)))
        )
        cap = int((w.prompt + w.output).max()) + int(rng.integers(0, 6))
        sol = solve_tct(w, cap, executor=False)
        assert sol.status == "optimal"
        r = simulate(w, unit_deployment(), "sorted-f", capacity=cap)
        starts = np.rint(r.records["completion"].to_numpy() - w.output).astype(np.int64)
        assert schedule_problems(w, cap, starts) == []
        assert r.summary()["tct"] >= sol.objective_tct


@pytest.mark.parametrize(("cap", "sf", "sorted_f"), [(100, 451, 141), (400, 3136, 516)])
def test_adversarial_family(cap: int, sf: int, sorted_f: int) -> None:
    """The generator's fat/thin family with w = ⌊√C⌋ fat requests (s C − 1, o 1) and
    m = ⌊C/3⌋ thin ones (s 1, o 2), all at 0.

    C = 100: w 10, m 33. H-SF / FCFS: fat ones at 1..10 (Σ 55), thin ones start at
    10 and complete at 12: 55 + 33·12 = 451. Sorted-F: thin batch first (F 2/33 < 1),
    all complete at 2 (Σ 66), fat ones at 3..12 (Σ 75): 141. Ratio 3.2.
    C = 400: w 20, m 133: 210 + 133·22 = 3136 against 266 + 20·25/2 = 516. Ratio 6.1:
    twice the ratio for four times C.
    """
    from fluidopt.generators import adversarial_fcfs_sf

    w, _ = adversarial_fcfs_sf(cap, n_fat=int(np.sqrt(cap)), n_thin=cap // 3)
    for name in ("h-sf", "mc-benchmark"):
        assert simulate(w, unit_deployment(), name, capacity=cap).summary()["tct"] == sf
    assert simulate(w, unit_deployment(), "sorted-f", capacity=cap).summary()["tct"] == sorted_f
