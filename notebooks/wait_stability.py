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
# The observed limit λ* is the largest grid rate below the first unstable one.

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
SEEDS = 1 if env.quick else 3
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
# latency of the window's first and last thirds to the usual summary row.

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
per_rate["unstable"] = ((per_rate["growth"] > GROWTH) | (per_rate["mean_latency"] > LEVEL * low)
                        | (per_rate["unfinished"] > 0) | per_rate["growth"].isna())
env.save_table(per_rate, "latency")

limit_rows = []
for (case, label), part in per_rate.groupby(["case", "label"]):
    part = part.sort_values("rate")
    bad = part.loc[part["unstable"], "rate"]
    first_bad = bad.min() if len(bad) else np.inf
    stable_rates = part.loc[part["rate"] < first_bad, "rate"]
    limit_rows.append({
        "case": case, "policy": label,
        "observed_limit": float(stable_rates.max()) if len(stable_rates) else np.nan,
        "first_unstable": first_bad if np.isfinite(first_bad) else np.nan,
        "grid_max": float(part["rate"].max()),
        "fluid_limit": fluid_limit[case],
        "published_limit": PUBLISHED[case].get(label, np.nan),
    })
limits = pd.DataFrame(limit_rows)
env.save_table(limits, "limits")
print(limits.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
print(per_rate[["case", "label", "rate", "mean_latency", "growth", "unstable"]]
      .to_string(index=False, float_format=lambda x: f"{x:.2f}"))

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
for ax, case, title in zip(axes, ("single", "two-type"), ("single type p512d20", "two types 0.7·p512d20 + 0.3·p512d50")):
    part = runs[runs["case"] == case]
    observed = {r.policy: r.observed_limit for r in limits[limits["case"] == case].itertuples()}
    latency_vs_rate(part, group="label", fluid_limit=fluid_limit[case], observed_limits=observed, ax=ax)
    pub = ", ".join(f"{k} {v}" for k, v in PUBLISHED[case].items())
    ax.set_title(f"{title}, {DEPLOYMENT}\nobserved λ* dotted; published λ*: {pub}", fontsize=9)
env.save_figure(fig, "latency_vs_rate")

# %% [markdown]
# **Reading.** See the limits table above (`observed_limit` beside `published_limit`
# and `fluid_limit`).
#
# - *Absolute limits.* Ours sit higher than the published ones because the whole
#   iteration-time model is different: in our fitted affine model a p512d20 request
#   costs a fixed amount of marginal work whatever it is batched with (mostly its
#   512-token prefill), so the fluid limit is fixed by that work and by the c0 paid per
#   iteration. The published limits come from Vidur's learned runtimes in the authors'
#   fork.
# - *WAIT vs the fluid limit.* Calibrated WAIT keeps bounded latency closest to the
#   fluid limit: its batches pay c0 once for n new prefills plus n requests at every
#   stage, which is the fluid equilibrium's own batch. Under the paper's rule, residents
#   pause while their type is not eligible, so at low load WAIT is *slower* than the
#   baselines (a request waits for the next arrival at every stage); the code variant
#   (`advance_resident=True`) removes that penalty. The paper's table only shows the
#   high-load end, where this pause costs little.
# - *Sarathi* pays c0 for every 512-token budget of new tokens: at p512d20 that is about
#   one prompt per iteration, and its limit is where the 512-token iterations can no
#   longer keep up. *vLLM* batches whole prefills when a queue forms and pauses decodes
#   meanwhile; its latency rises early (the level test), although without a batch or
#   token cap its queue does not diverge before the fluid limit.
# - The published ordering WAIT > Sarathi > vLLM holds when the rows above say so; where
#   it does not (vLLM vs Sarathi), the reason is the absence of a prefill token cap in
#   our vLLM-like policy and the per-token cost of the chunked iterations, not the
#   scheduler rule of WAIT.
