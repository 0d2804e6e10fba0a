# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # [WAIT] Stability limits: latency against the arrival rate
#
# [WAIT] (v3/v4) runs Llama-2-7B on one A100-80GB in the authors' Vidur fork and reports
# the largest arrival rate at which each scheduler's latency stays bounded (the observed
# stability limit λ*):
#
# | workload | WAIT / Nested WAIT | Sarathi | vLLM |
# |---|---|---|---|
# | single type p512d20 (prompt 512, output 20), λ = 12…24 | 23 | 22 | 19 |
# | two types 0.7·p512d20 + 0.3·p512d50, Nested WAIT with segments 1–20, 21–50 | 22 | 21 | 18 |
#
# **What we run instead.** The same workloads (`wait-p512d20`, `wait-two-type`: seeded
# Poisson arrivals) on our deployment `llama2-7b-a100`: an affine per-iteration time
# model fitted to Vidur's public A100 operator profiles, C = 118,784 KV tokens. We do not
# have the authors' Vidur fork (its random-forest runtime predictor), so our iteration
# times, and hence all the limits, are ours; the comparison is about the ordering and
# about how close each policy gets to the fluid limit.
#
# - WAIT thresholds at every λ come from `fluidopt.calibrate.solve_wait` (the latency
#   objective, keep-up slack ε = 0.05, its proxy set for the executor rule being run) at
#   the nominal rate. Above the largest rate where
#   the program is feasible, the thresholds of that rate are reused (column
#   `thresholds_from` in the table).
# - Nested WAIT uses the paper's segments 1–20 and 21–50; its thresholds (n1, n2) are the
#   feasible pair of least base memory + safety buffer (`models.thresholds.nested_best`,
#   ε = 0.05, δ = 0.01, horizon 1 h).
# - We also run WAIT with the authors' code variant (`advance_resident=True`: residents
#   advance whether or not their type is eligible) and, for two types, plain WAIT with
#   both types known.
# - The fluid limit is `max_stable_scale` of the fluid benchmark at total rate 1/s: the
#   largest total rate with Σλu < 1 and M* ≤ C.
#
# **Latency blow-up, precisely.** Each (policy, λ, seed) run serves N requests; the
# window drops the first and last 10% by arrival. With the window's requests in arrival
# order, *growth* = mean latency of its last third / mean latency of its first third,
# averaged over seeds. A rate is **unstable** for a policy when growth > 1.5 (the queue
# is still growing when arrivals stop), or the window's mean latency exceeds 5× the
# policy's own value at the lowest rate of the grid, or requests are left unfinished.
# The observed limit λ* (`observed_limit`) is the largest grid rate below the first
# unstable one. Because the level test is relative to each policy's own low-load
# latency, the table also gives the limit by the growth test alone
# (`observed_limit_growth_only`: the queue still grows / requests unfinished), which is
# the one that corresponds to the fluid model's notion of stability.

# %%
import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fluidopt.bounds.fluid import FluidArrays, FluidType, fluid_from_arrays
from fluidopt.calibrate import ThresholdInfeasible, nested_data, solve_wait
from fluidopt.deployment import load_deployment
from fluidopt.figures import latency_vs_rate
from fluidopt.models.thresholds import nested_best
from fluidopt.reproduce import notebook_env
from fluidopt.sweep import Cell, SweepSpec, run_sweep
from fluidopt.traces import load_workload

env = notebook_env("wait_stability")
DEPLOYMENT = "llama2-7b-a100"
dep = load_deployment(DEPLOYMENT)
N_REQUESTS = 600 if env.quick else 10_000
WORKERS = 1 if env.quick else env.workers  # quick runs are too short to pay for a process pool
SEEDS = 1 if env.quick else 2
GROWTH, LEVEL = 1.5, 5.0  # blow-up: last/first-third latency ratio, multiple of the low-load latency
RATES = {
    "single": [14.0, 20.0, 24.0, 27.0] if env.quick else [float(r) for r in range(12, 31)],
    "two-type": [14.0, 20.0, 24.0] if env.quick else [float(r) for r in range(12, 29)],
}
PUBLISHED = {"single": {"wait": 23, "sarathi": 22, "vllm": 19}, "two-type": {"nested-wait": 22, "sarathi": 21, "vllm": 18}}
print(f"{'quick' if env.quick else 'full'} mode: {N_REQUESTS} requests per run, {SEEDS} seed(s)")

# %% [markdown]
# ## Fluid limits and thresholds
#
# Single type: u = marginal work of one p512d20 request (s), limit = largest λ with
# λu < 1 and M* ≤ C. Two types: the same at the 0.7/0.3 mix.

# %%
single_types = lambda lam: [FluidType(lam, 512, 20, "p512d20")]  # noqa: E731
two_types = lambda lam: [FluidType(0.7 * lam, 512, 20, "p512d20"), FluidType(0.3 * lam, 512, 50, "p512d50")]  # noqa: E731
fluid_limit = {
    "single": fluid_from_arrays(FluidArrays.build(single_types(1.0), dep)).max_stable_scale,
    "two-type": fluid_from_arrays(FluidArrays.build(two_types(1.0), dep)).max_stable_scale,
}
print("fluid stability limit (req/s):", {k: round(v, 2) for k, v in fluid_limit.items()})


def wait_thresholds(types_of, rates, rule):
    """Calibrated WAIT thresholds {label: n} per rate for the executor ``rule`` ("paper" or
    "advance"); past the feasible range, the last feasible ones, with the rate they are from."""
    out, last = {}, None
    for lam in rates:
        arrays = FluidArrays.build(types_of(lam), dep)
        try:
            sol = solve_wait(arrays, objective="latency", epsilon=0.05, rule=rule)
            last = (lam, {lab: int(n) for lab, n in zip(arrays.labels, sol.thresholds)})
        except ThresholdInfeasible:
            pass
        if last is not None:
            out[lam] = last
    return out


def nested_two_segments(lam, seed=0):
    """Nested WAIT plan on segments 1–20, 21–50 (least base memory + buffer), or None."""
    w = load_workload("wait-two-type", rate=lam, requests=N_REQUESTS, seed=seed)
    return nested_best(nested_data(w, dep, epsilon=0.05, delta=0.01, horizon=3600.0), [20, 50])


thr_single = wait_thresholds(single_types, RATES["single"], "paper")
thr_single_adv = wait_thresholds(single_types, RATES["single"], "advance")
thr_two = wait_thresholds(two_types, RATES["two-type"], "paper")
nested = {lam: nested_two_segments(lam) for lam in RATES["two-type"]}
last_nested = None
for lam in RATES["two-type"]:  # past the feasible range, reuse the last feasible pair
    if nested[lam] is not None:
        last_nested = (lam, nested[lam])
    nested[lam] = last_nested
thr_rows = [{"case": "single", "rate": lam, "policy": "wait", "thresholds": json.dumps(t), "thresholds_from": f}
            for lam, (f, t) in thr_single.items()]
thr_rows += [{"case": "single", "rate": lam, "policy": "wait (advance residents)", "thresholds": json.dumps(t),
              "thresholds_from": f} for lam, (f, t) in thr_single_adv.items()]
thr_rows += [{"case": "two-type", "rate": lam, "policy": "wait", "thresholds": json.dumps(t), "thresholds_from": f}
             for lam, (f, t) in thr_two.items()]
thr_rows += [{"case": "two-type", "rate": lam, "policy": "nested-wait",
              "thresholds": json.dumps(dict(zip(["1-20", "21-50"], p.thresholds))), "thresholds_from": f}
             for lam, (f, p) in nested.items() if p is not None]
thresholds = pd.DataFrame(thr_rows)
print(thresholds.to_string(index=False))

# %% [markdown]
# ## Runs
#
# One sweep per (workload, rate) through `fluidopt.sweep`, with a runner that adds the
# latency of the window's first and last thirds to the usual summary row. Full mode:
# 10,000 requests per run (7–14 minutes of arrivals) and 2 seeds per point, λ = 12…30
# (single) and 12…28 (two types) in steps of 1, past the published grid (12…24) so that
# our limits are inside it; quick mode: 600 requests, 1 seed, 3–4 rates.

# %%


def run_with_trend(cell: Cell) -> dict:
    """One sweep cell: the summary row plus mean latency (s) of the window's first and last thirds."""
    from fluidopt.deployment import deployment_for
    from fluidopt.executor.engine import simulate
    from fluidopt.executor.metrics import window_mask
    from fluidopt.executor.policy import make_policy

    w = load_workload(cell.workload, seed=cell.seed, **cell.workload_params)
    result = simulate(w, deployment_for(cell.deployment, w.meta, capacity=cell.capacity),
                      make_policy(cell.policy, **cell.policy_params))
    summary = result.summary(warmup=cell.warmup, cooldown=cell.cooldown)
    rec = result.to_frame()
    win = rec[window_mask(rec, cell.warmup, cell.cooldown)].sort_values(["arrival", "id"])
    lat = win["latency"].to_numpy()
    third = len(lat) // 3
    row = {"key": cell.key, "policy": cell.policy, "seed": cell.seed, "workload": cell.workload}
    row.update({f"workload.{k}": v for k, v in cell.workload_params.items()})
    row.update({f"policy.{k}": json.dumps(v) for k, v in cell.policy_params.items()})
    row.update({k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool)) or v is None})
    row["latency_first_third"] = float(np.mean(lat[:third]))  # NaN (unfinished) propagates on purpose
    row["latency_last_third"] = float(np.mean(lat[-third:]))
    return row


def label_of(row) -> str:
    flag = row.get("policy.advance_resident")
    if row["policy"] == "wait" and isinstance(flag, str) and json.loads(flag):
        return "wait (advance residents)"
    return row["policy"]


def sweep_case(case: str, workload: str, results: Path) -> pd.DataFrame:
    frames = []
    for lam in RATES[case]:
        if case == "single":
            policies = ["vllm", "sarathi", {"name": "wait", "params": {"thresholds": thr_single[lam][1]}},
                        {"name": "wait", "params": {"thresholds": thr_single_adv[lam][1], "advance_resident": True}}]
        else:
            plan = nested[lam][1]
            policies = ["vllm", "sarathi", {"name": "wait", "params": {"thresholds": thr_two[lam][1]}},
                        {"name": "nested-wait",  # a list is a grid axis in a sweep spec: wrap the one value
                         "params": {"segments": [[[20, plan.thresholds[0]], [50, plan.thresholds[1]]]]}}]
        spec = SweepSpec.from_dict({"name": f"stability-{case}", "workload": workload,
                                    "workload_params": {"rate": lam, "requests": N_REQUESTS},
                                    "deployment": DEPLOYMENT, "policies": policies, "seeds": SEEDS,
                                    "warmup": 0.1, "cooldown": 0.1})
        frames.append(run_sweep(spec, results, workers=WORKERS, runner=run_with_trend))
    frame = pd.concat(frames, ignore_index=True)
    frame["case"] = case
    frame["label"] = frame.apply(label_of, axis=1)
    return frame


with tempfile.TemporaryDirectory() as tmp:
    runs = pd.concat([sweep_case("single", "wait-p512d20", Path(tmp) / "single.parquet"),
                      sweep_case("two-type", "wait-two-type", Path(tmp) / "two.parquet")], ignore_index=True)
print(f"{len(runs)} runs; evictions in total: {int(runs['evictions'].sum())}")

# %% [markdown]
# ## Observed limits

# %%
per_rate = (runs.groupby(["case", "label", "workload.rate"])
            .agg(mean_latency=("mean_latency", "mean"), std_latency=("mean_latency", "std"),
                 p90_latency=("p90_latency", "mean"), first_third=("latency_first_third", "mean"),
                 last_third=("latency_last_third", "mean"), unfinished=("unfinished", "sum"),
                 evictions=("evictions", "sum"), seeds=("seed", "count"))
            .reset_index().rename(columns={"workload.rate": "rate"}))
per_rate["growth"] = per_rate["last_third"] / per_rate["first_third"]
per_rate = per_rate.sort_values(["case", "label", "rate"]).reset_index(drop=True)
low = per_rate.groupby(["case", "label"])["mean_latency"].transform("first")
per_rate["diverging"] = (per_rate["growth"] > GROWTH) | (per_rate["unfinished"] > 0) | per_rate["growth"].isna()
per_rate["blowup"] = per_rate["diverging"] | (per_rate["mean_latency"] > LEVEL * low)
env.save_table(per_rate, "latency")


def last_good(part: pd.DataFrame, bad_col: str) -> tuple[float, float]:
    """(largest rate below the first bad one, first bad rate); NaN when none / all bad."""
    bad = part.loc[part[bad_col], "rate"]
    first_bad = float(bad.min()) if len(bad) else np.inf
    good = part.loc[part["rate"] < first_bad, "rate"]
    return (float(good.max()) if len(good) else np.nan), (first_bad if np.isfinite(first_bad) else np.nan)


limit_rows = []
for (case, label), part in per_rate.groupby(["case", "label"]):
    part = part.sort_values("rate")
    lim_blowup, first_blowup = last_good(part, "blowup")
    lim_growth, first_growth = last_good(part, "diverging")
    limit_rows.append({
        "case": case, "policy": label,
        "observed_limit": lim_blowup, "first_blowup": first_blowup,
        "observed_limit_growth_only": lim_growth, "first_diverging": first_growth,
        "grid_max": float(part["rate"].max()),
        "fluid_limit": fluid_limit[case],
        "published_limit": PUBLISHED[case].get(label, np.nan),
    })
limits = pd.DataFrame(limit_rows)
env.save_table(limits, "limits")
print(limits.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
print(per_rate[["case", "label", "rate", "mean_latency", "growth", "diverging", "blowup"]]
      .to_string(index=False, float_format=lambda x: f"{x:.2f}"))

# %%
palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
COLORS = {name: palette[k] for k, name in enumerate(["sarathi", "vllm", "wait", "wait (advance residents)", "nested-wait"])}
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
for ax, case, title in zip(axes, ("single", "two-type"), ("single type p512d20", "two types 0.7·p512d20 + 0.3·p512d50")):
    part = runs[runs["case"] == case]
    observed = {r.policy: r.observed_limit for r in limits[limits["case"] == case].itertuples()}
    ax.set_prop_cycle(color=[COLORS[lab] for lab in sorted(part["label"].unique())])  # same colour per policy
    latency_vs_rate(part, group="label", fluid_limit=fluid_limit[case], observed_limits=observed, ax=ax)
    pub = ", ".join(f"{k} {v}" for k, v in PUBLISHED[case].items())
    ax.set_title(f"{title}, {DEPLOYMENT}\nobserved λ* dotted; published λ*: {pub}", fontsize=9)
env.save_figure(fig, "latency_vs_rate")

# %% [markdown]
# **Reading.** See the limits table above (`observed_limit` and
# `observed_limit_growth_only` beside `published_limit` and `fluid_limit`).
#
# - *Sarathi* reaches its limit where the published one is: in our time model it pays
#   c0 for every 512-token budget of new tokens, about one p512d20 prompt per iteration,
#   and its queue starts to grow (growth test) well before the fluid limit, for one and
#   for two types.
# - *WAIT* (paper rule, calibrated thresholds) keeps a bounded queue up to the grid
#   point just below the fluid limit: its batches pay c0 once for n new prefills plus n
#   requests per stage — the fluid equilibrium's own batch. So our WAIT–Sarathi gap in λ*
#   is larger than the published one (23 vs 22): the published WAIT limit sits well
#   below the fluid limit of their model, ours does not.
# - *vLLM*: latency rises steadily from low load (prefill-only iterations pause every
#   decode) and crosses 5× its low-load value about where Sarathi diverges, while its
#   queue keeps up much longer (growth-only limit): without a batch or token cap its
#   prefill batches grow with the queue and amortise c0. The published vLLM limit (19,
#   18) is lower than ours, and Vidur's engine mechanics do not explain it: with its
#   batch cap, padded token budget, KV blocks and recompute preemption our vLLM at
#   λ = 22, 23 is 0.78–1.02× the plain run (`wait_multiseed_table` factors;
#   `docs/reproduction.md`).
# - *Paper rule vs code rule.* Under the paper's rule residents pause while their type
#   is not eligible, so at low load WAIT is slower than every baseline (each stage waits
#   for the next arrival); the authors' code variant (`advance_resident=True`) removes
#   that penalty and is the fastest policy at low and moderate load. Its level-test limit
#   is lower only because its own low-load latency, the reference of that test, is
#   smaller; by the growth test it holds as long as the paper rule.
# - *Two types.* Plain WAIT (types known) gets closest to the fluid limit; Nested WAIT
#   with segments 1–20, 21–50 (lengths unknown) one step earlier. At low load both pay
#   the pause rule heavily, Nested WAIT more (its n1 ≥ 2 so that n2/n1 > p_2).
# - *Absolute values* differ from the published ones because the iteration-time model
#   differs: ours is an affine fit to Vidur's public operator profiles, theirs the
#   runtimes of the authors' Vidur fork. The published ordering is WAIT > Sarathi > vLLM.
#   Ours by the level test: WAIT first, Sarathi and vLLM together behind it; by the
#   growth test: WAIT and vLLM together ahead of Sarathi (Nested WAIT between them for two
#   types). What reproduces in every reading is WAIT ahead of Sarathi.
