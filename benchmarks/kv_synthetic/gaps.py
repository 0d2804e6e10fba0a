"""Certified optimality gaps on the [KV] synthetic family: the current solve pipeline
against the previous one, on the same instances in the same run.

For each number of requests n (``--sizes``; ``0`` keeps the generator's 40–60) and each
arrival model, instances ``fluidopt.generators.kv_synthetic(model, seed, n)`` for a
documented sample of seeds are solved by ``fluidopt.completion.solve.solve_tct`` with
one thread and a time limit per instance, in the variants chosen (``--variants``):

- ``current`` — the defaults: peak-separation rows in the LP bound and a peak
  ``NoOverlap`` in CP-SAT, the path bound after the LP, half of the time after the bound
  on large-neighbourhood search;
- ``no-paths`` — the same without the path bound (``path_bound=False``);
- ``previous`` — the pipeline before all three (``peaks=False, improve=0,
  path_bound=False``): volume and LP bounds, CP-SAT search from the best heuristic
  schedule;
- ``bound-0.75`` — the defaults with three quarters of the time for the bound stage
  instead of half (``bound_share=0.75``);
- ``no-fixing`` — the defaults without the path relaxation's start fixing in the exact
  search (``path_fixing=False``).

Every schedule is replayed through the executor (``replay_accepted``). Gaps are reported
on total latency Σ (c_i − a_i): (best schedule − best bound) / best schedule, where the
constant Σ a_i is subtracted from both (with Poisson arrivals a gap on Σ c_i looks small
only because Σ a_i is large).

Usage::

    python benchmarks/kv_synthetic/gaps.py --sizes 15,20,0 --sample 6 --time-limit 60
    python benchmarks/kv_synthetic/gaps.py --quick      # 2 tiny instances per model (tests)
    python benchmarks/kv_synthetic/gaps.py --table-from results/gaps.csv

Output: one CSV row per (instance, variant) (``--out``, written atomically) and the table
on stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

VARIANTS = {
    "current": {},
    "no-paths": {"path_bound": False},
    "previous": {"peaks": False, "improve": 0.0, "path_bound": False},
    "bound-0.75": {"bound_share": 0.75},
    "no-fixing": {"path_fixing": False},
}


def solve_instance(model: int, seed: int, n: int | None, time_limit: float, variant: str, backend: str) -> dict:
    """One row: the solve of one instance by one variant (rounds, seconds)."""
    from fluidopt.completion.solve import solve_tct
    from fluidopt.deployment import unit_deployment
    from fluidopt.executor.engine import simulate
    from fluidopt.generators import kv_synthetic

    w, C = kv_synthetic(model, seed, n)
    started = time.perf_counter()
    sol = solve_tct(w, C, time_limit=time_limit, threads=1, backend=backend, **VARIANTS[variant])
    wall = time.perf_counter() - started
    arrivals = float(np.sum(w.arrival))
    mcsf = float(simulate(w, unit_deployment(C), "mc-sf").summary()["tct"])
    best_lat, bound_lat = sol.objective_tct - arrivals, sol.best_bound - arrivals
    fixing = sol.info.get("cpsat_fixing") or {}  # start fixing in the exact search (CP-SAT)
    return {
        "arrival_model": model,
        "seed": seed,
        "n": len(w),
        "capacity": C,
        "variant": variant,
        "backend": backend,
        "status": sol.status,
        "proven": sol.status == "optimal",
        "objective_tct": sol.objective_tct,
        "best_bound": sol.best_bound,
        "sum_arrival": arrivals,
        "gap_latency": 0.0 if sol.status == "optimal" else (best_lat - bound_lat) / best_lat,
        "gap_tct": sol.gap,
        "bound_source": sol.info["bound_source"],
        "solution_source": sol.info["solution_source"],
        "incumbent_tct": sol.info["incumbent_tct"],
        "volume_bound": sol.info["volume_bound"],
        "lp_bound": sol.info["lp_bound"],
        "lp_seconds": sol.info["lp_seconds"],
        "path_bound": sol.info["path_bound"],
        "path_bound_status": sol.info["path_bound_status"],
        "path_bound_seconds": sol.info["path_bound_seconds"],
        "solver_bound": sol.info["solver_bound"],
        "fixed_starts": fixing.get("removed"),
        "window_starts": fixing.get("window"),
        "search_seconds": sol.info["solve_seconds"],
        "lns_improvements": (sol.info["improve"] or {}).get("improvements"),
        "mcsf_tct": mcsf,
        "seconds": wall,
        "replay_accepted": bool(sol.info["check"]["accepted"]),
    }


def table(results: pd.DataFrame) -> pd.DataFrame:
    """Per (n range, variant): instances, median/max gap on latency, proven, median time,
    the bound and schedule sources that won most often."""
    results = results.copy()
    results["n range"] = results["n"].map(lambda n: "40–60" if n >= 40 else str(n))
    rows = []
    for (size, variant), g in results.groupby(["n range", "variant"], sort=False):
        rows.append({
            "n": size,
            "variant": variant,
            "instances": len(g),
            "median gap (latency)": g["gap_latency"].median(),
            "max gap (latency)": g["gap_latency"].max(),
            "proven optimal": int(g["proven"].sum()),
            "median s": g["seconds"].median(),
            "bound that won": g["bound_source"].mode().iloc[0],
            "schedule from": g["solution_source"].mode().iloc[0],
            "replayed": f"{int(g['replay_accepted'].sum())}/{len(g)}",
        })
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub table; floats to 3 decimals (gaps as per cent)."""

    def cell(col: str, v: object) -> str:
        if isinstance(v, float) and "gap" in col:
            return f"{100 * v:.1f}%"
        if isinstance(v, float):
            return f"{v:.1f}"
        return str(v)

    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(c, v) for c, v in zip(cols, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def add_sample_options(p: argparse.ArgumentParser, sample: int) -> None:
    """The options of the documented instance sample (:func:`sampled_instances`)."""
    p.add_argument("--sizes", default="15,20,0", help="numbers of requests; 0 keeps the generator's 40–60")
    p.add_argument("--instances", type=int, default=200, help="seeds 0 … K−1 per arrival model")
    p.add_argument("--sample", type=int, default=sample, help="random subset of this many seeds per model and size")
    p.add_argument("--sample-seed", type=int, default=3)
    p.add_argument("--models", default="1,2")


def sampled_instances(args: argparse.Namespace):
    """(size, model, seed) of the documented sample: per size, ``args.sample`` of the
    seeds 0 … ``args.instances`` − 1 drawn with ``args.sample_seed``, for every model."""
    rng = np.random.default_rng(args.sample_seed)
    for size in [int(x) for x in args.sizes.split(",")]:
        seeds = np.sort(rng.choice(args.instances, min(args.sample, args.instances), replace=False))
        for model in [int(m) for m in args.models.split(",")]:
            for seed in seeds.tolist():
                yield size, model, seed


def write_results(rows: list[dict], out: Path, title: str, detail: str, load: float, started: float) -> pd.DataFrame:
    """Write the rows to ``out`` (CSV, atomically) and print the run's header lines;
    return the rows as a frame."""
    from fluidopt.io import atomic_path

    results = pd.DataFrame(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        results.to_csv(tmp, index=False)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# {title}, {stamp}, {platform.machine()}; load average {load:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end")
    print(f"{detail}; wall {time.perf_counter() - started:.0f} s")
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 instances per model with 6 requests, 3 s each")
    add_sample_options(p, sample=6)
    p.add_argument("--time-limit", type=float, default=60.0, help="per instance and variant, s")
    p.add_argument("--variants", default="current,previous")
    p.add_argument("--backend", default="cpsat", choices=["highs", "cpsat"])
    p.add_argument("--table-from", type=Path, default=None, help="only print the table of an existing CSV")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gaps.csv")
    args = p.parse_args(argv)
    if args.table_from is not None:
        print(markdown(table(pd.read_csv(args.table_from))))
        return 0
    if args.quick:
        args.sizes, args.instances, args.sample, args.time_limit = "6", 2, 2, 3.0
        if args.out == Path(__file__).parent / "results" / "gaps.csv":
            args.out = Path(__file__).parent / "results" / "gaps_quick.csv"

    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        p.error(f"unknown variant(s) {', '.join(unknown)} ({', '.join(VARIANTS)})")
    rows = []
    started = time.perf_counter()
    load = os.getloadavg()[0]
    for size, model, seed in sampled_instances(args):
        for variant in variants:
            row = solve_instance(model, seed, size or None, args.time_limit, variant, args.backend)
            row.update(sample_seed=args.sample_seed, load_before=os.getloadavg()[0])
            rows.append(row)
            print(f"n {row['n']:2d} model {model} seed {seed:3d} {variant:8s}: {row['status']:10s} "
                  f"best {row['objective_tct']:.0f} bound {row['best_bound']:.0f} "
                  f"gap(latency) {100 * row['gap_latency']:.1f}% [{row['bound_source']}/"
                  f"{row['solution_source']}] {row['seconds']:.1f}s", file=sys.stderr, flush=True)
    results = write_results(rows, args.out, "[KV] synthetic certified gaps",
                            f"# sizes {args.sizes}; {args.sample} of {args.instances} seeds per size (sample seed "
                            f"{args.sample_seed}); time limit {args.time_limit:g} s; threads 1; backend {args.backend}",
                            load, started)
    print(markdown(table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
