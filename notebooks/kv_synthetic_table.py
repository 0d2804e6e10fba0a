# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # [KV] synthetic table: MC-SF against the hindsight optimum
#
# [KV] (arXiv 2502.07115) draw 200 random instances per arrival model in the unit-time
# model (C ~ U{30…50}, n ~ U{40…60} requests, prompts U{1…5}, outputs U{1…C−s};
# arrival model 1: all at round 0, model 2: Poisson with rate U(0.5, 1.5) per round),
# solve the time-indexed MIP with Gurobi and compare MC-SF with it. Published ratio
# MC-SF / optimum: **model 1 average 1.005, best 1.000, worst 1.074, exactly optimal in
# 114 of 200; model 2 average 1.047, best 1.000, worst 1.227.** They report no solve
# times or gaps.
#
# **What we run.** The same generator (`fluidopt.generators.kv_synthetic`, one seed per
# instance) and MC-SF with exact lengths in the executor; the optimum comes from the
# project's completion-time program (`fluidopt.tct.solve_tct`) with an open-source
# solver — OR-Tools CP-SAT on the cumulative model (`BACKEND = "cpsat"`, the faster of
# the two on this benchmark, see `benchmarks/kv_synthetic/README.md`) or HiGHS on the
# time-indexed MIP (`BACKEND = "highs"`) — one thread and a per-instance time limit. The per-instance work is the [KV] synthetic
# benchmark's own `solve_instance` (`benchmarks/kv_synthetic/run.py`), reused here, so
# the notebook and the benchmark score instances the same way: an instance the MIP
# does not close within the limit is **kept and scored against its best lower bound**
# (its ratio is then an upper bound on the true ratio) and counted as open; beside it we
# show the ratio to the best schedule known (the MIP's incumbent or MC-SF's own, a lower
# estimate of the true ratio), so the two bracket it. Every MIP schedule is replayed
# through the executor's memory accounting. The ratio is of total
# completion time Σ c_i, the MIP's objective; with arrivals (model 2) the ratio of total
# latency Σ (c_i − a_i) is larger, and is shown beside it.
#
# **Subset.** With either solver on this machine most native-size instances do not close
# within a minute (see the solve-time profile), and 400 solves at the limit would take hours,
# so the full mode solves a seeded random subset of the 200 instance seeds per model (numbers
# printed below), each with the time limit printed below; quick mode solves a few
# instances cut to 5 requests.

# %%
import importlib.util
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fluidopt.figures import ratio_distribution, solve_time_profile
from fluidopt.generators import kv_synthetic
from fluidopt.reproduce import notebook_dir, notebook_env

env = notebook_env("kv_synthetic_table")
# the benchmark lives in the source checkout next to notebooks/ (it is not in the wheel)
bench_path = notebook_dir().resolve().parent / "benchmarks" / "kv_synthetic" / "run.py"
if not bench_path.exists():
    raise FileNotFoundError(f"this notebook needs a source checkout: {bench_path} is missing")
spec = importlib.util.spec_from_file_location("kv_synthetic_bench", bench_path)
bench = importlib.util.module_from_spec(spec)
sys.modules["kv_synthetic_bench"] = bench
spec.loader.exec_module(bench)

MODELS = [1, 2]
INSTANCES = 200  # the published seed range 0 … 199
BACKEND = "cpsat"  # or "highs"
if env.quick:
    SAMPLE, N, LIMIT = 2, 5, 2.0
else:
    SAMPLE, N, LIMIT = 12, None, 30.0
SAMPLE_SEED = 0
seeds = np.sort(np.random.default_rng(SAMPLE_SEED).choice(INSTANCES, SAMPLE, replace=False))
print(f"mode {'quick' if env.quick else 'full'}: seeds {seeds.tolist()} of 0…{INSTANCES - 1} per model "
      f"(sample seed {SAMPLE_SEED}), n = {N or '40–60 (generator)'}, time limit {LIMIT:g} s, 1 thread, "
      f"backend {BACKEND}")

# %%
rows = []
for model in MODELS:
    for seed in seeds.tolist():
        row = bench.solve_instance(model, seed, N, LIMIT, BACKEND, lp=not env.quick)
        w, _ = kv_synthetic(model, seed, N)
        arrivals = float(np.ceil(w.arrival).sum())  # Σ a_i in rounds (epochs are integers)
        ref = row["objective_tct"] if row["closed"] else row["best_bound"]
        row["tel_ratio"] = (row["mcsf_tct"] - arrivals) / (ref - arrivals)
        # the best schedule known (MIP incumbent or MC-SF itself): a lower estimate of the ratio
        row["ratio_best_known"] = row["mcsf_tct"] / min(row["objective_tct"], row["mcsf_tct"])
        rows.append(row)
results = pd.DataFrame(rows)
assert results["replay_accepted"].all(), "every MIP schedule must replay in the executor"
env.save_table(results, "instances")
table = bench.table(results)
tel = results.groupby("arrival_model").agg(**{
    "latency ratio avg": ("tel_ratio", "mean"), "latency ratio worst": ("tel_ratio", "max")})
table = table.merge(tel, left_on="arrival model", right_index=True)
env.save_table(table, "table")
with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.3f}".format):
    print(table.T.to_string(header=False))

# %%
fig, axes = plt.subplots(1, len(MODELS), figsize=(11, 4), layout="constrained", sharey=True)
for ax, model in zip(np.atleast_1d(axes), MODELS):
    part = results[results["arrival_model"] == model]
    ratio_distribution(part.assign(estimate="MC-SF / best bound (upper estimate)"), ratio="ratio",
                       group="estimate", ax=ax)
    ax.hist(part["ratio_best_known"], bins=np.linspace(1.0, max(1.0 + 1e-9, results["ratio"].max()) + 1e-9, 25),
            alpha=0.5, color="tab:green", label="MC-SF / best schedule known (lower estimate)")
    for line in list(ax.lines) + list(ax.texts):
        line.remove()  # the helper's published markers are redrawn below with a legend entry
    ax.axvline(bench.PUBLISHED[model]["avg"], color="black", ls="--", lw=1,
               label=f"published average {bench.PUBLISHED[model]['avg']}")
    ax.set_xlabel("MC-SF tct / optimum")
    ax.set_title(f"arrival model {model}: {len(part)} instances, {int(part['closed'].sum())} closed "
                 f"({BACKEND}, {LIMIT:g} s)", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
env.save_figure(fig, "ratio_distribution")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
solve_time_profile(results.assign(model=results["arrival_model"].map(lambda m: f"arrival model {m}")),
                   seconds="total_seconds", closed="closed", group="model", ax=ax1)
ax1.axvline(LIMIT, color="grey", ls=":", lw=1)
ax1.set_title(f"solve time ({BACKEND}, 1 thread, limit {LIMIT:g} s)", fontsize=9)
for model, part in results.groupby("arrival_model"):
    ax2.scatter(part["n"], 100 * part["gap"].astype(float), s=18, label=f"arrival model {model}")
ax2.set_xlabel("requests n")
ax2.set_ylabel("gap at the end of the solve (%)")
ax2.set_ylim(bottom=0)
ax2.set_title("(incumbent − best bound) / incumbent", fontsize=9)
ax2.legend(fontsize=8)
env.save_figure(fig, "solve_time_profile")

# %%
for model, g in results.groupby("arrival_model"):
    pub = bench.PUBLISHED[int(model)]
    best = g["ratio_best_known"]
    print(f"model {model}: MC-SF / optimum (best bound if open) avg {g['ratio'].mean():.3f} best {g['ratio'].min():.3f} "
          f"worst {g['ratio'].max():.3f}; MC-SF / best schedule known avg {best.mean():.3f} worst {best.max():.3f}; "
          f"exactly optimal {int(g['mcsf_optimal'].sum())} of {len(g)} ({int(g['closed'].sum())} closed) — "
          f"published {pub['avg']} / {pub['best']} / {pub['worst']}, exactly optimal {pub['exact']}")

# %% [markdown]
# **Reading.** How far this reproduces the published table depends on the solver, not
# on MC-SF. With the backend and time limit above, most native-size instances stay open
# (closed count in the table, solve-time profile) and the proven bound stays well below
# the best schedule (the gap panel; in full mode the bound is the larger of the solver's and
# the LP relaxation's). Scored against that bound, as the issue requires for open
# instances, MC-SF's ratio (the table's "MC-SF/opt (bound if open)" columns) is an upper
# estimate dominated by the gap. Scored against the best schedule known (the MIP's
# incumbent, started from the best of MC-SF, Sorted-F and other heuristic schedules),
# it is a lower estimate; the "best found" rows and the printed lines above give it for
# both arrival models, beside the published 1.005 and 1.047. The true ratio lies
# between the two estimates. "Exactly optimal" can only be counted on closed instances,
# so it is not comparable with the published 114 of 200 when few close. Other
# differences: a subset of the 200 seeds is solved (printed above), and our arrival
# model 2 rounds continuous Poisson arrivals down to the round (documented in
# `kv_synthetic`), a detail the paper leaves open. For model 2 the total-latency ratio
# is larger than the tct ratio because the common Σ a_i is subtracted from both sides.
# Closing these instances needs a stronger formulation or solver (see
# `benchmarks/kv_synthetic/`).
