"""Certified optimality gaps on a real trace in the unit-time model.

Instance: the first ``-n`` requests of a trace (default azure-conv, 2,000), unit time,
C = 118,784 KV tokens, in two arrival models:

- ``zero``: every request arrives at epoch 0;
- ``scaled``: the trace's arrival times t_i (seconds) mapped to epochs
  a_i = ⌊(t_i − t_1)·k⌋ with k = ΣV_i / (ρ·C·(t_n − t_1)) rounds per second, so that the
  KV-time volume offered per round over the arrival span is ρ·C (``--load`` ρ, default
  1.0: the memory is kept busy, and queues form in the trace's bursts because no
  schedule can hold memory at 100% with growing ramps).

Per model, within one wall-clock budget (``--time-limit``, default 600 s, everything
included): the executor policies MC-SF, H-SF, SVF and Sorted-F; the lower bounds trivial
Σ(a+o), memory volume (``fluidopt.bounds.tct``), mean busy time and Lagrangian
(``fluidopt.bounds``); then schedules from the Lagrangian prices with local search for
the time left (``fluidopt.search.lagrangian_heuristic``). The best schedule is replayed
through the executor (``fluidopt.bounds.checker.check_schedule``). Gaps are on total
latency Σ(c_i − a_i): (schedule − best bound)/schedule.

BLAS is limited to one thread before numpy is imported, so the run uses one core.

Usage::

    python benchmarks/trace_bounds/run.py                      # both models, 10 min each
    python benchmarks/trace_bounds/run.py --quick              # 200 requests, seconds
    python benchmarks/trace_bounds/run.py --arrivals scaled --load 1.2 --json out.json
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

CAPACITY = 118_784
POLICIES = ("mc-sf", "h-sf", "svf", "sorted-f")


def loadavg() -> float:
    """1-minute load average."""
    return os.getloadavg()[0]


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else the machine type."""
    info = Path("/proc/cpuinfo")
    text = info.read_text() if info.exists() else ""
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")]
    return names[0] if names else platform.machine()


def make_instance(trace: str, n: int, arrivals: str, load: float) -> tuple[Any, dict[str, Any]]:
    """The workload (integer arrival epochs) and how its arrivals were made."""
    from fluidopt.traces import load_workload

    w = load_workload(trace).head(n)
    s = w.prompt.astype(np.float64)
    o = w.output.astype(np.float64)
    volume = float(np.sum(o * s + o * (o + 1) / 2))
    if arrivals == "zero":
        return w.replace(arrival=np.zeros(len(w))), {"arrivals": "zero"}
    t = np.asarray(w.arrival, dtype=np.float64)
    span = float(t[-1] - t[0])
    k = volume / (load * CAPACITY * span)
    a = np.floor((t - t[0]) * k)
    return w.replace(arrival=a), {
        "arrivals": "scaled",
        "load": load,
        "rounds_per_second": k,
        "span_rounds": int(a[-1]),
        "volume_per_round_over_C": volume / (CAPACITY * max(a[-1], 1.0)),
    }


def policy_runs(w: Any) -> dict[str, dict[str, Any]]:
    """Σ c of each executor policy and its start epochs (last run of each request)."""
    from fluidopt.deployment import unit_deployment
    from fluidopt.executor.engine import simulate
    from fluidopt.executor.policy import make_policy

    out = {}
    for name in POLICIES:
        t0 = time.perf_counter()
        run = simulate(w, unit_deployment(CAPACITY), make_policy(name), capacity=CAPACITY)
        rec = run.records.set_index("id").loc[w.id]
        out[name] = {
            "tct": float(run.summary()["tct"]),
            "seconds": time.perf_counter() - t0,
            "evictions": int(rec["evictions"].sum()),
            "starts": np.rint(rec["completion"].to_numpy()).astype(np.int64) - w.output.astype(np.int64),
        }
    return out


def certify(w: Any, time_limit: float, bound_share: float, seed: int) -> dict[str, Any]:
    """Bounds, schedules and gaps for one instance within ``time_limit`` seconds (wall)."""
    from fluidopt.bounds.checker import check_schedule
    from fluidopt.bounds.lagrangian import lagrangian_bound
    from fluidopt.bounds.mean_busy_time import mean_busy_time_bound
    from fluidopt.bounds.tct import volume_bound_arrays
    from fluidopt.search.lagrangian_heuristic import lagrangian_schedule

    started = time.perf_counter()
    cpu0 = time.process_time()
    a = np.asarray(w.arrival, dtype=np.int64)
    s, o = w.prompt.astype(np.int64), w.output.astype(np.int64)
    sum_a = float(a.sum())
    policies = policy_runs(w)
    bounds: dict[str, dict[str, Any]] = {"trivial": {"tct": float(np.sum(a + o)), "seconds": 0.0}}
    t0 = time.perf_counter()
    bounds["volume"] = {"tct": volume_bound_arrays(a, s, o, CAPACITY), "seconds": time.perf_counter() - t0}
    value, info = mean_busy_time_bound(a, s, o, CAPACITY)
    bounds["mean-busy-time"] = {"tct": value, "seconds": info["seconds"]}
    left = time_limit - (time.perf_counter() - started)
    value, lag = lagrangian_bound(a, s, o, CAPACITY, time_limit=max(0.0, bound_share * left))
    bounds["lagrangian"] = {
        "tct": value, "seconds": lag["seconds"], "evaluations": lag["evaluations"], "stopped": lag["stopped"],
        "rounds": lag["rounds"],
    }
    reserve = 0.5 + 5e-4 * len(w)  # replaying the final schedule (0.2 s at n = 2,000)
    left = time_limit - (time.perf_counter() - started) - reserve
    incumbents = {name: p["starts"] for name, p in policies.items() if p["evictions"] == 0}
    starts, sched = lagrangian_schedule(
        a, s, o, CAPACITY, lag["prices"], time_limit=max(0.0, left), incumbents=incumbents, seed=seed
    )
    check = check_schedule(w, CAPACITY, starts)
    if not check.accepted:
        raise SystemExit(f"the best schedule was rejected by the executor: {check.problems}")
    best_bound_name = max(bounds, key=lambda k: bounds[k]["tct"])
    lb = bounds[best_bound_name]["tct"] - sum_a
    ub = check.tct_executor - sum_a
    for b in bounds.values():
        b["latency"] = b["tct"] - sum_a
        b["of_best_schedule"] = b["latency"] / ub
    rows = {}
    for name, p in policies.items():
        lat = p["tct"] - sum_a
        rows[name] = {"latency": lat, "seconds": p["seconds"], "evictions": p["evictions"],
                      "certified_gap": (lat - lb) / lat, "bracket": [lat / ub, lat / lb]}
    search = sched["search"] or {}
    return {
        "n": len(w),
        "sum_arrival": sum_a,
        "policies": rows,
        "bounds": bounds,
        "best_bound": best_bound_name,
        "schedule": {
            "latency": ub,
            "source": sched["source"],
            "seconds": sched["seconds"],
            "search_steps": search.get("steps", 0),
            "search_improvements": search.get("improvements", 0),
            "candidates": {k: v - sum_a for k, v in sched["candidates"].items()},
            "replayed": check.accepted,
            "peak_kv": check.peak_kv,
        },
        "certified_gap": (ub - lb) / ub,
        "volume_gap": (ub - bounds["volume"]["latency"]) / ub,
        "wall_seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu0,
    }


def table(label: str, r: dict[str, Any]) -> str:
    """Markdown rows for the README."""
    lines = [f"**{label}** (n = {r['n']:,}; best schedule Σ latency {r['schedule']['latency']:,.0f} rounds,"
             f" from `{r['schedule']['source']}`)", "",
             "| | Σ latency (rounds) | / best schedule | seconds |", "|---|---:|---:|---:|"]
    for name, b in r["bounds"].items():
        lines.append(f"| bound: {name} | {b['latency']:,.0f} | {b['of_best_schedule']:.4f} | {b['seconds']:.1f} |")
    for name, p in r["policies"].items():
        lines.append(f"| policy: {name} | {p['latency']:,.0f} | {p['latency'] / r['schedule']['latency']:.4f}"
                     f" | {p['seconds']:.1f} |")
    lines.append(f"| best schedule | {r['schedule']['latency']:,.0f} | 1.0000 | {r['schedule']['seconds']:.1f} |")
    lines += ["", f"certified gap of the best schedule {100 * r['certified_gap']:.2f}% (against the volume bound alone:"
              f" {100 * r['volume_gap']:.2f}%); " + ", ".join(
                  f"{k} {100 * p['certified_gap']:.2f}%" for k, p in r["policies"].items())
              + f"; {r['wall_seconds']:.0f} s wall, {r['cpu_seconds']:.0f} s CPU"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", default="azure-conv")
    parser.add_argument("-n", type=int, default=2000, help="first N requests (default 2000)")
    parser.add_argument("--arrivals", default="zero,scaled", help="zero, scaled or both (comma-separated)")
    parser.add_argument("--load", type=float, default=1.0, help="ρ of the scaled arrivals (default 1.0)")
    parser.add_argument("--time-limit", type=float, default=600.0, help="wall-clock s per arrival model")
    parser.add_argument("--bound-share", type=float, default=0.4,
                        help="share of the time left after the policies given to the Lagrangian (default 0.4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="200 requests, 3 s per model")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.time_limit = min(args.n, 200), min(args.time_limit, 3.0)
    models = [m.strip() for m in args.arrivals.split(",") if m.strip()]
    bad = [m for m in models if m not in ("zero", "scaled")]
    if bad:
        print(f"error: unknown arrival model {bad[0]!r} (zero, scaled)", file=sys.stderr)
        return 2
    out: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__},
        "loadavg_start": loadavg(),
        "trace": args.trace,
        "capacity": CAPACITY,
        "time_limit": args.time_limit,
        "runs": {},
    }
    for model in models:
        w, how = make_instance(args.trace, args.n, model, args.load)
        print(f"{model}: {len(w)} requests, {how}", file=sys.stderr, flush=True)
        load_before = loadavg()
        r = certify(w, args.time_limit, args.bound_share, args.seed)
        r.update(instance=how, loadavg_before=load_before, loadavg_after=loadavg())
        out["runs"][model] = r
        print(table(f"{args.trace}, arrivals {model}", r) + "\n", flush=True)
    out["loadavg_end"] = loadavg()
    if args.json:
        from fluidopt.io import atomic_path

        with atomic_path(args.json) as tmp:
            Path(tmp).write_text(json.dumps(out, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
