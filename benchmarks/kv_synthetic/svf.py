"""SVF and 1-bit SVF on the [KV] synthetic families, against H-SF and MC-Benchmark.

For every seed and both arrival models, each policy runs on the instance (unit time,
the instance's C) and its total completion time Σ c_i is divided by H-SF's (MC-SF with
the true lengths, [KV]'s and [ROB]'s hindsight benchmark) on the same instance. SVF
runs with the true lengths (no ``pred`` column), 1-bit SVF with θ = the median output and
each class projected at its mean output (default) or at its bound (θ, largest output). Prints mean, median and max ratio per family and
policy, and the share of instances where the policy beats H-SF.

Usage::

    python benchmarks/kv_synthetic/svf.py --seeds 200 [--csv out.csv]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

#: (label, policy, parameters)
POLICIES = (("h-sf", "h-sf", {}), ("svf", "svf", {}), ("svf-1bit", "svf-1bit", {}),
            ("svf-1bit bound", "svf-1bit", {"projection": "bound"}), ("mc-benchmark", "mc-benchmark", {}),
            ("fcfs", "fcfs", {}))


def run(seeds: int) -> pd.DataFrame:
    from fluidopt.deployment import unit_deployment
    from fluidopt.executor.engine import simulate
    from fluidopt.executor.policy import make_policy
    from fluidopt.generators import kv_synthetic

    rows = []
    for model in (1, 2):
        for seed in range(seeds):
            w, cap = kv_synthetic(model, seed)
            for label, name, params in POLICIES:
                res = simulate(w, unit_deployment(), make_policy(name, **params), capacity=cap)
                rec = res.records
                rows.append({"arrival_model": model, "seed": seed, "policy": label,
                             "tct": float(rec["completion"].sum()), "unfinished": int((~rec["finished"]).sum()),
                             "evictions": int(rec["evictions"].sum())})
    frame = pd.DataFrame(rows)
    base = frame[frame.policy == "h-sf"].set_index(["arrival_model", "seed"])["tct"]
    frame["ratio_to_hsf"] = frame["tct"] / base.loc[list(zip(frame.arrival_model, frame.seed))].to_numpy()
    return frame


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--csv", type=Path)
    args = ap.parse_args(argv)
    frame = run(args.seeds)
    if args.csv:
        frame.to_csv(args.csv, index=False)
    g = frame.groupby(["arrival_model", "policy"])["ratio_to_hsf"]
    table = pd.DataFrame({"mean": g.mean(), "median": g.median(), "max": g.max(),
                          "beats_hsf": g.apply(lambda r: float(np.mean(r < 1 - 1e-12)))})
    table["unfinished"] = frame.groupby(["arrival_model", "policy"])["unfinished"].sum()
    print(table.round(4).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
