"""The CP-SAT backend of the completion-time program: same optimum as HiGHS, replayable
schedules, time limits, Ctrl-C, and a worker process that never loads highspy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest

from fluidopt.bounds.checker import check_schedule
from fluidopt.generators import kv_synthetic
from fluidopt.models.tct_cpsat import CpsatInstance, canonical_starts, symmetry_chains
from fluidopt.tct import memory_profile, solve_tct
from fluidopt.workload import Workload

pytest.importorskip("ortools")


def wl(arrival, prompt, output) -> Workload:
    return Workload.from_frame(pd.DataFrame({"arrival": arrival, "prompt": prompt, "output": output}))


def random_instance(seed: int, n: int, arrival_model: int) -> tuple[Workload, int]:
    """Small [KV]-like instances (C 10–16, s 1–3, o 1–8) with repeated (s, o) pairs, so
    that the symmetry chains are exercised; model 2 spreads arrivals over a few rounds."""
    rng = np.random.default_rng(seed)
    C = int(rng.integers(10, 17))
    s = rng.integers(1, 4, n)
    o = rng.integers(1, 9, n)
    if n >= 3:  # force one repeated (s, o) pair with different arrivals
        s[1], o[1] = s[0], o[0]
    a = np.zeros(n) if arrival_model == 1 else np.floor(np.cumsum(rng.exponential(1.0, n)))
    return wl(a, s, o), C


@pytest.mark.parametrize("arrival_model", [1, 2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cpsat_and_highs_agree_on_the_optimum(arrival_model, seed) -> None:
    n = 5 + seed % 3  # 5, 6, 7 requests
    w, C = random_instance(100 * arrival_model + seed, n, arrival_model)
    highs = solve_tct(w, C, time_limit=60, executor=False)
    cpsat = solve_tct(w, C, time_limit=60, executor=False, backend="cpsat")
    assert highs.status == "optimal" and cpsat.status == "optimal"
    assert cpsat.objective_tct == highs.objective_tct
    assert cpsat.best_bound == cpsat.objective_tct and cpsat.gap == 0.0
    check = check_schedule(w, C, cpsat.starts)
    assert check.accepted, check.problems
    assert check.tct_executor == cpsat.objective_tct


def test_without_symmetry_chains_hint_or_lp_bound_the_optimum_is_the_same() -> None:
    """The chains (the only dominance rule) and the bounds cut off no optimal schedule."""
    w = wl([0, 0, 1, 2, 2, 3], [2, 2, 2, 1, 1, 3], [4, 4, 4, 3, 3, 2])
    C = 11
    ref = solve_tct(w, C, time_limit=60, executor=False)
    plain = solve_tct(w, C, time_limit=60, executor=False, backend="cpsat", mip_start=False, lp_lower_bound=False,
                      cpsat={"symmetry": False, "linearization_level": 0})
    full = solve_tct(w, C, time_limit=60, executor=False, backend="cpsat")
    assert ref.status == plain.status == full.status == "optimal"
    assert ref.objective_tct == plain.objective_tct == full.objective_tct
    assert full.info["cpsat_n_symmetry_rows"] == 3 and plain.info["cpsat_n_symmetry_rows"] == 0


def test_canonical_starts_keep_the_memory_profile_and_the_arrivals() -> None:
    inst = CpsatInstance(20, [0, 0, 1, 3], [1, 2, 2, 2], [3, 3, 3, 3], [0, 0, 1, 3], [30, 30, 30, 30])
    assert symmetry_chains(inst) == [[1, 2, 3]]
    starts = [0, 5, 9, 3]  # request 3 (arrival 3) starts first in its class
    canon = canonical_starts(inst, starts)
    assert canon == [0, 3, 5, 9]
    assert all(t >= a for t, a in zip(canon, inst.arrival))
    w = wl(inst.arrival, inst.prompt, inst.output)
    np.testing.assert_array_equal(memory_profile(w, np.array(starts)), memory_profile(w, np.array(canon)))


def test_time_limited_cpsat_solve_reports_incumbent_bound_and_gap() -> None:
    w, C = kv_synthetic(1, 93)  # 40–60 requests: does not close in a second
    sol = solve_tct(w, C, time_limit=1.0, backend="cpsat", lp_lower_bound=False)
    assert sol.status == "time_limit"
    assert sol.objective_tct is not None and sol.objective_tct <= sol.info["incumbent_tct"]
    assert sol.best_bound is not None and sol.best_bound < sol.objective_tct
    assert sol.gap == pytest.approx((sol.objective_tct - sol.best_bound) / sol.objective_tct)
    assert sol.info["solve_seconds"] < 30
    assert check_schedule(w, C, sol.starts).accepted


def test_ctrl_c_stops_the_worker_and_returns_what_was_found(sigint) -> None:
    w, C = kv_synthetic(2, 101)
    timer = threading.Timer(4.0, os.kill, args=(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        sol = solve_tct(w, C, time_limit=120.0, backend="cpsat", lp_lower_bound=False)
    finally:
        timer.cancel()
    assert sol.status == "interrupted"
    assert sol.info["solve_seconds"] < 60
    assert sol.objective_tct is not None and sol.best_bound is not None
    assert check_schedule(w, C, sol.starts).accepted


def test_ctrl_c_before_the_worker_can_take_it_is_passed_on_once_it_can(sigint, tmp_path, monkeypatch) -> None:
    """A worker that takes a second to start (its Python would die of a SIGINT then):
    Ctrl-C in that second reaches it only once it has said it is ready, and the solve
    returns interrupted with an answer instead of failing."""
    from fluidopt.completion.windows import prepare
    from fluidopt.models.tct_cpsat import from_tct_data
    from fluidopt.solver import SolveOptions, solve_cpsat

    slow = tmp_path / "slow-python"
    slow.write_text(f"#!{sys.executable}\nimport os, sys, time\ntime.sleep(1.0)\n"
                    f"os.execv({sys.executable!r}, [{sys.executable!r}, *sys.argv[1:]])\n")
    slow.chmod(0o755)
    w, C = kv_synthetic(2, 101)
    prep = prepare(w, C)
    inst = from_tct_data(prep.data, hint=prep.incumbent)
    monkeypatch.setattr(sys, "executable", str(slow))
    timer = threading.Timer(0.3, os.kill, args=(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        res = solve_cpsat(inst, SolveOptions(time_limit=60.0))
    finally:
        timer.cancel()
    assert res.status == "interrupted" and res.info["wall_seconds"] < 30
    assert res.message == "interrupted before the search"  # the worker's own answer


@pytest.mark.parametrize("backend", ["highs", "cpsat"])
def test_ctrl_c_during_the_list_search_skips_the_search(monkeypatch, backend: str) -> None:
    import fluidopt.search.perturbation as perturbation

    real = perturbation.perturbation_search

    def stopped(*args, **kwargs):  # as if Ctrl-C came after a few steps
        starts, info = real(*args, **{**kwargs, "time_limit": None, "steps": 5, "patience": None})
        return starts, {**info, "interrupted": True}

    monkeypatch.setattr(perturbation, "perturbation_search", stopped)
    w, C = kv_synthetic(2, 101)
    sol = solve_tct(w, C, time_limit=60.0, backend=backend, lp_lower_bound=False)
    assert sol.status == "interrupted" and sol.info["list_search"]["interrupted"]
    assert sol.info["solve_seconds"] == 0.0 and sol.info["improve"] is None
    assert check_schedule(w, C, sol.starts).accepted


def test_worker_never_loads_highspy() -> None:
    request = {"instance": CpsatInstance(5, [0, 0, 0], [1, 1, 1], [2, 2, 2], [0, 0, 0], [6, 6, 6]).to_json(),
               "params": {"time_limit": 10}}
    code = (
        "import json, sys\n"
        "from fluidopt.cpsat_worker import solve_request\n"
        f"ans = solve_request(json.loads({json.dumps(json.dumps(request))}))\n"
        "assert 'highspy' not in sys.modules, 'highspy loaded'\n"
        "print(json.dumps(ans))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    ans = json.loads(out.stdout)
    assert ans["status"] == "optimal" and ans["objective"] == 9 and sorted(ans["starts"]) == [0, 1, 2]


def test_unknown_backend_is_an_input_error() -> None:
    from fluidopt.errors import InputError

    with pytest.raises(InputError, match="unknown backend"):
        solve_tct(wl([0], [1], [1]), 5, backend="gurobi")
    for share in (0.0, 1.0):
        with pytest.raises(InputError, match="bound_share"):
            solve_tct(wl([0], [1], [1]), 5, bound_share=share)


def test_cli_solve_with_cpsat_keeps_the_json_fields(cli, small) -> None:
    res = cli("solve", "-w", small, "-C", 5, "--backend", "cpsat", "--json")
    assert res.code == 0, res.err
    out = res.json()
    for key in ("status", "objective_tct", "best_bound", "gap", "seconds", "n_requests", "starts"):
        assert key in out
    assert out["status"] == "optimal" and out["objective_tct"] == 9 and out["gap"] == 0
    assert out["backend"] == "cpsat"
    assert sorted(out["starts"].values()) == [0, 1, 2]
    assert out["check"]["accepted"] and out["check"]["tct_executor"] == 9


@pytest.mark.parametrize(
    "args,needle",
    [
        (("-w", "no-such-workload", "-C", "5"), "unknown workload"),
        (("-C", "2"), "more than the capacity 2"),
        (("-C", "5", "--export", "model.txt"), ".mps or .lp"),
        (("-C", "5", "--builder", "arrays"), "--backend highs only"),
    ],
)
def test_cli_bad_input_with_cpsat_is_one_line_exit_2(cli, small, args, needle) -> None:
    if "-w" not in args:
        args = ("-w", small, *args)
    highs = cli("solve", *args)
    res = cli("solve", *args, "--backend", "cpsat")
    assert res.code == 2
    assert needle in res.err
    assert len(res.err.strip().splitlines()) == 1
    if "--builder" not in args:
        assert res.err == highs.err and highs.code == 2


def test_a_loose_gap_stops_cpsat_early_and_says_so() -> None:
    w, C = kv_synthetic(1, 0, 8)
    sol = solve_tct(w, C, gap=0.5, time_limit=30, backend="cpsat", lp_lower_bound=False)
    assert sol.status in ("gap_limit", "optimal")
    if sol.status == "gap_limit":
        assert 0 < sol.gap <= 0.5 and sol.best_bound < sol.objective_tct
