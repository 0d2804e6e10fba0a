"""Executor regression check: identical simulated results before and after an engine change.

Runs every registered policy on many seeded workloads (Azure-conv lengths on the three
Llama deployments at a capacity tight enough to evict, and [KV]-style small instances on
the unit deployment), with the event log on, and stores every run's per-request records,
event log and run-level numbers. ``--compare`` reruns the same grid and reports the first
difference of every run that is not bit-identical (exit 1), so an engine refactoring can
be checked against the engine before it.

Usage::

    python benchmarks/executor/regression.py --save /tmp/before.pkl     # old engine
    python benchmarks/executor/regression.py --compare /tmp/before.pkl  # new engine
    python benchmarks/executor/regression.py --quick --save ...         # a smaller grid
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: (deployment, capacity) pairs of the trace-length runs; capacities force evictions.
TRACE_DEPLOYMENTS = (("llama2-7b-a100", 30_000), ("llama2-7b-a100-linear", 24_000), ("llama2-70b-2xa100", 16_492))


def _policy(name: str, workload: Any, capacity: int, deployment: Any) -> Any:
    from fluidopt.executor.engine import simulate
    from fluidopt.executor.policy import make_policy

    if name == "fixed-schedule":
        hsf = simulate(workload, deployment, "h-sf", capacity=capacity).records
        return make_policy(name, starts=dict(zip(hsf["id"].tolist(), hsf["start"].astype(int).tolist())))
    if name == "wait":
        return make_policy("wait", thresholds={0: 3, 1: 2})
    if name == "nested-wait":
        return make_policy("nested-wait", segments=[(100, 3), (1_000_000, 1)])
    return make_policy(name)


def _trace_workload(n: int, rate: float, seed: int) -> Any:
    from fluidopt.traces import load_workload
    from fluidopt.workload import Workload

    az = load_workload("azure-conv")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(az), n)
    out = az.output[idx]
    lo = np.maximum(out - rng.integers(0, 40, n), 1)
    frame = pd.DataFrame(
        {
            "arrival": np.cumsum(rng.exponential(1 / rate, n)),
            "prompt": az.prompt[idx],
            "output": out,
            "pred": np.maximum(out + rng.integers(-30, 30, n), 1),
            "pred_lo": lo,
            "pred_hi": out + rng.integers(0, 40, n),
            "type": (out > 100).astype(int),
        }
    )
    return Workload.from_frame(frame, name=f"azure-lengths-{seed}")


def _unit_workload(n: int, seed: int) -> tuple[Any, int]:
    from fluidopt.workload import Workload

    rng = np.random.default_rng(seed)
    out = rng.integers(1, 40, n)
    frame = pd.DataFrame(
        {
            "arrival": np.cumsum(rng.integers(0, 3, n)).astype(float),
            "prompt": rng.integers(1, 30, n),
            "output": out,
            "pred": np.maximum(out + rng.integers(-5, 5, n), 1),
            "pred_lo": np.maximum(out - rng.integers(0, 5, n), 1),
            "pred_hi": out + rng.integers(0, 5, n),
            "type": (out > 20).astype(int),
        }
    )
    w = Workload.from_frame(frame, name=f"unit-{seed}")
    return w, int((w.prompt + w.output).max()) + int(rng.integers(20, 200))


def grid(quick: bool) -> Iterator[tuple[str, str, Any, Any, int, dict[str, Any]]]:
    """(key, policy, workload, deployment, capacity, extra params) of every run."""
    import fluidopt.executor.policies  # noqa: F401
    from fluidopt.deployment import load_deployment, unit_deployment
    from fluidopt.executor.policy import POLICIES

    names = sorted(POLICIES)
    seeds = range(2) if quick else range(4)
    n = 150 if quick else 400
    for seed in seeds:
        w = _trace_workload(n, rate=6.0, seed=seed)
        for dep_name, cap in TRACE_DEPLOYMENTS:
            dep = load_deployment(dep_name)
            for name in names:
                if name == "fixed-schedule":
                    continue  # unit-time only
                yield f"{name}/{dep_name}/{seed}", name, w, dep, cap, {}
            yield f"sarathi-256-1024/{dep_name}/{seed}", "sarathi", w, dep, cap, {"chunk_size": 256, "token_budget": 1024}
        uw, ucap = _unit_workload(60 if quick else 120, seed)
        for name in names:
            yield f"{name}/unit/{seed}", name, uw, unit_deployment(), ucap, {}


def run_all(quick: bool) -> dict[str, Any]:
    from fluidopt.executor.engine import simulate
    from fluidopt.executor.policy import make_policy

    out: dict[str, Any] = {}
    for key, name, w, dep, cap, extra in grid(quick):
        pol = make_policy(name, **extra) if extra else _policy(name, w, cap, dep)
        res = simulate(w, dep, pol, capacity=cap, event_log=True)
        out[key] = {"records": res.records, "events": res.events, "run": dict(res.run), "params": res.params}
    return out


def first_difference(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """Where two stored runs differ (None if bit-identical)."""
    for part in ("records", "events"):
        try:
            pd.testing.assert_frame_equal(a[part], b[part], check_exact=True)
        except AssertionError as exc:
            return f"{part}: {str(exc).splitlines()[0]}"
    if a["run"] != b["run"]:
        keys = [k for k in a["run"] if a["run"].get(k) != b["run"].get(k)]
        ra, rb = a["run"], b["run"]
        return "run: " + ", ".join(f"{k} {ra.get(k)!r} → {rb.get(k)!r}" for k in keys)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer seeds and requests")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--save", type=Path, help="store the runs in this pickle file")
    g.add_argument("--compare", type=Path, help="compare with the runs stored in this file")
    args = ap.parse_args(argv)
    t = time.perf_counter()
    runs = run_all(args.quick)
    print(f"{len(runs)} runs in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    if args.save:
        args.save.write_bytes(pickle.dumps(runs))
        return 0
    old = pickle.loads(args.compare.read_bytes())
    problems = []
    new = sorted(set(runs) - set(old))  # e.g. a policy registered since: nothing to compare
    if new:
        print(f"{len(new)} runs not in the stored file (not compared): {', '.join(new[:5])}{' …' if len(new) > 5 else ''}")
    for key in sorted(set(old) | set(runs)):
        if key not in runs:
            problems.append(f"{key}: only in the stored runs")
            continue
        if key not in old:
            continue
        diff = first_difference(old[key], runs[key])
        if diff:
            problems.append(f"{key}: {diff}")
    for p in problems:
        print(p)
    compared = len(set(runs) & set(old))
    print(f"{compared - len(problems)} of {compared} compared runs identical")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
