"""Each strengthening of the completion-time MIP against the textbook formulation.

Variants (all solved by HiGHS with threads = 1 on the same instances, in turn):

- ``textbook``: one global horizon T = max a + Σ o (serial schedule length), one binary per
  request and epoch, every memory row, no MIP start;
- ``deadlines``: per-request deadlines c_i ≤ UB − LB(N∖{i}) from the best heuristic
  schedule (``fluidopt.tct``), slack rows dropped;
- ``aggregation``: identical requests grouped into integer counts (textbook otherwise);
- ``mip-start``: the best heuristic schedule given to HiGHS (textbook otherwise);
- ``all``: deadlines + aggregation + MIP start + slack rows dropped (the best HiGHS
  variant, ``fluidopt solve --backend highs``);
- ``cpsat``: the cumulative model of ``fluidopt.models.tct_cpsat`` in OR-Tools CP-SAT
  (1 worker, in its own process): deadlines, symmetry chains, heuristic hint and
  objective upper bound, max(volume, LP relaxation) as objective lower bound,
  linearization level 2 (``fluidopt solve --backend cpsat``);
- ``cpsat-plain``: the same cumulative model without symmetry chains, hint, objective
  bounds and LP bound, CP-SAT's default linearization (deadlines kept);
- ``cpsat-lin1``: ``cpsat`` with linearization level 1 (CP-SAT's default) instead of 2.

For every instance closed by two variants the optimum must agree (checked, printed).
Reported: per variant, instances closed, median and max solve time, max gap of the open
ones, and the geometric mean of solve-time ratios variant/reference (``--reference``,
default textbook) over the instances both close. Solve time is the solver's wall time;
for CP-SAT it includes the LP bound and the worker's start-up (about 0.5 s).

Usage::

    python benchmarks/kv_synthetic/compare.py [--n 6] [--instances 2] [--time-limit 30]
    python benchmarks/kv_synthetic/compare.py --n 10 --seeds 3,7 --variants all,cpsat --reference all
    python benchmarks/kv_synthetic/compare.py --n 0 --sample 2 --sample-seed 1 --backend cpsat

``--n 0`` keeps the generator's own 40–60 requests; ``--seeds`` lists seeds,
``--sample K --sample-seed S`` draws K of seeds 0…199 with ``numpy.random.default_rng(S)``
(as ``run.py``); ``--backend highs|cpsat`` keeps only that backend's variants.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

#: Variants before the peak-separation rows and the improve stage keep their former meaning
#: (``peaks=False, improve=0``); ``*+peaks`` add the rows (HiGHS) or the NoOverlap and the
#: stronger LP bound (CP-SAT); ``current`` is today's default pipeline.
_OLD = dict(peaks=False, improve=0.0)
VARIANTS = {
    "textbook": dict(horizon="serial", aggregate=False, mip_start=False, drop_slack_rows=False, **_OLD),
    "deadlines": dict(horizon="incumbent", aggregate=False, mip_start=False, drop_slack_rows=True, **_OLD),
    "aggregation": dict(horizon="serial", aggregate=True, mip_start=False, drop_slack_rows=False, **_OLD),
    "mip-start": dict(horizon="serial", aggregate=False, mip_start=True, drop_slack_rows=False, **_OLD),
    "all": dict(horizon="incumbent", aggregate=True, mip_start=True, drop_slack_rows=True, **_OLD),
    "all+peaks": dict(horizon="incumbent", aggregate=True, mip_start=True, drop_slack_rows=True, improve=0.0),
    "cpsat": dict(backend="cpsat", **_OLD),
    "cpsat+peaks": dict(backend="cpsat", improve=0.0),
    "cpsat-plain": dict(backend="cpsat", mip_start=False, lp_lower_bound=False,
                        cpsat=dict(symmetry=False, linearization_level=None), **_OLD),
    "cpsat-lin1": dict(backend="cpsat", cpsat=dict(linearization_level=1), **_OLD),
    "current": dict(backend="cpsat"),
}


def backend_of(variant: str) -> str:
    return VARIANTS[variant].get("backend", "highs")


def main(argv: list[str] | None = None) -> int:
    from fluidopt.bounds.checker import check_schedule
    from fluidopt.generators import kv_synthetic
    from fluidopt.io import atomic_path
    from fluidopt.tct import solve_tct

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=6, help="requests per instance (0: the generator's 40–60)")
    p.add_argument("--instances", type=int, default=2, help="seeds 0 … K−1 per arrival model")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (instead of --instances)")
    p.add_argument("--sample", type=int, default=None, help="a random K of the seeds 0 … 199 (as run.py)")
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=30.0)
    p.add_argument("--models", default="1,2")
    p.add_argument("--variants", default=",".join(v for v in VARIANTS if v not in ("cpsat-plain", "cpsat-lin1")),
                   help=f"comma-separated, of {', '.join(VARIANTS)}")
    p.add_argument("--backend", choices=["highs", "cpsat", "both"], default="both",
                   help="keep only the variants of this backend")
    p.add_argument("--reference", default="textbook", help="variant the time ratios are taken against")
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("compare.csv"))
    args = p.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {', '.join(unknown)}")
    if args.backend != "both":
        variants = [v for v in variants if backend_of(v) == args.backend]
    if args.seeds is not None:
        seeds = [int(x) for x in args.seeds.split(",")]
    elif args.sample is not None:
        seeds = np.sort(np.random.default_rng(args.sample_seed).choice(200, args.sample, replace=False)).tolist()
    else:
        seeds = list(range(args.instances))
    n = args.n or None
    rows = []
    for model in [int(m) for m in args.models.split(",")]:
        for seed in seeds:
            w, C = kv_synthetic(model, seed, n)
            for name in variants:
                kw = VARIANTS[name]
                sol = solve_tct(w, C, time_limit=args.time_limit, threads=1, **kw)
                check = check_schedule(w, C, sol.starts)
                rows.append(
                    {
                        "arrival_model": model,
                        "seed": seed,
                        "n": len(w),
                        "capacity": C,
                        "variant": name,
                        "backend": backend_of(name),
                        "status": sol.status,
                        "objective_tct": sol.objective_tct,
                        "best_bound": sol.best_bound,
                        "solve_seconds": sol.info["solve_seconds"],
                        "build_seconds": sol.info["build_seconds"],
                        "n_cols": sol.info["n_cols"],
                        "n_rows": sol.info["n_rows"],
                        "horizon": sol.info["horizon"],
                        "gap": sol.gap,
                        "incumbent_tct": sol.info["incumbent_tct"],
                        "lp_bound": sol.info.get("lp_bound"),
                        "replay_accepted": check.accepted,
                    }
                )
                r = rows[-1]
                print(
                    f"model {model} seed {seed} {name:12s} {r['status']:10s} tct {r['objective_tct']:.0f} "
                    f"bound {r['best_bound']:.0f} cols {r['n_cols']:6d} horizon {r['horizon']:4d} "
                    f"gap {r['gap']:.3f} {r['solve_seconds']:.1f}s replay {'ok' if r['replay_accepted'] else 'REJECTED'}",
                    file=sys.stderr,
                    flush=True,
                )
    df = pd.DataFrame(rows)
    with atomic_path(args.out) as tmp:
        df.to_csv(tmp, index=False)
    closed = df[df["status"] == "optimal"]
    disagree = closed.groupby(["arrival_model", "seed"])["objective_tct"].nunique()
    ref = args.reference if args.reference in variants else variants[0]
    base = df[df["variant"] == ref].set_index(["arrival_model", "seed"])
    out = []
    for name in variants:
        v = df[df["variant"] == name].set_index(["arrival_model", "seed"])
        both = (v["status"] == "optimal") & (base["status"] == "optimal")
        ratio = v.loc[both, "solve_seconds"] / base.loc[both, "solve_seconds"]
        open_ = v["status"] != "optimal"
        out.append(
            {
                "variant": name,
                "closed": f"{int((v['status'] == 'optimal').sum())}/{len(v)}",
                "median s": v["solve_seconds"].median(),
                "max s": v["solve_seconds"].max(),
                "median s of closed": v.loc[~open_, "solve_seconds"].median() if (~open_).any() else None,
                "max gap of open": v.loc[open_, "gap"].max() if open_.any() else 0.0,
                f"time ratio vs {ref} (geo-mean, both closed)": float(np.exp(np.log(ratio).mean())) if len(ratio) else None,
                "both closed": int(both.sum()),
            }
        )
    print(f"# n = {n or '40–60 (generator)'}, seeds {seeds} per arrival model, time limit {args.time_limit:g} s, "
          f"threads 1")
    print(f"# optimum identical across variants wherever two closed: {bool((disagree <= 1).all())}; "
          f"every schedule replayed: {bool(df['replay_accepted'].all())}")
    from run import markdown

    print(markdown(pd.DataFrame(out)))
    return 0 if bool((disagree <= 1).all()) and bool(df["replay_accepted"].all()) else 1


if __name__ == "__main__":
    sys.exit(main())
