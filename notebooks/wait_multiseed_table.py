# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # [WAIT] Multi-seed table: mean latency ± std over 10 seeds
#
# Published ([WAIT] v3/v4, Llama-2-7B, A100-80GB, authors' Vidur fork), mean latency in
# seconds ± standard deviation over 10 seeds:
#
# | workload | λ | vLLM | Sarathi | WAIT |
# |---|---|---|---|---|
# | single type p512d20 | 22 | 18.23 ± 2.74 | 1.85 ± 0.33 | 1.03 ± 0.04 |
# | single type p512d20 | 23 | 26.78 ± 3.35 | 5.08 ± 1.72 | 1.29 ± 0.10 |
# | two types 0.7·p512d20 + 0.3·p512d50 | 22 | 56.70 ± 2.22 | 4.06 ± 1.66 | 2.36 ± 0.57 |
# | two types | 23 | 80.25 ± 2.37 | 8.41 ± 1.74 | 5.66 ± 1.88 |
#
# The paper's two-type experiment runs Nested WAIT (segments 1–20, 21–50); we show it
# under `nested-wait` and also plain WAIT with both types known. WAIT is run with the
# paper's rule (`wait`) and with the authors' simulator rule (`wait (advance residents)`:
# resident stages advance whether or not their type is eligible), each with thresholds
# calibrated for that rule.
#
# **What we run instead.** The same workloads (seeded Poisson arrivals, 10,000 requests
# per run, the first and last 10% left out of the mean) on `llama2-7b-a100` (our affine
# iteration-time fit to Vidur's public A100 profiles, C = 118,784). Our fluid limits are
# higher than the paper's observed ones (see `wait_stability`), so λ = 22, 23 are a lighter
# load for us than for the authors: the published rates sit at or just below the paper's
# observed WAIT limit (23). As the nearest analogue we add the two integer rates at about
# 92% and 96% of our fluid limit. Thresholds as in `wait_stability`: WAIT from
# `fluidopt.calibrate.solve_wait` (latency objective, ε = 0.05) at the nominal rate;
# Nested WAIT the feasible (n1, n2) of least base memory + buffer on segments 1–20,
# 21–50. Where the calibration is infeasible at a rate (too close to the limit for the
# slack ε), the thresholds of the largest feasible rate below it (step 0.5/s) are used
# (column `thresholds_from`). The seed of run k is k (arrival times and types).

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
from fluidopt.figures import mean_and_std
from fluidopt.models.thresholds import nested_best
from fluidopt.reproduce import notebook_env
from fluidopt.sweep import SweepSpec, run_sweep
from fluidopt.traces import load_workload

env = notebook_env("wait_multiseed_table")
DEPLOYMENT = "llama2-7b-a100"
dep = load_deployment(DEPLOYMENT)
N_REQUESTS = 400 if env.quick else 10_000
SEEDS = 2 if env.quick else 10
WORKERS = 1 if env.quick else env.workers
PUBLISHED = {
    ("single", 22.0): {"vllm": (18.23, 2.74), "sarathi": (1.85, 0.33), "wait": (1.03, 0.04),
                       "wait (advance residents)": (1.03, 0.04)},
    ("single", 23.0): {"vllm": (26.78, 3.35), "sarathi": (5.08, 1.72), "wait": (1.29, 0.10),
                       "wait (advance residents)": (1.29, 0.10)},
    ("two-type", 22.0): {"vllm": (56.70, 2.22), "sarathi": (4.06, 1.66), "nested-wait": (2.36, 0.57)},
    ("two-type", 23.0): {"vllm": (80.25, 2.37), "sarathi": (8.41, 1.74), "nested-wait": (5.66, 1.88)},
}
TYPES = {
    "single": lambda lam: [FluidType(lam, 512, 20, "p512d20")],
    "two-type": lambda lam: [FluidType(0.7 * lam, 512, 20, "p512d20"), FluidType(0.3 * lam, 512, 50, "p512d50")],
}
WORKLOAD = {"single": "wait-p512d20", "two-type": "wait-two-type"}
limit = {case: fluid_from_arrays(FluidArrays.build(f(1.0), dep)).max_stable_scale for case, f in TYPES.items()}
RATES = {case: [22.0, 23.0] + ([] if env.quick else [float(round(0.92 * lim)), float(round(0.96 * lim))])
         for case, lim in limit.items()}
print(f"{'quick' if env.quick else 'full'} mode: {N_REQUESTS} requests, {SEEDS} seeds; fluid limits",
      {k: round(v, 2) for k, v in limit.items()}, "rates", RATES)

# %%


def nested_two_segments(lam: float):
    """Nested WAIT plan on segments 1–20, 21–50 (least base memory + buffer), or None."""
    w = load_workload("wait-two-type", rate=lam, requests=N_REQUESTS, seed=0)
    return nested_best(nested_data(w, dep, epsilon=0.05, delta=0.01, horizon=3600.0), [20, 50])


def threshold_policies(case: str, lam: float) -> tuple[list, list[dict]]:
    """WAIT (both rules) and, for two types, Nested WAIT at rate ``lam``: sweep policy
    entries and the thresholds used, calibrated at λ or (past the calibrated range) at
    the largest feasible rate below it (step 0.5/s)."""
    arrays = FluidArrays.build(TYPES[case](lam), dep)
    policies: list = []
    rows = []
    for rule, advance in (("paper", False), ("advance", True)):
        name = "wait (advance residents)" if advance else "wait"
        for at in np.arange(lam, 0.0, -0.5):
            try:
                sol = solve_wait(FluidArrays.build(TYPES[case](at), dep), objective="latency", epsilon=0.05,
                                 rule=rule)
            except ThresholdInfeasible:
                continue
            thr = {lab: int(n) for lab, n in zip(arrays.labels, sol.thresholds)}
            policies.append({"name": "wait", "params": {"thresholds": thr, "advance_resident": advance}})
            rows.append({"case": case, "rate": lam, "policy": name, "thresholds": json.dumps(thr),
                         "thresholds_from": at})
            break
    if case == "two-type":
        for at in np.arange(lam, 0.0, -0.5):
            plan = nested_two_segments(at)
            if plan is not None:
                segs = [[20, plan.thresholds[0]], [50, plan.thresholds[1]]]
                policies.append({"name": "nested-wait", "params": {"segments": [segs]}})  # [..]: one value
                rows.append({"case": case, "rate": lam, "policy": "nested-wait", "thresholds": json.dumps(segs),
                             "thresholds_from": at})
                break
    return policies, rows


frames, thr_rows = [], []
with tempfile.TemporaryDirectory() as tmp:
    for case, rates in RATES.items():
        for lam in rates:
            waits, rows = threshold_policies(case, lam)
            policies: list = ["vllm", "sarathi", *waits]
            thr_rows += rows
            spec = SweepSpec.from_dict({"name": f"multiseed-{case}", "workload": WORKLOAD[case],
                                        "workload_params": {"rate": lam, "requests": N_REQUESTS},
                                        "deployment": DEPLOYMENT, "policies": policies, "seeds": SEEDS,
                                        "warmup": 0.1, "cooldown": 0.1})
            part = run_sweep(spec, Path(tmp) / f"{case}.parquet", workers=WORKERS)
            part["case"] = case
            frames.append(part)
runs = pd.concat(frames, ignore_index=True)
runs["policy"] = np.where(runs.get("policy.advance_resident", False) == True, "wait (advance residents)",  # noqa: E712
                          runs["policy"])
print(pd.DataFrame(thr_rows).to_string(index=False))

# %%
rows = []
for case in RATES:
    part = runs[runs["case"] == case]
    s = mean_and_std(part, "workload.rate", "mean_latency", "policy").rename(columns={"workload.rate": "rate"})
    ev = part.groupby(["policy", "workload.rate"])["evictions"].sum()
    for r in s.itertuples():
        pub = PUBLISHED.get((case, r.rate), {}).get(r.policy)
        rows.append({"case": case, "rate": r.rate, "rate_over_fluid_limit": r.rate / limit[case], "policy": r.policy,
                     "mean_latency": r.mean, "std_latency": r.std, "seeds": r.count,
                     "evictions": int(ev[(r.policy, r.rate)]),
                     "published_mean": pub[0] if pub else np.nan, "published_std": pub[1] if pub else np.nan})
table = pd.DataFrame(rows).sort_values(["case", "rate", "policy"]).reset_index(drop=True)
env.save_table(table, "table")
show = table.assign(ours=[f"{m:.2f} ± {s:.2f}" for m, s in zip(table.mean_latency, table.std_latency)],
                    published=[f"{m:.2f} ± {s:.2f}" if np.isfinite(m) else "" for m, s in
                               zip(table.published_mean, table.published_std)])
print(show[["case", "rate", "rate_over_fluid_limit", "policy", "ours", "published", "evictions"]]
      .to_string(index=False, float_format=lambda x: f"{x:.2f}"))

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 5.4), layout="constrained")
for ax, case in zip(axes, RATES):
    part = table[table["case"] == case]
    policies = sorted(part["policy"].unique())
    rates = sorted(part["rate"].unique())
    width = 0.8 / (2 * len(policies))
    for k, pol in enumerate(policies):
        p = part[part["policy"] == pol].set_index("rate").reindex(rates)
        x = np.arange(len(rates)) + (2 * k - len(policies) + 0.5) * width
        bars = ax.bar(x, p["mean_latency"], width, yerr=p["std_latency"], capsize=2, label=f"{pol} (fluidopt)")
        # published WAIT is drawn once, beside the paper-rule run (the table lists it for both rules)
        if p["published_mean"].notna().any() and pol != "wait (advance residents)":
            ax.bar(x + width, p["published_mean"], width, yerr=p["published_std"], capsize=2,
                   color=bars.patches[0].get_facecolor(), alpha=0.35, hatch="//", label=f"{pol} (published)")
    ax.set_xticks(np.arange(len(rates)), [f"λ={r:g}\n({r / limit[case]:.0%} of fluid limit)" for r in rates], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("mean latency (s), mean ± std over seeds")
    ax.set_title(f"{case}: {WORKLOAD[case]}, {DEPLOYMENT}", fontsize=9)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2))
env.save_figure(fig, "table")

# %% [markdown]
# ## Where our numbers differ: one factor at a time
#
# Every published row is off from ours by more than 25%, in both directions. The lengths
# here are the paper's own (fixed types), so the factors are the reading of the
# algorithms, the time model and the load, each changed alone:
#
# 1. **Reading of the algorithms**, at the published rates. WAIT: the paper's rule
#    against the authors' simulator rule (both are in the table above). Nested WAIT: the
#    same switch (`advance_resident`). vLLM: our vLLM-like policy under the engine
#    mechanics of Vidur's vLLM replica (batch cap 128, 4,096-token padded budget, KV
#    blocks of 16 with prompt reservation, recompute preemption, latest-arrival victim:
#    the settings of `llama2-7b-a100-vidur`) on our affine time model.
# 2. **Time model.** vLLM and Sarathi (no thresholds to recalibrate) on the whole Vidur
#    preset `llama2-7b-a100-vidur`: the mechanics above plus Vidur's profile-based
#    iteration time (operator profiles interpolated, `docs/engine-settings.md`), the
#    nearest we have to the authors' simulator.
# 3. **Load relative to each scheduler's own limit.** The published rates sit at or past
#    the paper's observed limits (WAIT 23, Sarathi 22, vLLM 19; two types 22 / 21 / 18),
#    ours are elsewhere (the committed `wait_stability_limits.csv`, column
#    `observed_limit_growth_only`: the largest rate at which the queue stops growing, the
#    sense in which the paper calls latency bounded). Each published row is rerun at
#    λ·(our limit / the paper's limit) for its own scheduler, so that it sits at the
#    same relative load.
#
# Full mode: 10,000 requests and 3 seeds per cell (fewer seeds than the table above; the
# spread is in the table), run in-process; quick mode: 400 requests, 1 seed.

# %%
from fluidopt.deployment import deployment_for  # noqa: E402
from fluidopt.executor.engine import simulate  # noqa: E402
from fluidopt.executor.policy import make_policy  # noqa: E402
from fluidopt.factors import with_engine_mechanics  # noqa: E402
from fluidopt.reproduce import notebook_dir  # noqa: E402

FACTOR_SEEDS = [0] if env.quick else [0, 1, 2]
FACTOR_N = 400 if env.quick else 10_000
PUBLISHED_LIMITS = {"single": {"wait": 23, "wait (advance residents)": 23, "sarathi": 22, "vllm": 19},
                    "two-type": {"nested-wait": 22, "nested-wait (advance residents)": 22, "sarathi": 21, "vllm": 18}}
vidur = load_deployment("llama2-7b-a100-vidur")
vidur_mechanics = with_engine_mechanics(dep, vidur)
stability = pd.read_csv(notebook_dir() / "figures" / "wait_stability_limits.csv")
our_limits = {(r.case, r.policy): float(r.observed_limit_growth_only) for r in stability.itertuples()}
our_limits[("two-type", "nested-wait (advance residents)")] = our_limits[("two-type", "nested-wait")]


def policy_at(case: str, label: str, lam: float) -> tuple[str, dict]:
    """(name, params) of the scheduler ``label`` with thresholds calibrated for rate ``lam``."""
    if label in ("vllm", "sarathi"):
        return label, {}
    waits, _ = threshold_policies(case, lam)
    if label.startswith("nested-wait"):
        segs = next(p for p in waits if p["name"] == "nested-wait")["params"]["segments"][0]
        return "nested-wait", {"segments": segs, "advance_resident": label.endswith("(advance residents)")}
    advance = label == "wait (advance residents)"
    thr = next(p for p in waits if p["name"] == "wait" and p["params"]["advance_resident"] == advance)
    return "wait", thr["params"]


def mean_latency(case: str, label: str, lam: float, deployment=None) -> tuple[float, float, int]:
    """Mean and std over the factor seeds of the window's mean latency (s), and evictions."""
    name, params = policy_at(case, label, lam)
    lat, evictions = [], 0
    for seed in FACTOR_SEEDS:
        w = load_workload(WORKLOAD[case], rate=lam, requests=FACTOR_N, seed=seed)
        d = deployment or deployment_for(DEPLOYMENT, w.meta)
        s = simulate(w, d, make_policy(name, **params)).summary(warmup=0.1, cooldown=0.1)
        lat.append(s["mean_latency"])
        evictions += int(s["evictions"])
    return float(np.mean(lat)), float(np.std(lat, ddof=1)) if len(lat) > 1 else 0.0, evictions


factor_rows = []
for (case, lam), pub in PUBLISHED.items():
    same_rate = [("reading", "vllm", "vllm under Vidur's engine mechanics", vidur_mechanics),
                 ("time model", "vllm", "vllm on the Vidur preset", vidur),
                 ("time model", "sarathi", "sarathi on the Vidur preset", vidur)]
    if case == "two-type":
        same_rate.append(("reading", "nested-wait (advance residents)", "nested-wait, authors' simulator rule", None))
    for factor, label, what, d in same_rate:
        m, sd, ev = mean_latency(case, label, lam, d)
        published = pub[label if label in ("vllm", "sarathi") else "nested-wait"]
        factor_rows.append({"factor": factor, "case": case, "published_rate": lam, "run_rate": lam, "policy": what,
                            "mean_latency": m, "std_latency": sd, "evictions": ev, "published_mean": published[0]})
    for label in PUBLISHED_LIMITS[case]:
        published = pub.get(label.replace(" (advance residents)", "") if case == "two-type" else label)
        if published is None:
            continue
        scale = our_limits[(case, label)] / PUBLISHED_LIMITS[case][label]
        m, sd, ev = mean_latency(case, label, lam * scale)
        factor_rows.append({"factor": "equal relative load", "case": case, "published_rate": lam,
                            "run_rate": lam * scale, "policy": label, "mean_latency": m, "std_latency": sd,
                            "evictions": ev, "published_mean": published[0]})
factors = pd.DataFrame(factor_rows)
factors["ours_over_published"] = factors["mean_latency"] / factors["published_mean"]
env.save_table(factors, "factors")
with pd.option_context("display.width", 180, "display.float_format", "{:.2f}".format):
    print(factors.to_string(index=False))

# %% [markdown]
# **Sarathi near its limit.** Our Sarathi limits equal the published ones at integer
# resolution, so equal relative load is the published rate itself. Near the limit its
# latency climbs steeply with λ, so a small shift of the limit moves the mean a lot:
# a grid of rates in steps of 0.25/s (same seeds and size as above) finds the rate at
# which our Sarathi has each published mean (linear interpolation between grid points),
# and the shift from the published rate.

# %%
SARATHI_GRID = {"single": np.arange(22.0, 24.01, 1.0 if env.quick else 0.25),
                "two-type": np.arange(21.0, 23.01, 1.0 if env.quick else 0.25)}
grid_rows = [{"case": case, "rate": float(lam), "mean_latency": mean_latency(case, "sarathi", float(lam))[0]}
             for case, grid in SARATHI_GRID.items() for lam in grid]
sarathi_grid = pd.DataFrame(grid_rows)
env.save_table(sarathi_grid, "sarathi_grid")
match_rows = []
for (case, lam), pub in PUBLISHED.items():
    curve = sarathi_grid[sarathi_grid["case"] == case].sort_values("rate")
    lat = np.maximum.accumulate(curve["mean_latency"].to_numpy())  # monotone envelope for the inverse
    target = pub["sarathi"][0]
    inside = lat[0] <= target <= lat[-1]
    at = float(np.interp(target, lat, curve["rate"])) if inside else np.nan
    match_rows.append({"case": case, "published_rate": lam, "published_mean": target, "rate_with_published_mean": at,
                       "shift": at - lam})
sarathi_match = pd.DataFrame(match_rows)
env.save_table(sarathi_match, "sarathi_match")
print(sarathi_match.to_string(index=False, float_format=lambda x: f"{x:.2f}"))

# %% [markdown]
# **Reading.** See the table above (ours beside the published mean ± std).
#
# - *Single type, λ = 23* — the published WAIT limit: the published ordering WAIT <
#   Sarathi < vLLM is reproduced, and Sarathi's seed-to-seed spread is large, as
#   published (it is at its limit: its queue grows in some seeds and not in others). Our
#   magnitudes are smaller because λ = 23 is further from our limits than from the
#   authors'. At λ = 22 Sarathi is still below its limit here and is as fast as WAIT.
# - *Nearer our fluid limit* (the added rates) the separation is the published kind:
#   Sarathi's queue diverges first (tens of seconds), vLLM degrades steadily, and WAIT —
#   the authors' simulator rule in particular — stays lowest.
# - *Two types*: Nested WAIT against Sarathi at λ = 23 is close to the published pair;
#   at λ = 22 Nested WAIT pays its low-load pause (paper rule, n1 ≥ 2) and is slower
#   than Sarathi. The published vLLM numbers (56.7 s, 80.3 s) are far past its limit in
#   the authors' simulator; ours is not (no batch or prefill-token cap in our vLLM-like
#   policy), so its latency stays moderate.
# - WAIT with the paper's rule is slower than with the authors' simulator rule at every
#   rate here: residents pause whenever fewer than n_j requests of their type wait, and
#   with two types each type's stages advance only when that type is eligible.
# - No eviction occurred in any WAIT, Nested WAIT or Sarathi run (column `evictions`).

# **What the factors establish** (full mode, 10,000 requests, 3 seeds;
# `wait_multiseed_table_factors.csv`; ratios are ours / published):
#
# - **vLLM: the load relative to its limit.** At the published rates ours is 0.08–0.11×
#   the published (2.06–6.17 s against 18.2–80.3 s). Neither Vidur's engine mechanics
#   (0.06–0.12×) nor the whole Vidur preset with its profile time model (0.09–0.15×)
#   changes that. At equal relative load — λ × 28/19 (single) and × 26/18 (two types),
#   our queue-growth limit over the published one — vLLM is 31.0 and 37.3 s against
#   18.2 and 26.8 (1.70×, 1.39×) and 43.9 and 49.7 s against 56.7 and 80.3 (0.77×,
#   0.62×): the published vLLM rows are past vLLM's limit, ours are not. With our
#   latency-based vLLM limit (22 and 21) instead, the rows would sit at λ ≈ 25.5–26.8,
#   near which the table above has vLLM at 6.7–7.8 s (single, λ = 26, 27) and 9.2 s (two
#   types, λ = 25): the result depends on which limit the paper meant.
# - **WAIT: the reading of the pause rule.** The paper's rule gives 1.35 and 1.90 s at
#   λ = 22, 23 (1.31×, 1.47×); the authors' simulator rule 1.22 and 1.22 s (1.18×,
#   0.95×). Moving WAIT to equal relative load makes it worse (3.8–8.0 s at λ = 26.8
#   and 28, 94% and 98% of our fluid limit): the published WAIT at its limit was still
#   flat.
# - **Nested WAIT: partly the reading.** At λ = 22 the authors' rule gives 1.96 s
#   (0.83×; paper rule 6.48 s, 2.75×); at λ = 23 the paper rule's 6.26 s is the close
#   one (1.11×; authors' rule 2.44 s, 0.43×).
# - **Sarathi: a shift of its limit below the published resolution.** Our Sarathi
#   limits equal the published ones (22, 21), so equal relative load is the published
#   rate: 1.20 / 2.73 / 5.19 / 14.29 s against 1.85 / 5.08 / 4.06 / 8.41 (0.54–1.70×);
#   the Vidur preset gives 0.37–1.11×. Near its limit our Sarathi's mean rises 2.3× from
#   λ = 22 to 23 (single) and 2.8× (two types), and the grid above finds each published
#   mean at λ + 0.59 and + 0.46 (single, λ = 22, 23) and λ − 0.19 and − 0.63 (two
#   types): the published Sarathi rows are ours with the limit moved by at most 0.63
#   requests/s (2.7%), which integer limits cannot resolve.
