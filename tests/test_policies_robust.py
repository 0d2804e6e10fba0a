"""Amax and Amin ([ROB]): hand-worked runs, Amin's raise, eviction order and kept õ.

Unit time: a request started at epoch t holds s + j tokens in round t + j and completes
at t + o. "fp" = prompt + generated, "rem" = predicted remaining iterations, k = offset
(iterations) from the decision epoch. Intervals are written [lo, hi].
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluidopt.deployment import unit_deployment
from fluidopt.errors import InputError
from fluidopt.executor.engine import simulate
from fluidopt.executor.policies.robust import Amax, Amin
from fluidopt.executor.policy import StateView
from fluidopt.workload import Workload

from conftest import make_view

COLS = ["arrival", "prompt", "output", "pred_lo", "pred_hi"]


def workload(rows: list[tuple]) -> Workload:
    return Workload.from_frame(pd.DataFrame(rows, columns=COLS))


def view(capacity: int, prompt: list[int], resident: dict[int, tuple[int, float]], waiting: list[int]) -> StateView:
    """Residents as {index: (generated, admitted_at)}, prompts fully prefilled."""
    return make_view(capacity, prompt, resident=list(resident), generated={i: g for i, (g, _) in resident.items()},
                     admitted_at={i: t for i, (_, t) in resident.items()}, waiting=waiting)


def test_amax_amin_hsf_on_two_requests() -> None:
    """P and Q: s 2, o 2, interval [1, 5], both at 0, C = 8.

    Amax (õ = 5): P alone peaks at 2 + 5 = 7; with Q, k=5: 7 + 7 = 14 > 8 → only P.
      Epoch 1: P (fp 3, rem 4); Q at k=4: 7 + 6 = 13 > 8, and still > 8 for every later
      start before P's predicted end → wait. P really completes at 2; Q starts at 2,
      completes at 4. Σ c = 6.
    Amin (õ = 1): P k=1: 3; Q k=1: 3 + 3 = 6 → both start. Round 1: 6. Epoch 1: both
      generated 1 ≥ õ → õ = 2; k=1: 4 + 4 = 8 ≤ 8. Round 2: 8, both complete. Σ c = 4.
    H-SF (õ = 2): P k=2: 4; Q k=1: 3 + 3, k=2: 4 + 4 = 8 → both start, Σ c = 4.
    """
    w = workload([(0, 2, 2, 1, 5), (0, 2, 2, 1, 5)])
    res = {name: simulate(w, unit_deployment(), name, capacity=8) for name in ("amax", "amin", "h-sf")}
    assert list(res["amax"].records["completion"]) == [2, 4]
    assert list(res["amin"].records["completion"]) == [2, 2]
    assert list(res["h-sf"].records["completion"]) == [2, 2]
    assert [r.summary()["evictions"] for r in res.values()] == [0, 0, 0]
    assert res["amin"].summary()["peak_kv"] == 8


def test_amin_overflow_evicts_least_generated_and_restarts() -> None:
    """A (s 2, o 5, [1, 5]) at 0, B (s 1, o 3, [1, 3]) at 1, C = 9.

    Epoch 0: A õ 1, k=1: 3 → start A.                      round 1: A 3
    Epoch 1: A generated 1 ≥ õ → õ_A 2 (rem 1, fp 3). B õ 1: k=1: 4 + 2 = 6 → start B.
                                                          round 2: A 4 + B 2 = 6
    Epoch 2: õ_A 3 (fp 4), õ_B 2 (fp 2); k=1: 5 + 3 = 8.    round 3: A 5 + B 3 = 8
    Epoch 3: õ_A 4 (fp 5), õ_B 3 (fp 3); k=1: 6 + 4 = 10 > 9: the next round overflows.
      Victims by ascending generated: B (2) before A (3) → evict B (wastes 2 tokens,
      frees its 4) → round 4: A 6. B waits with its raised õ_B = 3.
    Epoch 4: õ_A 5 (fp 6, rem 1). B (õ 3): k=1: 7 + 2 = 9, k=3: 4 → start B.
                                                          round 5: A 7 + B 2 = 9, A done (c 5)
    B runs alone, completes at 4 + 3 = 7. Σ c = 12.
    """
    w = workload([(0, 2, 5, 1, 5), (1, 1, 3, 1, 3)])
    pol = Amin()
    r = simulate(w, unit_deployment(), pol, capacity=9)
    rec = r.records
    assert list(rec["completion"]) == [5, 7]
    assert list(rec["evictions"]) == [0, 1]
    assert list(rec["wasted_tokens"]) == [0, 2]
    assert list(rec["first_admitted"]) == [0, 1]
    assert list(rec["start"]) == [0, 4]
    assert r.summary()["peak_kv"] == 9
    assert list(pol.pseudo_lengths) == [5, 3]


def test_amin_victim_order() -> None:
    """Residents (generated, started): 0: (3, 0), 1: (1, 2), 2: (1, 4), 3: (5, 1).

    Ascending generated: {1, 2} (1 token), then 0 (3), then 3 (5); between 1 and 2 the
    latest started (2, at 4) goes first → 2, 1, 0, 3. (The default rule, most recently
    started first, would give 2, 1, 3, 0.)
    """
    w = workload([(0, 1, 9, 1, 9)] * 4)
    pol = Amin()
    pol.reset(w, unit_deployment())
    v = view(100, [1, 1, 1, 1], {0: (3, 0.0), 1: (1, 2.0), 2: (1, 4.0), 3: (5, 1.0)}, [])
    assert list(pol.victims(v, v.resident)) == [2, 1, 0, 3]


def test_amin_raise_and_evicted_request_keeps_its_length() -> None:
    """B (s 1, o 5, [1, 5]) resident with 3 generated: õ_B raised from 1 to 3 + 1 = 4.

    Then B is back in the waiting queue (evicted), R (s 2, o 9, [9, 9]) resident with 1
    generated (fp 3, rem 8), C = 11. B with õ 4: k=1: 4 + 2 = 6, k=4: 7 + 5 = 12 > 11 →
    not admitted. (With õ_B back at ℓ = 1 it would fit: k=1: 6.)
    """
    w = workload([(0, 1, 5, 1, 5), (0, 2, 9, 9, 9)])
    pol = Amin()
    pol.reset(w, unit_deployment())
    d = pol.decide(view(11, [1, 2], {0: (3, 0.0)}, []))
    assert list(d.run) == [0]
    assert pol.pseudo_lengths[0] == 4
    d = pol.decide(view(11, [1, 2], {1: (1, 3.0)}, [0]))
    assert list(d.run) == [1]
    fresh = Amin()
    fresh.reset(w, unit_deployment())
    assert list(fresh.decide(view(11, [1, 2], {1: (1, 3.0)}, [0])).run) == [1, 0]


def test_interval_columns_required() -> None:
    w = Workload.from_frame(pd.DataFrame({"arrival": [0], "prompt": [1], "output": [2]}))
    for pol in (Amax(), Amin()):
        with pytest.raises(InputError, match="pred_lo"):
            pol.reset(w, unit_deployment())


@settings(max_examples=30, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.integers(0, 10), st.integers(1, 5), st.integers(1, 8), st.integers(0, 4), st.integers(0, 4)),
        min_size=1,
        max_size=12,
    ),
    slack=st.integers(0, 8),
)
def test_amin_finishes_and_reports_waste(data, slack) -> None:
    """Amin always finishes; every evicted run wasted ≥ 1 token; Amax never evicts."""
    rows = [(a, s, o, max(o - lo, 1), o + hi) for a, s, o, lo, hi in sorted(data)]
    w = workload(rows)
    cap = max(s + hi for _, s, _, _, hi in rows) + slack
    r = simulate(w, unit_deployment(), Amin(), capacity=cap)
    rec = r.records
    assert rec["finished"].all()
    assert (rec["wasted_tokens"] >= rec["evictions"]).all()
    assert r.summary()["peak_kv"] <= cap
    assert simulate(w, unit_deployment(), Amax(), capacity=cap).summary()["evictions"] == 0
