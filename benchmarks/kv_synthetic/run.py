"""[KV] synthetic table: MC-SF against the hindsight optimum (unit-time model).

For each arrival model (1: all at round 0; 2: Poisson) and each instance seed, draw an
instance with ``fluidopt.generators.kv_synthetic``, solve the total-completion-time MIP
(``fluidopt.completion.solve.solve_tct`` with its defaults: peak-separation rows, neighbourhood
search, threads = 1, ``--backend highs`` or ``cpsat``), run MC-SF (exact lengths) in the executor, and
score MC-SF/optimum. An instance that does not close within the time limit is scored
against its best lower bound (the ratio is then an upper bound on the true ratio) and
counted as open, never dropped. Every MIP schedule is replayed through the executor.

Usage::

    python benchmarks/kv_synthetic/run.py                  # 200 instances per model, 60 s each
    python benchmarks/kv_synthetic/run.py --quick          # a few tiny instances (< 1 min)
    python benchmarks/kv_synthetic/run.py --instances 200 --sample 10 --sample-seed 1

``--sample K`` solves a random subset of K of the ``--instances`` seeds per model (drawn
with ``numpy.random.default_rng(sample_seed)``, recorded in the CSV); ``--n N``
overrides the number of requests (the seed keeps its C). Output: a CSV of per-instance
results (``--out``, written atomically) and the table on stdout.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

PUBLISHED = {
    1: {"avg": 1.005, "best": 1.000, "worst": 1.074, "exact": "114 of 200"},
    2: {"avg": 1.047, "best": 1.000, "worst": 1.227, "exact": "–"},
}


def solve_instance(model: int, seed: int, n: int | None, time_limit: float, backend: str, lp: bool = True) -> dict:
    """One row of the results table (times in s, objectives in rounds)."""
    from fluidopt.bounds.checker import check_schedule
    from fluidopt.bounds.tct import lp_bound, trivial_bound
    from fluidopt.deployment import unit_deployment
    from fluidopt.executor.engine import simulate
    from fluidopt.generators import kv_synthetic
    from fluidopt.tct import solve_tct

    w, C = kv_synthetic(model, seed, n)
    sol = solve_tct(w, C, time_limit=time_limit, threads=1, backend=backend)
    check = check_schedule(w, C, sol.starts)
    run = simulate(w, unit_deployment(C), "mc-sf")
    mcsf = float(run.summary()["tct"])
    closed = sol.status == "optimal"
    lp_value = sol.info.get("lp_bound")  # CP-SAT: computed in the solve's bound stage
    lp_value = None if lp_value is None else float(np.ceil(lp_value - 1e-6))  # Σ c_i is an integer
    if lp and lp_value is None:
        lp_value = lp_bound(w, C, upper_bound=sol.info["incumbent_tct"])["bound"]
    # the LP bound (solved to the end) is valid too and can beat a stopped MIP's bound
    best_bound = max(b for b in (sol.best_bound, lp_value) if b is not None)
    reference = sol.objective_tct if closed else best_bound
    return {
        "arrival_model": model,
        "seed": seed,
        "n": len(w),
        "capacity": C,
        "status": sol.status,
        "closed": closed,
        "objective_tct": sol.objective_tct,
        "best_bound": best_bound,
        "mip_bound": sol.best_bound,
        "gap": 0.0 if closed else (sol.objective_tct - best_bound) / sol.objective_tct,
        "mcsf_tct": mcsf,
        "ratio": mcsf / reference,
        "ratio_against": "optimum" if closed else "bound",
        "mcsf_optimal": closed and mcsf == sol.objective_tct,
        "solve_seconds": sol.info["solve_seconds"],
        "total_seconds": sol.seconds,
        "incumbent_tct": sol.info["incumbent_tct"],
        "incumbent_source": sol.info["incumbent_source"],
        "volume_bound": sol.info["volume_bound"],
        "trivial_bound": trivial_bound(w),
        "lp_bound": lp_value,
        "n_cols": sol.info["n_cols"],
        "backend": backend,
        "replay_accepted": check.accepted,
    }


def table(results: pd.DataFrame) -> pd.DataFrame:
    """The five statistics per arrival model, plus solve times and open instances."""
    rows = []
    for model, g in results.groupby("arrival_model"):
        pub = PUBLISHED.get(int(model), {})
        rows.append(
            {
                "arrival model": int(model),
                "instances": len(g),
                "closed": int(g["closed"].sum()),
                "MC-SF/opt (bound if open) avg": g["ratio"].mean(),
                "best": g["ratio"].min(),
                "worst": g["ratio"].max(),
                "MC-SF exactly optimal": int(g["mcsf_optimal"].sum()),
                "MC-SF/best found avg": (g["mcsf_tct"] / g["objective_tct"]).mean(),
                "MC-SF/best found worst": (g["mcsf_tct"] / g["objective_tct"]).max(),
                "solve s median": g["total_seconds"].median(),
                "solve s max": g["total_seconds"].max(),
                "max gap of open": g.loc[~g["closed"], "gap"].max() if (~g["closed"]).any() else 0.0,
                "published avg/best/worst": f"{pub.get('avg')}/{pub.get('best')}/{pub.get('worst')}",
                "published exactly optimal": pub.get("exact"),
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 instances per model with 5 requests, 5 s limit")
    p.add_argument("--instances", type=int, default=200, help="instance seeds 0 … K−1 per arrival model")
    p.add_argument("--sample", type=int, default=None, help="solve a random subset of this many seeds per model")
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--n", type=int, default=None, help="override the number of requests")
    p.add_argument("--time-limit", type=float, default=60.0, help="MIP time limit per instance, s")
    p.add_argument("--models", default="1,2")
    p.add_argument("--backend", default="cpsat", choices=["highs", "cpsat"],
                   help="HiGHS (time-indexed MIP) or CP-SAT (cumulative model, worker process)")
    p.add_argument("--lp", action=argparse.BooleanOptionalAction, default=True, help="also compute the LP bound")
    p.add_argument("--table-from", type=Path, default=None, help="only print the table of an existing results CSV")
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("results.csv"))
    args = p.parse_args(argv)
    if args.quick:
        args.instances, args.n, args.time_limit, args.sample, args.lp = 2, 5, 5.0, None, False
        if args.out == Path(__file__).with_name("results.csv"):
            args.out = Path(__file__).with_name("results_quick.csv")
    from fluidopt.io import atomic_path

    if args.table_from is not None:
        print(markdown(table(pd.read_csv(args.table_from))))
        return 0
    models = [int(m) for m in args.models.split(",")]
    seeds = np.arange(args.instances)
    if args.sample is not None and args.sample < args.instances:
        seeds = np.sort(np.random.default_rng(args.sample_seed).choice(args.instances, args.sample, replace=False))
    rows = []
    started = time.perf_counter()
    for model in models:
        for seed in seeds.tolist():
            row = solve_instance(model, seed, args.n, args.time_limit, args.backend, args.lp)
            row["sample_seed"] = args.sample_seed if args.sample is not None else None
            rows.append(row)
            print(
                f"model {model} seed {seed:3d} n {row['n']:2d} C {row['capacity']:2d}: {row['status']:10s} "
                f"opt {row['objective_tct']:.0f} bound {row['best_bound']:.0f} mcsf {row['mcsf_tct']:.0f} "
                f"ratio {row['ratio']:.4f} ({row['ratio_against']}) {row['total_seconds']:.1f}s",
                file=sys.stderr,
                flush=True,
            )
    results = pd.DataFrame(rows)
    with atomic_path(args.out) as tmp:
        results.to_csv(tmp, index=False)
    t = table(results)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# [KV] synthetic, {stamp}, {platform.machine()} {platform.processor() or ''}".rstrip())
    print(
        f"# seeds: {'all' if args.sample is None else f'random {len(seeds)} of {args.instances} (sample seed {args.sample_seed})'}; "
        f"n = {args.n or '40–60 (generator)'}; time limit {args.time_limit:g} s; threads 1; backend {args.backend}; "
        f"wall {time.perf_counter() - started:.0f} s"
    )
    print(markdown(t))
    return 0


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub table (floats to 3 decimals) without extra dependencies."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
