# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # [ROB] Amax and Amin against the prediction accuracy α = ℓ/u
#
# [ROB] (arXiv 2508.14544) study the semi-online problem: all requests are present at
# time 0, prompts are known and each output length o_i is only known to lie in a
# prediction interval [ℓ_i, u_i] of accuracy α = ℓ_i/u_i. **Amax** runs MC-SF with õ = u
# (never overflows, conservative); **Amin** runs MC-SF with a pseudo-length that starts
# at ℓ and is raised when a request outlives it, evicting the requests that have done
# the least work when memory runs out. Published (qualitative, on LMSYS-Chat-1M): Amin
# stays close to the hindsight scheduler H-SF (MC-SF with the true lengths), while Amax
# degrades sharply as the intervals widen, **up to about 5×** H-SF's latency. They prove
# an O(log(1/α)) competitive ratio for Amin; Amax's ratio grows like 1/α² (constants
# not quoted here).
#
# **Nearest data we have.** LMSYS-Chat-1M may not be redistributed, so the lengths are a
# lognormal sample matched to its published statistics (`lengths_matching` with
# `LMSYS_STATS`: prompt mean 40.62 / median 11, output mean 85.32 / median 45), all at
# time 0, in the unit-time model of [ROB] with C = 16,492 KV tokens (the [KV] real-trace
# capacity; [ROB]'s own C is not in our spec). Intervals come from
# `with_prediction_interval`: the truth sits uniformly inside [ℓ, u] with ℓ/u = α.
# Latency with every request at 0 is the completion time, so the metric is total
# completion time tct = Σ c_i and the ratio is tct(policy)/tct(H-SF). Evictions and
# wasted tokens (generated, then discarded by an eviction) are reported for every Amin
# run.
#
# **Choice made here.** An interval end u_i above C − s_i is cut to C − s_i before the
# run: every admitted request satisfies s_i + o_i ≤ C (the workload is validated
# against C), so this is information the scheduler has, and without it Amax could never
# start a request whose u_i alone overflows C. The number of cut intervals is printed.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fluidopt.deployment import unit_deployment
from fluidopt.executor.engine import simulate
from fluidopt.executor.policy import make_policy
from fluidopt.figures import ratio_vs_alpha
from fluidopt.generators import LMSYS_STATS, kv_synthetic, lengths_matching, with_prediction_interval
from fluidopt.reproduce import notebook_env
from fluidopt.tct import solve_tct

env = notebook_env("rob_amax_amin")
C = 16_492
N = 400 if env.quick else 3_000
SEEDS = [0] if env.quick else [0, 1, 2]
ALPHAS = [1.0, 0.5, 0.1] if env.quick else [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
print(f"mode {'quick' if env.quick else 'full'}: {N} requests at t = 0, C = {C}, seeds {SEEDS}, α {ALPHAS}")


def intervals(w, alpha: float, seed: int, capacity: int):
    """Prediction intervals of accuracy α, with u cut to C − s (see the choice above)."""
    wp = with_prediction_interval(w, alpha, seed)
    cap = capacity - wp.prompt
    cut = int((wp.pred_hi > cap).sum())
    return wp.replace(pred_hi=np.minimum(wp.pred_hi, cap)), cut


def run(w, policy: str, capacity: int) -> dict:
    start = time.perf_counter()
    s = simulate(w, unit_deployment(capacity), make_policy(policy)).summary()
    assert s["unfinished"] == 0, f"{policy} left {s['unfinished']} requests unfinished"
    return {"tct": s["tct"], "evictions": s["evictions"], "wasted_tokens": s["wasted_tokens"],
            "peak_kv": s["peak_kv"], "wall_seconds": time.perf_counter() - start}


# %% [markdown]
# ## Matched LMSYS lengths: ratio to H-SF against α
#
# A seed fixes the lengths (`lengths_matching(seed=seed)`) and the interval draws
# (`with_prediction_interval(seed=1000 + seed)`). H-SF does not depend on α.

# %%
rows, cut_total = [], 0
for seed in SEEDS:
    w = lengths_matching(**LMSYS_STATS, n=N, seed=seed, rate=None)
    hsf = run(w, "h-sf", C)
    rows.append({"seed": seed, "alpha": 1.0, "policy": "h-sf", **hsf})
    for alpha in ALPHAS:
        wp, cut = intervals(w, alpha, 1000 + seed, C)
        cut_total += cut
        for policy in ("amax", "amin"):
            rows.append({"seed": seed, "alpha": alpha, "policy": policy, "intervals_cut": cut, **run(wp, policy, C)})
lmsys = pd.DataFrame(rows)
hsf_tct = lmsys[lmsys["policy"] == "h-sf"].set_index("seed")["tct"]
lmsys["ratio_hsf"] = lmsys["tct"] / lmsys["seed"].map(hsf_tct)
env.save_table(lmsys, "lmsys_runs")
print(f"interval ends cut to C − s: {cut_total} over all runs")
table = (lmsys[lmsys["policy"] != "h-sf"].groupby(["alpha", "policy"])
         .agg(ratio_hsf=("ratio_hsf", "mean"), ratio_std=("ratio_hsf", "std"), evictions=("evictions", "mean"),
              wasted_tokens=("wasted_tokens", "mean")).reset_index()
         .pivot(index="alpha", columns="policy").sort_index(ascending=False))
table.columns = [f"{p}_{m}" for m, p in table.columns]
table = table[["amax_ratio_hsf", "amin_ratio_hsf", "amin_evictions", "amin_wasted_tokens",
               "amax_evictions"]].reset_index()
env.save_table(table, "lmsys_ratio")
with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
    print(table.to_string(index=False))

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
ratio_vs_alpha(lmsys[lmsys["policy"] != "h-sf"], y="ratio_hsf", ax=ax1)
ax1.set_ylabel("tct / tct(H-SF)")
ax1.set_title(f"matched LMSYS lengths, {N:,} requests at t = 0, C = {C:,}; mean ± std over {len(SEEDS)} seed(s)",
              fontsize=8)
amin = lmsys[lmsys["policy"] == "amin"].groupby("alpha")[["evictions", "wasted_tokens"]].mean().sort_index()
ax2.plot(amin.index, amin["evictions"], marker="o", ms=3, label="evictions")
ax2.set_ylabel("Amin evictions per run")
ax2.set_xlabel("prediction accuracy α = ℓ/u")
ax2.invert_xaxis()
twin = ax2.twinx()
twin.plot(amin.index, amin["wasted_tokens"], marker="s", ms=3, color="tab:red", label="wasted tokens")
twin.set_ylabel("Amin wasted tokens per run")
ax2.legend(handles=ax2.get_lines() + twin.get_lines(), fontsize=8, loc="upper left")
ax2.set_title("Amin: evictions and wasted tokens (Amax never evicts)", fontsize=8)
env.save_figure(fig, "ratio_vs_alpha")

# %% [markdown]
# ## Small instances: ratio to the MIP optimum (or its bounds)
#
# [KV] synthetic instances, arrival model 1 (all at 0, C ~ U{30…50}, prompts U{1…5}),
# cut to a few requests so that the time-indexed MIP (`fluidopt.tct.solve_tct`, HiGHS)
# can be attempted within a per-instance time limit. An instance that does not close is
# kept: its optimum lies between the MIP's best bound and its best schedule, so each
# policy gets two ratios, tct/best schedule (≤ the true ratio) and tct/bound (≥ it);
# they coincide when the MIP closed.

# %%
SMALL_N = 4 if env.quick else 7
SMALL_SEEDS = range(2) if env.quick else range(12)
SMALL_ALPHAS = [1.0, 0.5, 0.2] if not env.quick else [0.5]
LIMIT = 5.0 if env.quick else 20.0
small = []
for seed in SMALL_SEEDS:
    w, cap = kv_synthetic(1, seed, n=SMALL_N)
    sol = solve_tct(w, cap, time_limit=LIMIT)
    base = {"instance": seed, "capacity": cap, "n": len(w), "mip_status": sol.status,
            "mip_tct": sol.objective_tct, "mip_bound": sol.best_bound, "mip_seconds": sol.seconds}
    small.append({**base, "alpha": 1.0, "policy": "h-sf", **run(w, "h-sf", cap)})
    for alpha in SMALL_ALPHAS:
        wp, _ = intervals(w, alpha, 1000 + seed, cap)
        for policy in ("amax", "amin"):
            small.append({**base, "alpha": alpha, "policy": policy, **run(wp, policy, cap)})
small = pd.DataFrame(small)
small["ratio_best"] = small["tct"] / small["mip_tct"]
small["ratio_bound"] = small["tct"] / small["mip_bound"]
assert (small["ratio_best"] >= 1 - 1e-9).all(), "no policy may beat the MIP's best schedule by more than it"
env.save_table(small, "small_mip")
closed = small.drop_duplicates("instance")["mip_status"].eq("optimal")
print(f"MIP closed {int(closed.sum())} of {len(closed)} instances (n = {SMALL_N}, limit {LIMIT:g} s each)")
small_table = (small.groupby(["policy", "alpha"])
               .agg(ratio_best=("ratio_best", "mean"), ratio_best_max=("ratio_best", "max"),
                    ratio_bound=("ratio_bound", "mean"), evictions=("evictions", "mean"),
                    wasted_tokens=("wasted_tokens", "mean")).reset_index())
env.save_table(small_table, "small_summary")
with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
    print(small_table.to_string(index=False))

# %%
fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
for k, (policy, part) in enumerate(small.groupby("policy", sort=True)):
    stats = part.groupby("alpha").agg(best=("ratio_best", "mean"), bound=("ratio_bound", "mean")).sort_index()
    x = stats.index.to_numpy() + (k - 1) * 0.012
    ax.vlines(x, stats["best"], stats["bound"], color=f"C{k}", lw=2, alpha=0.6)
    ax.plot(x, stats["best"], marker="o", ms=4, ls="", color=f"C{k}", label=f"{policy}: tct / best MIP schedule")
    ax.plot(x, stats["bound"], marker="_", ms=10, ls="", color=f"C{k}")
ax.axhline(1.0, color="grey", lw=0.8)
ax.invert_xaxis()
ax.set_xlabel("prediction accuracy α = ℓ/u")
ax.set_ylabel("ratio to the optimum (mean over instances)")
ax.set_title(f"[KV] synthetic, n = {SMALL_N}, all at 0; bar up to tct / MIP bound "
             f"({int(closed.sum())}/{len(closed)} closed)", fontsize=8)
ax.legend(fontsize=8)
env.save_figure(fig, "small_vs_mip")

# %% [markdown]
# ## Why Amax degrades less than published: where the truth sits in its interval
#
# Published: Amax up to about 5× H-SF as the intervals widen; ours at most the worst
# mean ratio in the table above. Amax reserves memory for u_i, so its cost is set by
# how far u_i lies above the truth o_i, and that depends on how the intervals are drawn,
# which the paper's setting (as our spec has it) does not fix. Our intervals put the
# truth uniformly inside [ℓ, u] (`with_prediction_interval`), so u/o averages
# ln(1/α)/(1 − α) (2.6 at α = 0.1). The other reading the text allows puts the truth at
# the lower end, ℓ = o and u = o/α (cut to C − s as above): the over-reservation is then
# the full 1/α. Same sample, same C, seed 0, Amax only (H-SF and Amin do not use u).

# %%
worst_rows = []
w0 = lengths_matching(**LMSYS_STATS, n=N, seed=SEEDS[0], rate=None)
hsf0 = run(w0, "h-sf", C)["tct"]
for alpha in [a for a in ALPHAS if a < 1.0]:
    wp, _ = intervals(w0, alpha, 1000 + SEEDS[0], C)
    hi = np.maximum(np.minimum(np.ceil(w0.output / alpha).astype(np.int64), C - w0.prompt), w0.output)
    at_low = wp.replace(pred_lo=w0.output.copy(), pred_hi=hi)
    worst_rows.append({"alpha": alpha, "amax_uniform": run(wp, "amax", C)["tct"] / hsf0,
                       "amax_truth_at_lower_end": run(at_low, "amax", C)["tct"] / hsf0,
                       "mean_u_over_o_uniform": float(np.mean(wp.pred_hi / w0.output)),
                       "mean_u_over_o_lower_end": float(np.mean(hi / w0.output))})
interval_reading = pd.DataFrame(worst_rows)
env.save_table(interval_reading, "interval_reading")
with pd.option_context("display.width", 160, "display.float_format", "{:.2f}".format):
    print(interval_reading.to_string(index=False))

# %%
amax_worst = table["amax_ratio_hsf"].max()
amin_worst = table["amin_ratio_hsf"].max()
lowest = table["alpha"].min()
print(f"matched LMSYS: at α = {lowest:g}, Amax {table.loc[table.alpha == lowest, 'amax_ratio_hsf'].iloc[0]:.2f}× H-SF, "
      f"Amin {table.loc[table.alpha == lowest, 'amin_ratio_hsf'].iloc[0]:.2f}× H-SF "
      f"(published: Amin close to H-SF, Amax up to ~5×)")
print(f"worst mean ratio over α: Amax {amax_worst:.2f}, Amin {amin_worst:.2f}")
print(f"Amax at α = {lowest:g} with the truth at the lower end of its interval: "
      f"{interval_reading.loc[interval_reading.alpha == lowest, 'amax_truth_at_lower_end'].iloc[0]:.2f}× H-SF "
      f"(uniformly inside: {interval_reading.loc[interval_reading.alpha == lowest, 'amax_uniform'].iloc[0]:.2f}×)")

# %% [markdown]
# **Reading.** The published shape holds for Amax: its ratio to H-SF grows steadily as
# the intervals widen (first table and left panel). Amin does not degrade: it stays at
# or *below* H-SF at every α. That is a property of the unit-time model with these
# lengths rather than a contradiction of [ROB]: H-SF (MC-SF with true lengths) reserves
# memory for every resident's whole future, while Amin admits on the optimistic ℓ and
# repairs overflows by evicting the requests with the least work done; an iteration
# costs one round whatever the batch, so the only price of an eviction is the evicted
# request's lost rounds (the evictions and wasted tokens in the right panel), and the
# fuller cache more than pays for it. H-SF is a benchmark, not the optimum, once
# prompts differ. Our Amax degradation is milder than the published "up to ~5×", and
# the interval experiment above says why: where the truth sits in its interval sets
# Amax's over-reservation. With the truth uniformly inside [ℓ, u] (our default) u/o
# averages 2.6 at α = 0.1 and Amax reaches 1.54× H-SF; with the truth at the lower end
# (u = o/α) the same sample gives 3.97× at α = 0.2 and 7.99× at α = 0.1, bracketing the
# published ~5×. Which placement [ROB] used (and its C and request count, not in our
# spec) is not established. On the small [KV]
# synthetic instances, scored against the MIP (second table and figure), both policies
# lose ground as α falls, Amin less than Amax, and at α = 1 all three coincide with
# H-SF; the ratios there are bracketed between the best MIP schedule and the MIP's bound,
# which coincide on the instances the MIP closed (count printed above).
