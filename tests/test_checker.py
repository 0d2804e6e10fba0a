"""Schedule checker: MIP schedules replay through the executor with the same Σ c_i."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluidopt.bounds.checker import check_schedule
from fluidopt.deployment import unit_deployment
from fluidopt.executor.engine import simulate
from fluidopt.executor.policy import make_policy
from fluidopt.tct import solve_tct
from fluidopt.workload import Workload


def wl(arrival, prompt, output, **extra) -> Workload:
    return Workload.from_frame(pd.DataFrame({"arrival": arrival, "prompt": prompt, "output": output, **extra}))


def test_hand_schedule_is_accepted() -> None:
    """Three requests (s = 1, o = 2), C = 5, starts 0, 1, 2: loads 2, 5, 5, 3; Σ c = 2 + 3 + 4."""
    res = check_schedule(wl([0, 0, 0], [1, 1, 1], [2, 2, 2]), 5, np.array([0, 1, 2]))
    assert res.accepted, res.problems
    assert res.tct_executor == res.tct_schedule == 9
    assert res.peak_kv == 5


def test_overfull_schedule_is_rejected() -> None:
    """Starts 0, 0, 2: round 2 holds 3 + 3 = 6 > 5."""
    res = check_schedule(wl([0, 0, 0], [1, 1, 1], [2, 2, 2]), 5, np.array([0, 0, 2]))
    assert not res.accepted
    assert any("round 2 holds 6" in p for p in res.problems)
    assert any("executor rejected" in p for p in res.problems)


def test_start_before_arrival_is_rejected() -> None:
    res = check_schedule(wl([0, 3], [1, 1], [2, 2]), 10, {0: 0, 1: 1})
    assert not res.accepted
    assert any("before its arrival" in p for p in res.problems)


def test_idle_gap_schedule_is_replayed_exactly() -> None:
    """A schedule that leaves rounds empty (start 5 although free at 0) is still replayed as given."""
    res = check_schedule(wl([0, 0], [2, 1], [3, 1]), 20, {0: 5, 1: 2})
    assert res.accepted, res.problems
    assert res.tct_executor == (5 + 3) + (2 + 1)


instances = st.integers(min_value=2, max_value=6).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 3), min_size=n, max_size=n).map(sorted),
        st.lists(st.integers(1, 4), min_size=n, max_size=n),
        st.lists(st.integers(1, 6), min_size=n, max_size=n),
        st.integers(0, 5),
    )
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances)
def test_mip_schedules_are_accepted_and_no_policy_beats_the_optimum(inst) -> None:
    arrival, prompt, output, slack = inst
    o = np.asarray(output)
    w = wl(arrival, prompt, output, pred_lo=np.maximum(o - 1, 1), pred_hi=o + 2)
    capacity = int(w.peak_footprint.max() + 2) + slack  # +2: Amax must fit s + u
    opt = solve_tct(w, capacity)
    assert opt.status == "optimal"
    check = check_schedule(w, capacity, opt.starts)
    assert check.accepted, check.problems
    assert check.tct_executor == opt.objective_tct
    for name in ("mc-sf", "h-sf", "sorted-f", "fcfs", "amax", "amin"):
        run = simulate(w, unit_deployment(capacity), make_policy(name))
        assert run.records["finished"].all()
        assert run.summary()["tct"] >= opt.objective_tct, name


def test_fixed_schedule_policy_needs_every_start() -> None:
    from fluidopt.errors import InputError

    with pytest.raises(InputError, match="no start epoch"):
        simulate(wl([0, 0], [1, 1], [1, 1]), unit_deployment(5), make_policy("fixed-schedule", starts={0: 0}))
