# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # [VAR] Sorted-F against MC-SF, FCFS and the hindsight optimum
#
# [VAR] (arXiv 2508.06133) study the offline problem (all requests at time 0) with
# heterogeneous prompt lengths. They prove that minimising total completion time is
# NP-hard, that FCFS and shortest-first (SF) have competitive ratios that grow like √C
# with the KV capacity C on adversarial instances, and that **Sorted-F** — repeatedly
# form the memory-feasible batch with the smallest F(X) = Σ_{i∈X} o_i / |X|², run batches
# in ascending F — is constant-competitive (ratio ≤ **48**). Empirically they report up
# to **30 %** lower latency than the baselines on a mix of conversation and
# summarisation requests.
#
# **What we run.** (1) Sorted-F, MC-SF and FCFS on the [KV] synthetic family, arrival
# model 1 (all at round 0; C ~ U{30…50}; prompts U{1…5}, so prompts differ; outputs
# U{1…C−s}), scored against the time-indexed MIP (`fluidopt.tct.solve_tct`, HiGHS) with
# a per-instance time limit. (2) The adversarial family `adversarial_fcfs_sf(C)` (the
# project's construction, documented in `fluidopt.generators`; [VAR]'s own instance is
# not in our spec): ⌈√C⌉ "fat" requests (prompt C − 1, output 1, each needs the whole
# cache) listed first and C "thin" ones (prompt 1, output 2). FCFS meets the fats first
# and SF/MC-SF sort them first (shorter output), so every thin request waits ⌈√C⌉
# rounds; Sorted-F's F is 1 for a fat and 2/k for k thins, so it serves the thins first.
# Policies follow the project's readings (docstrings of `fluidopt.executor.policies`);
# Sorted-F here uses the true lengths, as in the paper's offline setting. All runs are
# in the unit-time model, where latency with every request at 0 is the completion time,
# so the metric is tct = Σ c_i.
#
# Runs are plain executor calls rather than a `fluidopt.sweep` grid: each instance
# carries its own C, the runs take milliseconds, and the MIP solves dominate.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fluidopt.bounds.tct import lower_bounds
from fluidopt.deployment import unit_deployment
from fluidopt.executor.engine import simulate
from fluidopt.figures import ratio_distribution
from fluidopt.generators import adversarial_fcfs_sf, kv_synthetic
from fluidopt.reproduce import notebook_env
from fluidopt.tct import solve_tct

env = notebook_env("var_sorted_f")
POLICIES = ["sorted-f", "mc-sf", "fcfs"]


def run(w, policy: str, capacity: int) -> dict:
    s = simulate(w, unit_deployment(capacity), policy).summary()
    assert s["unfinished"] == 0, f"{policy} left requests unfinished"
    return {"tct": s["tct"], "evictions": s["evictions"]}


# %% [markdown]
# ## [KV] synthetic family, all requests at 0
#
# An instance the MIP does not close within the limit is kept: its optimum lies between
# the MIP's best bound and its best schedule, so each policy gets `ratio_best` (tct over
# the best schedule the MIP found, a lower estimate of the true ratio) and `ratio_bound`
# (tct over the best bound, an upper estimate). They coincide when the MIP closed.

# %%
KV_SEEDS = range(2) if env.quick else range(16)
KV_N = 6 if env.quick else None  # None: the family's own n ~ U{40…60}
KV_LIMIT = 2.0 if env.quick else 20.0
kv_rows = []
for seed in KV_SEEDS:
    w, cap = kv_synthetic(1, seed, n=KV_N)
    sol = solve_tct(w, cap, time_limit=KV_LIMIT)
    bound = max(sol.best_bound or 0.0, lower_bounds(w, cap, lp=False)["best"])
    for policy in POLICIES:
        kv_rows.append({"instance": seed, "n": len(w), "capacity": cap, "policy": policy, **run(w, policy, cap),
                        "mip_status": sol.status, "mip_tct": sol.objective_tct, "bound": bound,
                        "mip_seconds": sol.seconds})
kv = pd.DataFrame(kv_rows)
kv["ratio_best"] = kv["tct"] / kv["mip_tct"]
kv["ratio_bound"] = kv["tct"] / kv["bound"]
env.save_table(kv, "kv_synthetic_runs")
closed = kv.drop_duplicates("instance")["mip_status"].eq("optimal")
kv_summary = (kv.groupby("policy").agg(ratio_best_mean=("ratio_best", "mean"), ratio_best_max=("ratio_best", "max"),
                                       ratio_bound_mean=("ratio_bound", "mean"),
                                       below_best=("ratio_best", lambda r: int((r < 1 - 1e-9).sum())),
                                       equal_best=("ratio_best", lambda r: int((abs(r - 1) < 1e-9).sum())))
              .reset_index())
sf_vs_mcsf = kv.pivot(index="instance", columns="policy", values="tct")
kv_summary["vs_mc_sf_mean"] = kv_summary["policy"].map((sf_vs_mcsf.div(sf_vs_mcsf["mc-sf"], axis=0)).mean())
env.save_table(kv_summary, "kv_synthetic_summary")
print(f"MIP closed {int(closed.sum())} of {len(closed)} instances (limit {KV_LIMIT:g} s each; n = "
      f"{kv['n'].min()}…{kv['n'].max()})")
with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
    print(kv_summary.to_string(index=False))

# %%
fig = ratio_distribution(kv, ratio="ratio_best", group="policy")
ax = fig.axes[0]
ax.set_xlabel("tct / best MIP schedule (= optimum where the MIP closed)")
ax.set_title(f"[KV] synthetic, arrival model 1, {len(closed)} instances "
             f"({int(closed.sum())} closed in {KV_LIMIT:g} s)", fontsize=9)
env.save_figure(fig, "kv_synthetic_ratio")

# %% [markdown]
# ## The adversarial family against C
#
# The MIP is small here (identical requests are aggregated into two groups), so it
# closes for the capacities where it is attempted; above that the reference is the
# best schedule found (Sorted-F's) and the best lower bound (the MIP's or the
# memory-volume bound).

# %%
CAPS = [16, 36, 64] if env.quick else [16, 36, 64, 144, 256, 576, 1024, 2304, 4096]
MIP_MAX_C = 64 if env.quick else 1024
ADV_LIMIT = 5.0 if env.quick else 60.0
ADV_POLICIES = ["fcfs", "sf", "mc-sf", "mc-benchmark", "sorted-f"]
adv_rows = []
for cap in CAPS:
    w, _ = adversarial_fcfs_sf(cap)
    runs = {p: run(w, p, cap) for p in ADV_POLICIES}
    ref = {"mip_status": "not run", "mip_tct": np.nan, "mip_bound": np.nan}
    if cap <= MIP_MAX_C:
        sol = solve_tct(w, cap, time_limit=ADV_LIMIT)
        ref = {"mip_status": sol.status, "mip_tct": sol.objective_tct, "mip_bound": sol.best_bound}
    best = np.nanmin([ref["mip_tct"], *(r["tct"] for r in runs.values())])
    bound = np.nanmax([ref["mip_bound"], lower_bounds(w, cap, lp=False)["best"]])
    for p, r in runs.items():
        adv_rows.append({"capacity": cap, "sqrt_c": np.sqrt(cap), "n": len(w), "policy": p, **r, **ref,
                         "best_known": best, "bound": bound})
adv = pd.DataFrame(adv_rows)
adv["ratio_best"] = adv["tct"] / adv["best_known"]
adv["ratio_bound"] = adv["tct"] / adv["bound"]
env.save_table(adv, "adversarial")
wide = adv.pivot(index="capacity", columns="policy", values="ratio_best")
with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
    print(adv.drop_duplicates("capacity")[["capacity", "n", "mip_status", "mip_tct", "best_known", "bound"]]
          .to_string(index=False))
    print(wide.to_string())
# growth exponent of FCFS's ratio: slope of log(ratio) against log(C) over the largest capacities
big = wide.index >= (wide.index[len(wide) // 2])
slope = np.polyfit(np.log(wide.index[big]), np.log(wide["fcfs"][big]), 1)[0]
print(f"FCFS (= SF = MC-SF here) ratio grows like C^{slope:.2f} over C ≥ {wide.index[big].min()} "
      f"(√C would be C^0.50); Sorted-F's ratio stays ≤ {wide['sorted-f'].max():.3f}")

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
for k, policy in enumerate(ADV_POLICIES):
    part = adv[adv["policy"] == policy]
    ax.plot(part["capacity"], part["ratio_best"], marker="o", ms=4 if policy != "sf" else 7, ls="-",
            mfc="none" if policy in ("sf", "mc-benchmark") else None, label=policy, color=f"C{k}")
first = wide.iloc[0]["fcfs"]
c0 = wide.index[0]
ax.plot(wide.index, first * np.sqrt(wide.index / c0), color="black", ls=":", lw=1, label="∝ √C")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("KV capacity C (tokens)")
ax.set_ylabel("tct / best known schedule")
ax.set_title("adversarial family: ⌈√C⌉ fat (s = C−1, o = 1) then C thin (s = 1, o = 2)", fontsize=9)
ax.legend(fontsize=8)
env.save_figure(fig, "adversarial_vs_c")

# %% [markdown]
# ## Conversation and summarisation mixed: the nearest we have to [VAR]'s data
#
# [VAR]'s "up to 30 %" comes from a mix of conversation and summarisation requests,
# whose prompts differ by thousands of tokens. The nearest public lengths we ship are
# ShareGPT (conversation) and arXiv summarization: equal numbers of each, drawn at random
# without replacement from the whole trace (one draw per seed), all at 0, unit time, C = 8,192 and 16,384 tokens (every request fits: ShareGPT's
# total is ≤ 8,192). No MIP here (thousands of requests); each policy is compared with
# Sorted-F directly. FCFS and SF do not check future memory, so they evict.

# %%
from fluidopt.traces import load_workload  # noqa: E402
from fluidopt.workload import Workload  # noqa: E402

MIX_N = 20 if env.quick else 500  # requests of each kind
MIX_SEEDS = [0] if env.quick else [0, 1, 2]
MIX_CAPS = [8192] if env.quick else [8192, 16384]
mix_rows = []
traces = [load_workload(name) for name in ("sharegpt", "arxiv-summarization")]
for seed in MIX_SEEDS:
    rng = np.random.default_rng(seed)
    picks = [rng.choice(len(w), size=MIX_N, replace=False) for w in traces]
    frame = pd.DataFrame({"arrival": 0.0, "prompt": np.concatenate([w.prompt[k] for w, k in zip(traces, picks)]),
                          "output": np.concatenate([w.output[k] for w, k in zip(traces, picks)])})
    mix = Workload.from_frame(frame, name="sharegpt+arxiv", source=f"sharegpt + arxiv-summarization seed={seed}")
    for cap in MIX_CAPS:
        for policy in ["sorted-f", "mc-sf", "sf", "fcfs"]:
            mix_rows.append({"seed": seed, "capacity": cap, "n": len(mix), "policy": policy, **run(mix, policy, cap)})
mix_runs = pd.DataFrame(mix_rows)
sorted_f_tct = mix_runs[mix_runs["policy"] == "sorted-f"].set_index(["seed", "capacity"])["tct"]
mix_runs["sorted_f_reduction_pct"] = 100 * (1 - mix_runs.set_index(["seed", "capacity"]).index.map(sorted_f_tct)
                                            / mix_runs["tct"])
mix_summary = (mix_runs.groupby(["capacity", "policy"], sort=False)
               .agg(tct=("tct", "mean"), evictions=("evictions", "mean"),
                    sorted_f_reduction_pct=("sorted_f_reduction_pct", "mean"),
                    reduction_min=("sorted_f_reduction_pct", "min"),
                    reduction_max=("sorted_f_reduction_pct", "max")).reset_index())
env.save_table(mix_summary, "mix")
with pd.option_context("display.width", 160, "display.float_format", "{:.1f}".format):
    print(mix_summary.to_string(index=False))
for cap in MIX_CAPS:
    part = mix_summary[(mix_summary["capacity"] == cap) & (mix_summary["policy"] != "sorted-f")]
    print(f"C = {cap}: Sorted-F's total completion time is "
          + ", ".join(f"{r.sorted_f_reduction_pct:.1f}% below {r.policy} ({r.reduction_min:.1f}–{r.reduction_max:.1f})"
                      for r in part.itertuples())
          + " (published: up to 30% lower latency)")

# %% [markdown]
# **Reading.** On the adversarial family FCFS, SF, MC-SF and MC-Benchmark make the same
# schedule (fats one by one, then the thins), and their ratio to the optimum grows with
# C at about the √C rate [VAR] prove (the fitted exponent is printed above; at small C
# the additive terms still matter), while Sorted-F stays close to the optimum at every
# C (its largest ratio is printed above) — the qualitative claim of [VAR], far inside
# their worst-case constant 48. On the [KV] synthetic
# family, whose prompts differ only a little (1…5 tokens), MC-SF is already near the
# best schedule the MIP finds and Sorted-F does not improve on it (summary table above;
# `vs_mc_sf_mean` is each policy's tct over MC-SF's): batching by F only pays when
# prompts differ enough to make length-only orderings pack memory badly, which is
# [VAR]'s point, and Sorted-F's atomic batches (a batch starts only when all of it fits)
# cost a little on instances where MC-SF's request-by-request filling is already good.
# FCFS, with no length information, is far behind on this family. The MIP did not close every native-size instance within its
# limit (count above), so `ratio_best` is a lower and `ratio_bound` an upper estimate of
# the true ratio there. [VAR]'s "up to 30 %" was measured on real length mixes we do not
# have; the adversarial family shows the mechanism rather than that number. On the
# nearest mix we ship (ShareGPT + arXiv summarization, last table) Sorted-F is below
# every baseline: 7.7% below MC-SF and 10.4% below SF at C = 8,192, 1.2% and 2.6% at
# 16,384, and 51–57% below FCFS; the gain over the memory-aware baselines shrinks as
# C grows, since fewer requests then wait.
