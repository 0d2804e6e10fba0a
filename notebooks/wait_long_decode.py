# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # [WAIT] Long decode p512d1000: latency against the arrival rate, and restarts
#
# [WAIT] (v3/v4), Llama-2-7B on an A100-80GB in the authors' Vidur fork, prompt 512,
# output 1000, λ = 0.5…5.0 requests/s. Published mean latency at λ = 4.5: WAIT 32.3 s,
# Sarathi 41.7 s, vLLM 53.8 s; at λ = 4.0: WAIT 26.4 s vs Sarathi 30.2 s, with 2.88% of
# requests restarted (evicted and recomputed) under Sarathi and none under WAIT.
#
# **What we run instead.** Workload `wait-p512d1000` (seeded Poisson arrivals) on our
# deployment `llama2-7b-a100` (affine per-iteration time fitted to Vidur's public A100
# profiles, C = 118,784 tokens). In this time model a p512d1000 request carries about
# 0.45 s of marginal work (1000 decode iterations at ≈ 0.4 ms each at its context, plus
# its prefill), so the fluid model puts the stability limit near 1.9 requests/s: every
# published rate from 2.0 up is *overloaded* here, and the latency of a finite run there
# grows with the number of requests (it is reported, but it is not a steady-state
# number). The published runs at 4.0–4.5/s were evidently below the authors' limit: their
# simulator's decode iterations are cheaper than our fit's. We therefore compare both at
# the published rates and at the highest rates that are stable for us, where the
# question "does WAIT avoid restarts and beat the baselines near the limit" can be asked.
#
# - WAIT thresholds: `fluidopt.calibrate.calibrate` on each workload for the authors'
#   simulator rule (`rule="advance"`, run with `advance_resident=True`; latency objective,
#   ε = 0.05; the chance memory rule, because one p512d1000 request's volume alone
#   exceeds C). Past the feasible range, the last feasible thresholds are reused.
# - Under the paper's rule the calibration is infeasible here (every one of the 1000
#   stages would stay filled to n ≥ 1: about 10⁶ KV tokens), and the reason shows in the
#   executor: we also run the paper's rule with the same thresholds. With λΔT ≪ 1 (an
#   arrival every 0.2–2 s, an iteration every few tens of ms) it advances residents only
#   when an arrival makes the type eligible, so a 1000-iteration request needs ~1000
#   arrivals and the residents pile up to C.
# - Restart fraction = requests evicted at least once / requests, over the window (first
#   and last 10% of requests dropped).

# %%
import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fluidopt.bounds.fluid import FluidArrays, FluidType, fluid_from_arrays
from fluidopt.calibrate import ThresholdInfeasible, calibrate
from fluidopt.deployment import load_deployment
from fluidopt.figures import latency_vs_rate
from fluidopt.reproduce import notebook_env
from fluidopt.sweep import Cell, SweepSpec, run_sweep
from fluidopt.traces import load_workload

env = notebook_env("wait_long_decode")
DEPLOYMENT = "llama2-7b-a100"
dep = load_deployment(DEPLOYMENT)
N_REQUESTS = 120 if env.quick else 2_000
SEEDS = 1
WORKERS = 1 if env.quick else env.workers
RATES = [1.0, 1.75, 4.0] if env.quick else [0.5, 1.0, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]
PUBLISHED = pd.DataFrame([
    {"rate": 4.5, "label": "wait (advance residents)", "published_latency": 32.3, "published_restart": np.nan},
    {"rate": 4.5, "label": "sarathi", "published_latency": 41.7, "published_restart": np.nan},
    {"rate": 4.5, "label": "vllm", "published_latency": 53.8, "published_restart": np.nan},
    {"rate": 4.0, "label": "wait (advance residents)", "published_latency": 26.4, "published_restart": 0.0},
    {"rate": 4.0, "label": "sarathi", "published_latency": 30.2, "published_restart": 0.0288},
])
limit = fluid_from_arrays(FluidArrays.build([FluidType(1.0, 512, 1000)], dep)).max_stable_scale
print(f"{'quick' if env.quick else 'full'} mode: {N_REQUESTS} requests per run; fluid limit {limit:.3f} req/s")

# %%
thresholds, last = {}, None
for lam in RATES:
    w = load_workload("wait-p512d1000", rate=lam, requests=N_REQUESTS, seed=0)
    try:
        rep = calibrate(w, dep, policy="wait", objective="latency", epsilon=0.05, rule="advance")
        last = (lam, {t["type"]: t["threshold"] for t in rep["thresholds"]}, rep["solution"]["memory_rule"])
    except ThresholdInfeasible:
        pass
    thresholds[lam] = last
print({lam: (f, t, rule) for lam, (f, t, rule) in thresholds.items()})

# %%


def run_with_restarts(cell: Cell) -> dict:
    """One sweep cell: the summary row plus the window's restart fraction (evicted requests / requests)."""
    from fluidopt.deployment import deployment_for
    from fluidopt.executor.engine import simulate
    from fluidopt.executor.metrics import window_mask
    from fluidopt.executor.policy import make_policy

    w = load_workload(cell.workload, seed=cell.seed, **cell.workload_params)
    result = simulate(w, deployment_for(cell.deployment, w.meta, capacity=cell.capacity),
                      make_policy(cell.policy, **cell.policy_params))
    summary = result.summary(warmup=cell.warmup, cooldown=cell.cooldown)
    rec = result.records
    win = rec[window_mask(rec, cell.warmup, cell.cooldown)]
    row = {"key": cell.key, "policy": cell.policy, "seed": cell.seed, "workload": cell.workload}
    row.update({f"workload.{k}": v for k, v in cell.workload_params.items()})
    row.update({f"policy.{k}": json.dumps(v) for k, v in cell.policy_params.items()})
    row.update({k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool)) or v is None})
    row["restart_fraction"] = float((win["evictions"] > 0).mean())
    return row


frames = []
with tempfile.TemporaryDirectory() as tmp:
    for lam in RATES:
        # the type label of a binned workload is its output range ("d1000"); the generator's is p512d1000.
        # Thresholds alone, as the paper runs WAIT: no admission reserve (WAIT's reserve is 0).
        thr = {"p512d1000": next(iter(thresholds[lam][1].values()))}
        spec = SweepSpec.from_dict({
            "name": "long-decode", "workload": "wait-p512d1000",
            "workload_params": {"rate": lam, "requests": N_REQUESTS}, "deployment": DEPLOYMENT,
            "policies": ["vllm", "sarathi", {"name": "wait", "params": {"thresholds": thr, "advance_resident": [True, False]}}],
            "seeds": SEEDS, "warmup": 0.1, "cooldown": 0.1})
        frames.append(run_sweep(spec, Path(tmp) / "runs.parquet", workers=WORKERS, runner=run_with_restarts))
runs = pd.concat(frames, ignore_index=True)
adv = runs["policy.advance_resident"].fillna("null").map(json.loads)
runs["label"] = np.where(runs["policy"] != "wait", runs["policy"],
                         np.where(adv == True, "wait (advance residents)", "wait (paper rule)"))  # noqa: E712
runs["overloaded"] = runs["workload.rate"] > limit
table = runs[["label", "workload.rate", "overloaded", "mean_latency", "p90_latency", "mean_ttft", "restart_fraction",
              "evictions", "unfinished", "peak_kv", "throughput_tokens_per_s"]].rename(columns={"workload.rate": "rate"})
table = table.merge(PUBLISHED, on=["rate", "label"], how="left").sort_values(["rate", "label"])
env.save_table(table, "latency")
print(table.to_string(index=False, float_format=lambda x: f"{x:.3g}"))

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained")
latency_vs_rate(runs, group="label", fluid_limit=limit, ax=axes[0])
pub = PUBLISHED.dropna(subset=["published_latency"])
axes[0].scatter(pub["rate"], pub["published_latency"], marker="x", color="black", zorder=5, label="published")
for r in pub.itertuples():
    axes[0].annotate(r.label.split(" ")[0], (r.rate, r.published_latency), xytext=(4, 0), textcoords="offset points",
                     fontsize=7, va="center")
axes[0].legend(fontsize=7)
axes[0].set_title(f"p512d1000, {DEPLOYMENT}, {N_REQUESTS} requests per run\n(right of the dashed line: overloaded here)",
                  fontsize=9)
for label, part in table.groupby("label"):
    axes[1].plot(part["rate"], 100 * part["restart_fraction"], marker="o", ms=3, label=label)
axes[1].scatter([4.0], [2.88], marker="x", color="black", zorder=5, label="published Sarathi 2.88%")
axes[1].axvline(limit, color="black", ls="--", lw=1)
axes[1].set_xlabel("arrival rate (requests/s)")
axes[1].set_ylabel("restarted requests (%)")
axes[1].legend(fontsize=7)
axes[1].set_title("requests evicted at least once", fontsize=9)
env.save_figure(fig, "latency_vs_rate")

# %%
near = max(r for r in RATES if r < limit)
for lam in sorted({near, *[r for r in (4.0, 4.5) if r in RATES]}):
    part = table[table["rate"] == lam]
    print(f"λ = {lam}: " + "; ".join(f"{r.label} {r.mean_latency:.1f} s, restarts {100 * r.restart_fraction:.2f}%"
                                       f"{'' if np.isnan(r.published_latency) else f' (published {r.published_latency} s)'}"
                                       for r in part.itertuples()))

# %% [markdown]
# ## Why the published WAIT advantage does not appear: one factor at a time
#
# The lengths are the paper's own (one type), so the factors are the load, the time
# model and the reading of WAIT.
#
# 1. **Load relative to the limit.** The paper does not give its limit for p512d1000,
#    but Little's law on its own numbers places the published rows: at λ = 4.0 WAIT's
#    26.4 s means λ·W ≈ 106 requests in the system, and a resident p512d1000 request
#    holds 512 + 500 KV tokens on average, so the cache is about 90% full, i.e. the rows
#    sit near the memory limit. Our rows at 92% of our fluid limit (λ = 1.75) are the
#    equal-relative-load runs (the table above).
# 2. **Time model.** Our decode step costs c_kv = 0.28 µs per cached token (the attention
#    read of Llama-2-7B's 32 KV heads). The authors' notes say several runs used
#    Llama-3-8B, whose grouped-query attention keeps 8 KV heads: a quarter of the KV bytes
#    per token, so a quarter of that read and four times the tokens in the same memory.
#    Two what-ifs on our fit change only that: `kv/4` (c_kv / 4, C unchanged) and
#    `gqa` (c_kv / 4 and C × 4); a third, `gqa + Vidur`, adds the engine mechanics of
#    Vidur's replica (batch cap 128, padded 4,096-token budget, KV blocks of 16,
#    recompute preemption, latest-arrival victim; the settings of `llama2-7b-a100-vidur`).
#    Each runs at the published rates and at 90% of its own fluid limit.
# 3. **Reading of WAIT.** The fluid pipeline holds n* = λ·ΔT* requests per stage; when it
#    is far below 1 every calibrated threshold is n = 1 and WAIT (authors' rule) admits
#    one request per iteration, which is what a continuous-batching scheduler does.
#
# Runs: 1,000 requests (half the table's: these runs only compare policies at one rate),
# one seed; quick mode 120 requests at two rates.

# %%
from dataclasses import replace as with_fields  # noqa: E402

from fluidopt.executor.engine import simulate  # noqa: E402
from fluidopt.executor.metrics import window_mask  # noqa: E402
from fluidopt.executor.policy import make_policy  # noqa: E402
from fluidopt.factors import with_engine_mechanics  # noqa: E402

FACTOR_N = 120 if env.quick else 1_000
what_ifs = {
    "ours": dep,
    "kv/4": with_fields(dep, name="llama2-7b-a100 kv/4", time=with_fields(dep.time, c_kv=dep.time.c_kv / 4)),
    "gqa": with_fields(dep, name="llama2-7b-a100 gqa", capacity=4 * dep.capacity,
                       time=with_fields(dep.time, c_kv=dep.time.c_kv / 4)),
}
what_ifs["gqa + Vidur"] = with_engine_mechanics(what_ifs["gqa"], load_deployment("llama2-7b-a100-vidur"))
p1000 = [FluidType(1.0, 512, 1000)]
factor_rows = []
for tm, d in what_ifs.items():
    lim_tm = fluid_from_arrays(FluidArrays.build(p1000, d)).max_stable_scale
    rates = [round(0.9 * lim_tm, 2)] + ([] if tm == "ours" else [4.0, 4.5])
    if env.quick:
        rates = rates[:2]
    for lam in rates:
        w = load_workload("wait-p512d1000", rate=lam, requests=FACTOR_N, seed=0)
        fb = fluid_from_arrays(FluidArrays.build([FluidType(lam, 512, 1000)], d))
        try:
            rep = calibrate(w, d, policy="wait", objective="latency", epsilon=0.05, rule="advance")
            n_thr = int(rep["thresholds"][0]["threshold"])
        except ThresholdInfeasible:
            n_thr = 1  # outside the calibrated range: the smallest threshold
        for label, name, params in (("vllm", "vllm", {}), ("sarathi", "sarathi", {}),
                                    ("wait (advance residents)", "wait",
                                     {"thresholds": {"p512d1000": n_thr}, "advance_resident": True})):
            res = simulate(w, d, make_policy(name, **params))
            rec = res.records
            win = rec[window_mask(rec, 0.1, 0.1)]
            factor_rows.append({"time_model": tm, "fluid_limit": lim_tm, "rate": lam, "rho": lam / lim_tm,
                                "n_star": lam * fb.delta_t if np.isfinite(fb.delta_t) else np.nan,
                                "threshold": n_thr if name == "wait" else np.nan, "policy": label,
                                "mean_latency": res.summary(warmup=0.1, cooldown=0.1)["mean_latency"],
                                "restart_fraction": float((win["evictions"] > 0).mean())})
factors = pd.DataFrame(factor_rows).merge(PUBLISHED.rename(columns={"label": "policy"}), on=["rate", "policy"],
                                          how="left")
env.save_table(factors, "factors")
print(factors.to_string(index=False, float_format=lambda x: f"{x:.3g}"))

# %% [markdown]
# **Thresholds above 1.** The calibration gives n = 1 because the fluid pipeline holds
# less than one request per stage; a larger n makes WAIT collect n arrivals before it
# admits them together, which is the batching the paper's rule describes. Under the
# `gqa` what-if (the one closest to the published latencies) at the published rates,
# WAIT (authors' rule) with n = 1, 2, 4, 8, 16 against Sarathi's latency at the same
# rate from the table above.

# %%
THRESHOLDS = [1, 4] if env.quick else [1, 2, 4, 8, 16]
sweep_rows = []
for lam in [4.0] if env.quick else [4.0, 4.5]:
    w = load_workload("wait-p512d1000", rate=lam, requests=FACTOR_N, seed=0)
    for n_thr in THRESHOLDS:
        res = simulate(w, what_ifs["gqa"], make_policy("wait", thresholds={"p512d1000": n_thr}, advance_resident=True))
        win = res.records[window_mask(res.records, 0.1, 0.1)]
        sweep_rows.append({"time_model": "gqa", "rate": lam, "threshold": n_thr,
                           "mean_latency": res.summary(warmup=0.1, cooldown=0.1)["mean_latency"],
                           "restart_fraction": float((win["evictions"] > 0).mean())})
threshold_sweep = pd.DataFrame(sweep_rows)
sarathi_gqa = factors[(factors["time_model"] == "gqa") & (factors["policy"] == "sarathi")].set_index("rate")["mean_latency"]
threshold_sweep["vs_sarathi"] = threshold_sweep["mean_latency"] / threshold_sweep["rate"].map(sarathi_gqa)
threshold_sweep = threshold_sweep.merge(
    PUBLISHED[PUBLISHED["label"] == "wait (advance residents)"][["rate", "published_latency"]], on="rate", how="left")
env.save_table(threshold_sweep, "threshold_sweep")
print(threshold_sweep.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
best = threshold_sweep.loc[threshold_sweep.groupby("rate")["mean_latency"].idxmin()]
pub_lat = PUBLISHED.set_index(["rate", "label"])["published_latency"]
for r in best.itertuples():
    print(f"gqa, λ = {r.rate:g}: best WAIT threshold n = {r.threshold} at {r.mean_latency:.1f} s, "
          f"{r.vs_sarathi:.2f}× Sarathi (published WAIT / Sarathi: "
          f"{pub_lat[(r.rate, 'wait (advance residents)')] / pub_lat[(r.rate, 'sarathi')]:.2f})")

# %% [markdown]
# **Memory between ample and short, and WAIT's admission reserve.** The published run has
# Sarathi restarting 2.88% of requests and WAIT none: memory tight, not exhausted. Under
# the `gqa` costs, C is scaled from 1× to 4× of our A100's (C × 4 is `gqa`, C × 1 is
# `kv/4`) at the published rates; WAIT (authors' rule, n = 1) runs without an admission
# reserve, as above, and with one of R = 5–30% of C (new requests are admitted only while
# the next iteration ends at or below C − R, which leaves the residents' decode growth
# room; `fluidopt.calibrate` sizes R for a deployment, the paper's text has no such rule).
# The same with Vidur's engine mechanics (`gqa + Vidur`), whose batch cap of 128 keeps
# memory from binding above about C × 1.25.

# %%
C_SCALES = {"gqa": [1.0, 2.0] if env.quick else [1.0, 1.5, 1.75, 2.0, 2.5, 4.0],
            "gqa + Vidur": [1.0] if env.quick else [1.0, 1.1, 1.25, 2.0]}
RESERVES = [0.0, 0.1] if env.quick else [0.0, 0.05, 0.1, 0.2, 0.3]
regime_rows = []
for tm, k in [(tm, k) for tm, scales in C_SCALES.items() for k in scales]:
    d = with_fields(what_ifs[tm], name=f"llama2-7b-a100 {tm}, C x {k:g}", capacity=int(k * dep.capacity))
    for lam in [4.0] if env.quick else [4.0, 4.5]:
        w = load_workload("wait-p512d1000", rate=lam, requests=FACTOR_N, seed=0)
        runs_k = [("sarathi", 0.0, make_policy("sarathi"))] + [
            ("wait (advance residents)", r, make_policy("wait", thresholds={"p512d1000": 1}, advance_resident=True,
                                                        reserve=int(r * d.capacity))) for r in RESERVES]
        for label, r, policy in runs_k:
            res = simulate(w, d, policy)
            win = res.records[window_mask(res.records, 0.1, 0.1)]
            regime_rows.append({"time_model": tm, "capacity_scale": k, "rate": lam, "policy": label, "reserve_share": r,
                                "mean_latency": res.summary(warmup=0.1, cooldown=0.1)["mean_latency"],
                                "restart_fraction": float((win["evictions"] > 0).mean())})
regimes = pd.DataFrame(regime_rows)
sarathi_at = regimes[regimes["policy"] == "sarathi"].set_index(["time_model", "capacity_scale", "rate"])["mean_latency"]
regimes["vs_sarathi"] = regimes["mean_latency"] / [
    sarathi_at[key] for key in zip(regimes["time_model"], regimes["capacity_scale"], regimes["rate"])]
env.save_table(regimes, "memory_regimes")
print(regimes.to_string(index=False, float_format=lambda x: f"{x:.3g}"))

# %% [markdown]
# **Reading.** See the table and the printed lines above.
#
# - *Below our limit* (λ ≤ 1.75, up to about 92% of the fluid limit) WAIT with the
#   authors' simulator rule, Sarathi and vLLM have nearly the same mean latency and no
#   restarts; vLLM is a few per cent slower near the limit (its prefill-only iterations
#   pause 1000-token decodes). The calibrated thresholds are n = 1 here (the fluid
#   pipeline holds far less than one request per stage), so WAIT's rule reduces to
#   admitting one request per iteration, and it behaves like the chunk-free
#   continuous-batching baselines: the published WAIT advantage on long decodes is not
#   reproduced in our time model.
# - *At the published rates* (4.0, 4.5/s) our deployment is overloaded: every policy
#   fills C and thrashes (most requests are evicted and recomputed at least once), so
#   the latencies are backlogs of a 2,000-request run, not comparable with the published
#   steady-state values, and WAIT restarts as often as the others: it guards only the
#   next iteration's memory. The published run had WAIT restart-free and Sarathi at
#   2.88%, i.e. memory was tight but not exhausted in the authors' simulator.
# - *The paper's rule* restarts every request even at λ = 0.5: residents advance only
#   when an arrival makes their type eligible, they pile up, and the memory fills — the
#   reason the calibration refuses it here.

# **What the factors establish** (full mode, 1,000 requests, seed 0; tables
# `wait_long_decode_factors.csv` and `wait_long_decode_threshold_sweep.csv`):
#
# - **Time model: most of the absolute gap.** On our fit the published rates are 2.1×
#   and 2.4× our fluid limit (1.90/s) and every policy thrashes (474–570 s, 11–20× the
#   published latencies). With a quarter of the KV read per cached token and four
#   times the tokens in the same memory (`gqa`, Llama-3-8B's grouped-query attention)
#   the limit is 3.96/s, λ = 4.0 sits at ρ = 1.01 and nothing restarts: Sarathi 54.8 s,
#   WAIT 55.4 s (1.8× and 2.1× published), at λ = 4.5 (ρ = 1.14, overloaded)
#   Sarathi 69.4, WAIT 72.1, vLLM 79.9 s (1.7×, 2.2×, 1.5×). Vidur's engine mechanics
#   on top (`gqa + Vidur`) bring them to 50.4 and 50.7 s at λ = 4.0 (1.7×, 1.9×) and
#   62.4, 62.8, 67.2 s at 4.5 (1.5×, 1.9×, 1.2×), still without restarts. A quarter of
#   the read alone (`kv/4`, C unchanged) leaves memory short: 61–77% of requests
#   restart.
# - **Reading of WAIT: not the cause.** The calibrated threshold is n = 1 (the fluid
#   pipeline holds 0.5 requests per stage at λ = 4.0 under `gqa`); forcing n = 2, 4, 8,
#   16 makes WAIT slower, 1.01–1.07× Sarathi, never faster.
# - **Memory regime and the admission reserve: the direction, and the restart pattern.**
#   Between ample and short memory (`gqa` costs, C × 2, λ = 4.0) Sarathi restarts 2.4% of
#   requests (published 2.88%). WAIT without a reserve restarts 13.6% there and is 1.06×
#   Sarathi: it guards only the next iteration, and its admissions fill memory the
#   residents need as they grow. With an admission reserve of 5–30% of C it restarts
#   none and is 0.97–0.99× Sarathi; at λ = 4.5 (C × 2) 0.95–0.99× with 3–7% restarts
#   against Sarathi's 15%, and at C × 2.5 0.95–1.00× with at most 0.1%. So the published pattern
#   (Sarathi restarting a few per cent, WAIT none, WAIT ahead) appears when memory is
#   tight and WAIT keeps room for the residents' growth, which its calibration provides
#   and the paper's rule does not state (table `wait_long_decode_memory_regimes.csv`) —
#   in our engine's mechanics (restart preemption, no batch cap). With Vidur's
#   (`gqa + Vidur`), which the authors' simulator has, Sarathi restarts only at C × 1–1.1
#   (14–24%), and WAIT with a reserve is 0.99–1.09× Sarathi there: no advantage. So the pattern is reproduced, but not in the paper's own engine setting.
# - **Not established: the size of the advantage.** Published WAIT / Sarathi is 0.87 at
#   λ = 4.0 and 0.77 at 4.5; our best is 0.97 and 0.95. With ample memory (C × 4) or
#   no reserve WAIT equals continuous batching when n = 1 (WAIT / Sarathi 1.01–1.04
#   under `gqa` and `gqa + Vidur`); with short memory (C × 1–1.5) 15–76% of requests
#   restart under Sarathi and every WAIT variant.
