"""The path bound against the LP relaxation with peak rows on the [KV] synthetic family.

For each number of requests n (``--sizes``; ``0`` keeps the generator's 40–60), arrival
model and seed of a documented sample, the instance ``kv_synthetic(model, seed, n)`` is
prepared as by the solve driver (incumbent windows, peak intervals); then, one process,
one thread, one instance at a time:

- the LP relaxation of the time-indexed program with its peak rows
  (:func:`fluidopt.bounds.time_indexed.lp_solution`, no time limit), and
- the path bound started from it (:func:`fluidopt.bounds.paths.path_bound`) for at most
  ``--time-limit`` seconds, with the value it had reached after 10 and 30 s;
- one pricing at the LP's multipliers, timed as the column generation runs it (the DP
  stops after the last negative cost) against the DP over every round of the windows,
  alternated three times (medians; same least cost checked).

Both are reported against the best schedule known: the best heuristic schedule, or a
better one from a ``gaps.py`` CSV of the same instances (``--best-from``), as ratios of
Σ c and of total latency Σ (c − a).

Usage::

    python benchmarks/kv_synthetic/paths.py --sizes 15,20,0 --sample 3 --time-limit 60
    python benchmarks/kv_synthetic/paths.py --quick     # 1 small instance per model (tests)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fluidopt.bounds.paths import PathRelaxation
from fluidopt.bounds.time_indexed import LpSolution
from gaps import add_sample_options, markdown, sampled_instances, write_results  # the sibling script (this directory is on the path of a script)

HERE = Path(__file__).parent


def bound_instance(model: int, seed: int, n: int | None, time_limit: float, best_known: float | None) -> dict:
    """One row: LP and path bound of one instance (rounds, seconds)."""
    from fluidopt.bounds.paths import path_bound
    from fluidopt.bounds.time_indexed import lp_solution
    from fluidopt.completion.windows import prepare
    from fluidopt.generators import kv_synthetic

    w, C = kv_synthetic(model, seed, n)
    prep = prepare(w, C)
    relax = PathRelaxation(prep.data)
    lp = lp_solution(prep.data, arrays=relax.arrays)
    pricing = time_pricing(relax, lp)
    trace: list[tuple[float, float]] = []
    started = time.perf_counter()
    result = path_bound(prep.data, time_limit=time_limit, lp=lp, schedules=[prep.incumbent],
                        upper_bound=best_known or prep.upper_bound,
                        progress=lambda b: trace.append((time.perf_counter() - started, b)), relax=relax)

    def reached(seconds: float) -> float | None:
        values = [b for t, b in trace if t <= seconds]
        return values[-1] if values else None

    best = min(x for x in (prep.upper_bound, best_known) if x is not None)
    arrivals = float(np.sum(w.arrival))
    lp_bound = None if lp.value is None else float(np.ceil(lp.value - 1e-6))
    return {
        "arrival_model": model, "seed": seed, "n": len(w), "capacity": C,
        "best_schedule": best, "best_source": "gaps" if best_known is not None and best_known < prep.upper_bound
        else "heuristic", "sum_arrival": arrivals,
        "lp": lp_bound, "lp_seconds": lp.seconds,
        "paths": result.bound, "paths_status": result.status, "paths_seconds": result.seconds,
        "paths_10s": reached(10.0), "paths_30s": reached(30.0),
        "iterations": result.iterations, "columns": result.columns, "master_rows": result.rows,
        "lp_ratio": None if lp_bound is None else lp_bound / best,
        "paths_ratio": None if result.bound is None else result.bound / best,
        "lp_ratio_latency": None if lp_bound is None else (lp_bound - arrivals) / (best - arrivals),
        "paths_ratio_latency": None if result.bound is None else (result.bound - arrivals) / (best - arrivals),
        **pricing,
    }


def time_pricing(relax: PathRelaxation, lp: LpSolution) -> dict:
    """Seconds of one pricing at the LP's multipliers: as the column generation runs it and
    over every round (medians of three, alternated), and the share of rounds it runs."""
    cost = relax.round_costs(relax.lp_multipliers(lp))
    cut, full = [], []
    for _ in range(3):
        for every_round, times in ((False, cut), (True, full)):
            t = time.perf_counter()
            pricing = relax.pricer.price(cost, every_round=every_round)
            times.append(time.perf_counter() - t)
            if every_round:
                assert abs(pricing.best - best) <= 1e-6 * max(1.0, abs(best)), "the cut DP changed the least cost"
            else:
                best, limit = pricing.best, pricing.limit
    start = int(relax.pricer.first.min())
    return {"pricing_seconds": float(np.median(cut)), "pricing_every_round_seconds": float(np.median(full)),
            "pricing_rounds_share": (limit - start) / (relax.T + 1 - start)}


def table(results: pd.DataFrame) -> pd.DataFrame:
    """Per (n range, arrival model): ratios to the best schedule (Σ c and latency), times."""
    results = results.copy()
    results["n range"] = results["n"].map(lambda n: "40–60" if n >= 40 else str(n))
    rows = []
    for (size, model), g in results.groupby(["n range", "arrival_model"], sort=False):
        rows.append({
            "n": size, "model": model, "instances": len(g),
            "LP / best": f"{g['lp_ratio'].min():.3f}–{g['lp_ratio'].max():.3f}",
            "paths / best": f"{g['paths_ratio'].min():.3f}–{g['paths_ratio'].max():.3f}",
            "LP / best (latency)": f"{g['lp_ratio_latency'].min():.3f}–{g['lp_ratio_latency'].max():.3f}",
            "paths / best (latency)": f"{g['paths_ratio_latency'].min():.3f}–{g['paths_ratio_latency'].max():.3f}",
            "LP s (median)": f"{g['lp_seconds'].median():.1f}",
            "paths s (median)": f"{g['paths_seconds'].median():.1f}",
            "paths converged": f"{int((g['paths_status'] == 'converged').sum())}/{len(g)}",
            "pricing s / every round (median)": f"{(g['pricing_seconds'] / g['pricing_every_round_seconds']).median():.2f}",
        })
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 instance per model with 8 requests, 3 s")
    add_sample_options(p, sample=3)
    p.add_argument("--time-limit", type=float, default=60.0, help="path bound budget per instance, s")
    p.add_argument("--best-from", type=Path, default=None, help="gaps.py CSV with better schedules")
    p.add_argument("--out", type=Path, default=HERE / "results" / "paths.csv")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.instances, args.sample, args.time_limit = "8", 1, 1, 3.0
        if args.out == HERE / "results" / "paths.csv":
            args.out = HERE / "results" / "paths_quick.csv"
    from fluidopt.generators import kv_synthetic

    known: dict[tuple[int, int, int], float] = {}
    if args.best_from is not None:
        g = pd.read_csv(args.best_from)
        known = g.groupby(["arrival_model", "seed", "n"])["objective_tct"].min().to_dict()
    rows = []
    started = time.perf_counter()
    load = os.getloadavg()[0]
    for size, model, seed in sampled_instances(args):
        n = len(kv_synthetic(model, seed, size or None)[0])
        row = bound_instance(model, seed, size or None, args.time_limit, known.get((model, seed, n)))
        row.update(sample_seed=args.sample_seed, load=os.getloadavg()[0])
        rows.append(row)
        print(f"n {row['n']:2d} model {model} seed {seed:3d}: best {row['best_schedule']:.0f} "
              f"LP {row['lp']} ({row['lp_seconds']:.1f}s) paths {row['paths']} ({row['paths_status']}, "
              f"{row['paths_seconds']:.1f}s, {row['iterations']} it)", file=sys.stderr, flush=True)
    results = write_results(rows, args.out, "[KV] path bound",
                            f"# sizes {args.sizes}; {args.sample} of {args.instances} seeds per size (sample seed "
                            f"{args.sample_seed}); path bound ≤ {args.time_limit:g} s after the LP", load, started)
    print(markdown(table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
