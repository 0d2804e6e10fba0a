"""Each strengthening of the completion-time MIP against the textbook formulation.

Variants (all solved by HiGHS with threads = 1 on the same instances, in turn):

- ``textbook``: one global horizon T = max a + Σ o (serial schedule length), one binary per
  request and epoch, every memory row, no MIP start;
- ``deadlines``: per-request deadlines c_i ≤ UB − LB(N∖{i}) from the best heuristic
  schedule (``fluidopt.tct``), slack rows dropped;
- ``aggregation``: identical requests grouped into integer counts (textbook otherwise);
- ``mip-start``: the best heuristic schedule given to HiGHS (textbook otherwise);
- ``all``: deadlines + aggregation + MIP start + slack rows dropped (the default of
  ``fluidopt solve``).

For every instance closed by two variants the optimum must agree (checked, printed).
Reported: per variant, instances closed, median and max solve time, and the geometric
mean of solve-time ratios variant/textbook over the instances both close.

Usage: ``python benchmarks/kv_synthetic/compare.py [--n 6] [--instances 2] [--time-limit 30]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

VARIANTS = {
    "textbook": dict(horizon="serial", aggregate=False, mip_start=False, drop_slack_rows=False),
    "deadlines": dict(horizon="incumbent", aggregate=False, mip_start=False, drop_slack_rows=True),
    "aggregation": dict(horizon="serial", aggregate=True, mip_start=False, drop_slack_rows=False),
    "mip-start": dict(horizon="serial", aggregate=False, mip_start=True, drop_slack_rows=False),
    "all": dict(horizon="incumbent", aggregate=True, mip_start=True, drop_slack_rows=True),
}


def main(argv: list[str] | None = None) -> int:
    from fluidopt.generators import kv_synthetic
    from fluidopt.io import atomic_path
    from fluidopt.tct import solve_tct

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=6, help="requests per instance")
    p.add_argument("--instances", type=int, default=2, help="seeds 0 … K−1 per arrival model")
    p.add_argument("--time-limit", type=float, default=30.0)
    p.add_argument("--models", default="1,2")
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("compare.csv"))
    args = p.parse_args(argv)
    rows = []
    for model in [int(m) for m in args.models.split(",")]:
        for seed in range(args.instances):
            w, C = kv_synthetic(model, seed, args.n)
            for name, kw in VARIANTS.items():
                sol = solve_tct(w, C, time_limit=args.time_limit, threads=1, **kw)
                rows.append(
                    {
                        "arrival_model": model,
                        "seed": seed,
                        "n": len(w),
                        "capacity": C,
                        "variant": name,
                        "status": sol.status,
                        "objective_tct": sol.objective_tct,
                        "best_bound": sol.best_bound,
                        "solve_seconds": sol.info["solve_seconds"],
                        "build_seconds": sol.info["build_seconds"],
                        "n_cols": sol.info["n_cols"],
                        "n_rows": sol.info["n_rows"],
                        "horizon": sol.info["horizon"],
                    }
                )
                r = rows[-1]
                print(
                    f"model {model} seed {seed} {name:12s} {r['status']:10s} tct {r['objective_tct']:.0f} "
                    f"bound {r['best_bound']:.0f} cols {r['n_cols']:6d} horizon {r['horizon']:4d} "
                    f"{r['solve_seconds']:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
    df = pd.DataFrame(rows)
    with atomic_path(args.out) as tmp:
        df.to_csv(tmp, index=False)
    closed = df[df["status"] == "optimal"]
    disagree = closed.groupby(["arrival_model", "seed"])["objective_tct"].nunique()
    base = df[df["variant"] == "textbook"].set_index(["arrival_model", "seed"])
    out = []
    for name in VARIANTS:
        v = df[df["variant"] == name].set_index(["arrival_model", "seed"])
        both = (v["status"] == "optimal") & (base["status"] == "optimal")
        ratio = v.loc[both, "solve_seconds"] / base.loc[both, "solve_seconds"]
        out.append(
            {
                "variant": name,
                "closed": f"{int((v['status'] == 'optimal').sum())}/{len(v)}",
                "median cols": int(v["n_cols"].median()),
                "median s": v["solve_seconds"].median(),
                "max s": v["solve_seconds"].max(),
                "time ratio vs textbook (geo-mean, both closed)": float(np.exp(np.log(ratio).mean())) if len(ratio) else None,
                "both closed": int(both.sum()),
            }
        )
    print(f"# n = {args.n}, {args.instances} seeds per arrival model, time limit {args.time_limit:g} s, threads 1")
    print(f"# optimum identical across variants wherever two closed: {bool((disagree <= 1).all())}")
    from run import markdown

    print(markdown(pd.DataFrame(out)))
    return 0 if bool((disagree <= 1).all()) else 1


if __name__ == "__main__":
    sys.exit(main())
