"""Serial list schedules, their local search and the schedules from Lagrangian prices."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluidopt.bounds.checker import check_schedule
from fluidopt.bounds.lagrangian import lagrangian_bound
from fluidopt.bounds.ramp import memory_load, ramp_instance
from fluidopt.search.lagrangian_heuristic import lagrangian_schedule
from fluidopt.search.list_schedule import MemoryBoard, SerialSchedule, priority_order, serial_schedule
from fluidopt.search.perturbation import perturbation_search
from fluidopt.workload import Workload

REPO = Path(__file__).resolve().parents[1]


def random_arrays(rng: np.random.Generator, n: int, spread: bool):
    s = rng.integers(1, 300, n)
    o = rng.integers(1, 150, n)
    a = np.sort(rng.integers(0, 4 * n, n)) if spread else np.zeros(n, dtype=np.int64)
    return a, s, o, int((s + o).max() * rng.uniform(1.0, 5.0))


def feasible(a, s, o, C, starts) -> bool:
    return bool(np.all(starts >= a) and memory_load(starts, s, o, int((starts + o).max())).max() <= C)


def test_earliest_start_matches_a_scan_of_every_epoch() -> None:
    rng = np.random.default_rng(0)
    for _ in range(40):
        C = int(rng.integers(20, 60))
        board = MemoryBoard(C, 8)
        placed: list[tuple[int, int, int]] = []
        for _ in range(int(rng.integers(1, 8))):
            arrival, s = int(rng.integers(0, 10)), int(rng.integers(1, 8))
            o = int(rng.integers(1, C - s + 1))
            t = board.earliest(arrival, s, o)
            expected = arrival
            while True:  # first epoch at which every round of the ramp fits
                trial = [*placed, (expected, s, o)]
                load = memory_load(*(np.array(x) for x in zip(*trial)), expected + o + 1)
                if load.max() <= C:
                    break
                expected += 1
            assert t == expected
            board.place(t, s, o)
            placed.append((t, s, o))


@pytest.mark.parametrize("spread", [False, True])
def test_serial_schedules_are_feasible_and_reorder_matches_a_fresh_build(spread: bool) -> None:
    rng = np.random.default_rng(1 + spread)
    a, s, o, C = random_arrays(rng, 150, spread)
    inst = ramp_instance(a, s, o, C)
    base = SerialSchedule(inst, priority_order(inst.volume), every=16)
    assert feasible(a, s, o, C, base.starts)
    for _ in range(10):
        order = base.order.copy()
        p = int(rng.integers(0, 140))
        order[p : p + 10] = rng.permutation(order[p : p + 10])
        rebuilt = base.reorder(order)
        np.testing.assert_array_equal(rebuilt.starts, serial_schedule(inst, order))
        assert rebuilt.tct == float(np.sum(rebuilt.starts + o))


def test_perturbation_search_never_returns_a_worse_schedule() -> None:
    rng = np.random.default_rng(3)
    a, s, o, C = random_arrays(rng, 80, True)
    inst = ramp_instance(a, s, o, C)
    key = rng.permutation(80).astype(float)  # a poor order, room to improve
    starts, info = perturbation_search(inst, key, steps=60, seed=1)
    assert info["tct"] == float(np.sum(starts + o)) <= info["start_tct"]
    assert feasible(a, s, o, C, starts)


def test_ctrl_c_ends_the_perturbation_search_with_its_best_schedule() -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGINT is delivered to the main thread only")
    rng = np.random.default_rng(4)
    a, s, o, C = random_arrays(rng, 200, False)
    inst = ramp_instance(a, s, o, C)
    key = rng.permutation(200).astype(float)
    timer = threading.Timer(1.0, os.kill, args=(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        starts, info = perturbation_search(inst, key, time_limit=60.0, seed=1)
    finally:
        timer.cancel()
    assert info["interrupted"] and info["seconds"] < 30
    assert info["tct"] == float(np.sum(starts + o)) <= info["start_tct"]
    assert feasible(a, s, o, C, starts)


@pytest.mark.parametrize("spread", [False, True])
def test_lagrangian_schedule_is_replayed_and_beats_its_incumbent(spread: bool) -> None:
    rng = np.random.default_rng(5 + spread)
    a, s, o, C = random_arrays(rng, 60, spread)
    bound, info = lagrangian_bound(a, s, o, C, temperatures=(1.0,), iterations=20)
    inst = ramp_instance(a, s, o, C)
    incumbent = serial_schedule(inst, np.arange(60))
    starts, sched = lagrangian_schedule(a, s, o, C, info["prices"], time_limit=0.5, incumbents={"fifo": incumbent})
    w = Workload.from_frame(pd.DataFrame({"arrival": a, "prompt": s, "output": o}))
    check = check_schedule(w, C, starts)
    assert check.accepted, check.problems
    assert bound <= check.tct_executor == sched["tct"] <= float(np.sum(incumbent + o))


def test_benchmark_quick(tmp_path: Path) -> None:
    """``benchmarks/trace_bounds/run.py --quick`` (200 requests of azure-conv, all at 0)."""
    out = tmp_path / "quick.json"
    res = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "trace_bounds" / "run.py"), "--quick", "--arrivals", "zero",
         "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr
    run = json.loads(out.read_text())["runs"]["zero"]
    assert run["schedule"]["replayed"]
    best = run["schedule"]["latency"]
    for b in run["bounds"].values():
        assert b["latency"] <= best
    for p in run["policies"].values():
        assert best <= p["latency"]
    assert 0 <= run["certified_gap"] <= run["volume_gap"]
    assert "certified gap of the best schedule" in res.stdout


def test_an_infeasible_incumbent_only_serves_as_an_order() -> None:
    rng = np.random.default_rng(9)
    a, s, o, C = random_arrays(rng, 30, False)
    everything_at_once = np.zeros(30, dtype=np.int64)  # overflows: Σ (s + 1) > C here
    assert (s + 1).sum() > C
    starts, info = lagrangian_schedule(a, s, o, C, np.zeros(1), incumbents={"bad": everything_at_once})
    assert "bad (as given)" not in info["candidates"] and "bad" in info["candidates"]
    assert feasible(a, s, o, C, starts)
