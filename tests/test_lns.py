"""Large-neighbourhood search (fluidopt.completion.lns) and the solve driver's improve stage."""

from __future__ import annotations

import numpy as np
import pytest

from fluidopt.completion.instance import schedule_problems
from fluidopt.completion.lns import NEIGHBOURHOODS, neighbourhood
from fluidopt.completion.solve import solve_tct
from fluidopt.completion.windows import prepare
from fluidopt.generators import kv_synthetic
from fluidopt.models.tct_cpsat import from_tct_data
from fluidopt.solver import SolveOptions, solve_cpsat


@pytest.mark.parametrize("kind", NEIGHBOURHOODS)
def test_neighbourhoods_free_at_most_size_distinct_requests(kind) -> None:
    rng = np.random.default_rng(0)
    starts = np.array([0, 0, 3, 5, 9, 12, 12, 20])
    output = np.array([4, 2, 6, 3, 5, 2, 8, 1])
    for size in (1, 3, 5, 8, 20):
        free = neighbourhood(kind, starts, output, size, rng)
        assert 1 <= free.shape[0] <= min(size, 8)
        assert np.unique(free).shape[0] == free.shape[0] and free.min() >= 0 and free.max() < 8


def test_window_neighbourhood_is_the_runs_meeting_a_window() -> None:
    """Runs (start, completion]: A (0, 4], B (10, 12], C (11, 20], D (30, 31]. A window
    grown around A's completion meets B before C: {A, B}; around B's or C's it meets the
    other of the two before A or D: {B, C}; around D's it meets C first: {C, D}."""
    starts, output = np.array([0, 10, 11, 30]), np.array([4, 2, 9, 1])
    rng = np.random.default_rng(1)
    seen = {tuple(neighbourhood("window", starts, output, 2, rng).tolist()) for _ in range(40)}
    assert seen == {(0, 1), (1, 2), (2, 3)}


def _serial(prep) -> np.ndarray:
    """A feasible but poor schedule: one request after another, by position."""
    n = int(sum(len(m) for m in prep.data.members))
    out = np.zeros(n, dtype=np.int64)
    arr = np.zeros(n, dtype=np.int64)
    for g, members in enumerate(prep.data.members):
        out[np.asarray(members)] = prep.data.output[g]
        arr[np.asarray(members)] = prep.data.arrival[g]
    starts = np.zeros(n, dtype=np.int64)
    t = 0
    for i in range(n):
        starts[i] = max(t, arr[i])
        t = starts[i] + out[i]
    return starts


def test_a_neighbourhood_of_every_request_proves_the_optimum() -> None:
    """Three requests (s 1, o 2) with C = 5: the optimum 9 is found at once; a neighbourhood
    that frees all three finds nothing better, which proves it."""
    import pandas as pd

    from fluidopt.workload import Workload

    w = Workload.from_frame(pd.DataFrame({"arrival": [0, 0, 0], "prompt": [1, 1, 1], "output": [2, 2, 2]}))
    prep = prepare(w, 5, executor=False)
    res = solve_cpsat(from_tct_data(prep.data, hint=np.array([0, 2, 4])), SolveOptions(), lns_seconds=10.0,
                      lns_only=True)
    assert res.info["lns"]["stopped"] == "optimal" and res.info["lns"]["best_tct"] == 9
    assert res.status == "optimal" and res.bound == 9 and res.info["lns"]["seconds"] < 10


def test_lns_from_a_poor_schedule_improves_it_and_stays_feasible() -> None:
    w, C = kv_synthetic(1, 4, n=14)
    prep = prepare(w, C, horizon="serial", executor=False)
    start = _serial(prep)
    assert not schedule_problems(w, C, start)
    inst = from_tct_data(prep.data, hint=start)
    res = solve_cpsat(inst, SolveOptions(), lns_seconds=3.0, lns_only=True)
    assert res.bound is None or res.status == "optimal"  # an improvement proves nothing unless it says so
    better = np.asarray(res.solution)
    assert not schedule_problems(w, C, better)
    o = np.asarray(w.output)
    assert float(np.sum(better + o)) < float(np.sum(start + o))
    stats = res.info["lns"]
    assert stats["iterations"] >= 1 and stats["improvements"] >= 1
    assert stats["best_tct"] == float(np.sum(better + o)) < stats["start_tct"]


@pytest.mark.parametrize("backend", ["highs", "cpsat"])
def test_improve_stage_never_returns_worse_than_the_incumbent(backend) -> None:
    w, C = kv_synthetic(2, 6, n=25)
    events: list[tuple[str, float | None]] = []
    sol = solve_tct(w, C, backend=backend, time_limit=4, improve=0.5,
                    progress=lambda stage, t, obj, bnd: events.append((stage, obj)))
    assert sol.objective_tct <= sol.info["incumbent_tct"]
    assert sol.info["check"]["accepted"] and sol.info["check"]["tct_executor"] == sol.objective_tct
    stages = [s for s, _ in events]
    assert stages[0] == "prepare" and stages[-1] == "done"
    assert stages.index("improve") < len(stages) - 1 - stages[::-1].index("search")  # improve, then search
    objs = [o for _, o in events if o is not None]
    assert objs == sorted(objs, reverse=True)  # the reported best schedule never gets worse
    assert sol.info["improve"] is not None and sol.info["improve"]["stopped"] in ("time", "settled", "optimal")


def test_improve_off_runs_no_neighbourhood_search() -> None:
    w, C = kv_synthetic(1, 2, n=20)
    sol = solve_tct(w, C, backend="cpsat", time_limit=2, improve=0.0)
    assert sol.info["improve"] is None
