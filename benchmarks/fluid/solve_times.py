"""Solve times of the fluid LP (Pyomo and CVXPY) and the WAIT threshold programs
for 10 and 50 random types on llama2-7b-a100.

Run: python benchmarks/fluid/solve_times.py [--repeats 5]
Prints one JSON object: per (model, m) the median and max wall-clock seconds of
the solve (``SolveResult.seconds``/``WaitSolution.seconds``) and of build+solve, the
ratio of each median to the Pyomo fluid LP's in the same run, and the load average.
For WAIT the "seconds" cover the whole calibration of one instance (for the latency
proxy: every MILP of the scan plus the ±1 moves).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from fluidopt.bounds.fluid import FluidArrays, FluidType, fluid_benchmark, fluid_lp
from fluidopt.calibrate import solve_wait
from fluidopt.deployment import load_deployment


def instance(m: int, seed: int, frac: float, short: bool = False) -> list[FluidType]:
    """m types: prompt 50..2000, output 5..400 (``short``: prompt 10..100, output 2..20, so
    that the pipeline rule Σ_j V_j ≤ C can hold for 50 types), rates scaled to ``frac``
    of the stable region's edge."""
    rng = np.random.default_rng(seed)
    dep = load_deployment("llama2-7b-a100")
    p_hi, o_lo, o_hi, p_lo = (100, 2, 20, 10) if short else (2000, 5, 400, 50)
    types = [
        FluidType(float(rng.uniform(0.1, 2)), int(rng.integers(p_lo, p_hi)), int(rng.integers(o_lo, o_hi)))
        for _ in range(m)
    ]
    k = fluid_benchmark(types, dep).max_stable_scale * frac
    return [FluidType(t.rate * k, t.prompt, t.output, f"t{j}") for j, t in enumerate(types)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    dep = load_deployment("llama2-7b-a100")
    out: dict[str, dict[str, float]] = {}
    for m in (10, 50):
        rec: dict[str, list[tuple[float, float]]] = {}
        for r in range(args.repeats):
            inside = instance(m, r, 0.9)
            outside = instance(m, r, 1.5)
            for key, types, kw in (
                ("fluid_lp_pyomo_inside", inside, {"interface": "pyomo"}),
                ("fluid_lp_cvxpy_inside", inside, {"interface": "cvxpy"}),
                ("fluid_lp_pyomo_outside_latency", outside, {"interface": "pyomo", "latency_targets": 30.0}),
                ("fluid_lp_cvxpy_outside_latency", outside, {"interface": "cvxpy", "latency_targets": 30.0}),
            ):
                t = time.perf_counter()
                res = fluid_lp(types, dep, **kw)
                rec.setdefault(key, []).append((res.seconds, time.perf_counter() - t))
            short = FluidArrays.build(instance(m, r, 0.5, short=True), dep)
            long_ = FluidArrays.build(inside, dep)
            stage_sq = np.array([sum((t.prompt + i) ** 2 for i in range(1, int(t.output) + 1)) for t in inside])
            for key, arrays, kw in (
                ("wait_memory_pipeline_short", short, {"objective": "memory", "memory_rule": "pipeline"}),
                ("wait_latency_pipeline_short", short, {"objective": "latency", "memory_rule": "pipeline"}),
                ("wait_latency_chance", long_, {"objective": "latency", "memory_rule": "chance", "stage_sq": stage_sq, "rule": "advance"}),
            ):
                t = time.perf_counter()
                try:
                    sol = solve_wait(arrays, **kw)
                    rec.setdefault(key, []).append((sol.seconds, time.perf_counter() - t))
                except Exception as exc:  # noqa: BLE001  (recorded, not hidden)
                    rec.setdefault(key + "_failed", []).append((0.0, 0.0))
                    print(f"m={m} rep={r} {key}: {exc}", file=sys.stderr)
        for key, vals in rec.items():
            s = np.array(vals)
            out[f"{key}/m={m}"] = {
                "solve_median_s": float(np.median(s[:, 0])),
                "solve_max_s": float(s[:, 0].max()),
                "build_and_solve_median_s": float(np.median(s[:, 1])),
                "build_and_solve_max_s": float(s[:, 1].max()),
                "runs": len(vals),
            }
    # the machine is shared: ratios to the Pyomo LP measured in the same run are the
    # comparable numbers across runs
    for m in (10, 50):
        base = out[f"fluid_lp_pyomo_inside/m={m}"]["solve_median_s"]
        for key, rec in out.items():
            if key.endswith(f"/m={m}"):
                rec["ratio_to_pyomo_lp_median"] = rec["solve_median_s"] / base if base > 0 else None
    try:
        out["load_average_1min"] = __import__("os").getloadavg()[0]
    except OSError:
        pass
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
