"""The route for instances too large for the exact programs (fluidopt.completion.at_scale)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fluidopt.completion.at_scale import EXACT_SIZE_LIMIT, exact_size
from fluidopt.completion.instance import schedule_problems
from fluidopt.completion.solve import solve_tct
from fluidopt.generators import kv_synthetic
from fluidopt.traces import load_workload
from fluidopt.workload import Workload

C_A100 = 118_784


def test_auto_picks_the_exact_programs_for_kv_instances_and_the_lagrangian_route_for_traces() -> None:
    w, _ = kv_synthetic(1, 7)  # n = 40–60, C ≤ 50
    assert exact_size(w) <= EXACT_SIZE_LIMIT
    trace = load_workload("azure-conv").head(200)
    assert exact_size(trace) > EXACT_SIZE_LIMIT


def test_lagrangian_route_brackets_the_optimum_of_small_instances() -> None:
    """On instances the exact programs prove, the route's bound is at most the optimum and
    its schedule at least it; the schedule replays."""
    rng = np.random.default_rng(4)
    for trial in range(12):
        n, C = int(rng.integers(2, 6)), int(rng.integers(8, 16))
        s = rng.integers(1, 4, n)
        o = np.array([rng.integers(1, C - x + 1) for x in s])
        a = np.zeros(n) if trial % 2 else np.sort(rng.integers(0, 6, n))
        w = Workload.from_frame(pd.DataFrame({"arrival": a, "prompt": s, "output": o}))
        opt = solve_tct(w, C, executor=False, improve=0, check=False)
        assert opt.status == "optimal"
        sol = solve_tct(w, C, method="lagrangian", time_limit=2)
        assert sol.info["method"] == "lagrangian"
        assert sol.best_bound <= opt.objective_tct <= sol.objective_tct
        assert not schedule_problems(w, C, sol.starts)
        assert sol.info["check"]["accepted"] and sol.info["check"]["tct_executor"] == sol.objective_tct


def test_a_trace_slice_gets_a_certified_gap_and_beats_or_ties_every_incumbent() -> None:
    w = load_workload("azure-conv").head(300)
    w = w.replace(arrival=np.zeros(len(w)))
    sol = solve_tct(w, C_A100, time_limit=8)
    assert sol.info["method"] == "lagrangian"
    assert sol.info["check"]["accepted"]
    assert sol.objective_tct <= min(sol.info["policy_tct"].values())
    bounds = sol.info["bounds"]
    assert bounds["trivial"] <= bounds["volume"] and sol.best_bound == max(bounds.values())
    assert 0 <= sol.gap < 0.05  # measured ~0.5% at this size


def test_score_and_bounds_run_on_a_trace_slice(cli) -> None:
    res = cli("score", "-w", "azure-conv", "-n", "250", "-C", C_A100, "--time-limit", "5", "-p", "mc-sf,fcfs", "--json")
    assert res.code == 0, res.err
    out = res.json()
    assert out["best_latency"] >= out["bound_latency"] > 0
    for row in out["policies"].values():
        assert 1.0 <= row["ratio_to_best"] <= row["ratio_to_bound"]
    res = cli("bounds", "-w", "azure-conv", "-n", "250", "-C", C_A100, "--time-limit", "3", "--json")
    assert res.code == 0, res.err
    b = res.json()
    assert b["lp"] is None  # too large for the time-indexed program
    assert b["best"] == max(b["trivial"], b["volume"], b["mean_busy_time"], b["lagrangian"])


def test_ctrl_c_during_the_price_search_returns_the_bracket_so_far(sigint) -> None:
    import os
    import signal
    import threading

    w = load_workload("azure-conv").head(300)
    w = w.replace(arrival=np.zeros(len(w)))
    # the price search takes seconds here (3 s on our machine): Ctrl-C 0.3 s into it
    timer = threading.Timer(0.3, os.kill, args=(os.getpid(), signal.SIGINT))

    def progress(stage, *_):
        if stage == "bound" and timer.ident is None:
            timer.start()

    try:
        sol = solve_tct(w, C_A100, time_limit=120, progress=progress)
    finally:
        timer.cancel()
    assert sol.status == "interrupted" and sol.info["lagrangian_stopped"] == "interrupted"
    assert sol.seconds < 60
    assert sol.best_bound <= sol.objective_tct <= min(sol.info["policy_tct"].values())
    assert sol.info["check"]["accepted"]
