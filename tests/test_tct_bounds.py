"""Lower bounds on the total completion time never exceed the MIP optimum."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluidopt.bounds.tct import lower_bounds, lp_bound, srpt_completions, trivial_bound, volume_bound
from fluidopt.tct import solve_tct
from fluidopt.workload import Workload


def wl(arrival, prompt, output) -> Workload:
    return Workload.from_frame(pd.DataFrame({"arrival": arrival, "prompt": prompt, "output": output}))


def test_srpt_hand_computed() -> None:
    """Rate 2; job A (size 10) at 0, job B (size 2) at 1.

    A runs alone in [0, 1] (8 left = 4 time units); B arrives needing 1 unit, shorter,
    runs in [1, 2]; A finishes at 2 + 4 = 6.
    """
    np.testing.assert_allclose(srpt_completions(np.array([0, 1]), np.array([10.0, 2.0]), 2.0), [2.0, 6.0])


def test_volume_bound_hand_computed() -> None:
    """Three requests at 0 with s = 1, o = 2 (V = 2 + 3 = 5 each), C = 5.

    SRPT on a machine of speed 5: completions 1, 2, 3; a + o = 2, 2, 2; the bound is
    max(1,2) + max(2,2) + max(3,2) = 7, while the trivial bound is 6. The optimum is 9:
    two requests together need 2+2 then 3+3 = 6 > 5, so at most one runs at a time
    except for ramp overlaps: starts 0, 1, 2 load rounds 1..4 with 2, 3+2, 3+2, 3 ≤ 5
    and complete at 2, 3, 4.
    """
    w = wl([0, 0, 0], [1, 1, 1], [2, 2, 2])
    assert trivial_bound(w) == 6
    assert volume_bound(w, 5) == 7
    assert solve_tct(w, 5, executor=False).objective_tct == 9


instances = st.integers(min_value=1, max_value=5).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 4), min_size=n, max_size=n).map(sorted),
        st.lists(st.integers(1, 4), min_size=n, max_size=n),
        st.lists(st.integers(1, 6), min_size=n, max_size=n),
        st.integers(0, 6),
    )
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances)
def test_every_bound_is_at_most_the_optimum(inst) -> None:
    arrival, prompt, output, slack = inst
    w = wl(arrival, prompt, output)
    capacity = int(w.peak_footprint.max()) + slack
    opt = solve_tct(w, capacity, executor=False)
    assert opt.status == "optimal"
    bounds = lower_bounds(w, capacity)
    assert bounds["trivial"] <= bounds["volume"] <= opt.objective_tct
    assert bounds["lp"] <= opt.objective_tct
    assert bounds["best"] <= opt.objective_tct


def test_lp_bound_hand_computed_single_request() -> None:
    """One request arriving at 2 with o = 3 fits alone: the LP starts it at 2, Σ c = 5."""
    res = lp_bound(wl([2], [1], [3]), 10)
    assert res["bound"] == 5
