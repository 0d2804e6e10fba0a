# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # [KV] Real-trace experiment: MC-SF against MC-Benchmark and α-protection
#
# [KV] (arXiv 2502.07115) simulate Llama2-70B on two A100s with Vidur (KV capacity
# C = 16,492 tokens) on 10,000 LMSYS-Chat-1M conversations (prompt mean 40.62 / median 11,
# output mean 85.32 / median 45 tokens) arriving as a Poisson process at λ = 50 req/s
# (high demand) and λ = 10 req/s (low demand). They compare MC-SF with MC-Benchmark (FCFS
# with MC-SF's future-memory check) and with α-protection greedy / β-clearing for
# α ∈ {0.3, 0.25, 0.2, 0.1} and β ∈ {0.2, 0.1}. Published: average latency **32.11**
# (MC-SF) against **46.47** (MC-Benchmark), about **31 % lower**; the smallest α that
# avoided trouble was 0.21 (high) / 0.24 (low); MC-SF stays good when its length
# predictions are noisy (õ ~ U[(1−ε)o, (1+ε)o], ε ∈ {0.2, 0.5, 0.8}). Our spec quotes the
# 32.11 / 46.47 pair without its demand level or unit, so we compare the *relative*
# reduction at both demand levels.
#
# **Nearest data we have.** LMSYS-Chat-1M may not be redistributed. The lengths here
# come from the shipped workload `lmsys-matched`: independent lognormal prompt and output
# lengths matched to the four statistics above (10,000 requests, seeded), with Poisson
# arrivals at the paper's two rates. The time model is our affine fit of Llama-2-70B on
# two A100s to SplitwiseSim measurements (`llama2-70b-2xa100`, C = 16,492), not Vidur.
# A lognormal with these mean/median pairs has a heavier tail than the real outputs are
# likely to have (E[o²] drives the KV-time volume), so our server saturates at a lower
# rate than the paper's and absolute latencies are not comparable; the ordering of the
# policies and the size of MC-SF's advantage are what this notebook checks.
#
# Policies (`fluidopt.executor.policies`; their docstrings state the exact rules, which
# are the project's reading of [KV]): `mc-sf`, `mc-benchmark`, `alpha-greedy` (admit FCFS
# while projected usage ≤ (1−α)·C, evict the most recently admitted on overflow) and
# `alpha-beta` (as greedy, but on overflow evict until a fraction β of C is free), and
# `svf` / `svf-1bit` (MC-SF's check with candidates by smallest projected KV volume
# õ·s + õ(õ+1)/2; the 1-bit variant knows only whether o is above the median and projects
# each class at its mean output — the project's reading of Kong, Qi, Ye, Zhou,
# arXiv 2606.22327, in `fluidopt/executor/policies/svf.py`).
# Without a prediction column MC-SF, MC-Benchmark and SVF use the true lengths.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml

from fluidopt.figures import latency_vs_rate
from fluidopt.reproduce import notebook_env
from fluidopt.sweep import SweepSpec, run_sweep
from fluidopt.traces import spec_dir

env = notebook_env("kv_real_trace")
REQUESTS = 500 if env.quick else 10_000
SEEDS = [0] if env.quick else [0, 1, 2]
RATES = [50.0, 10.0]  # high and low demand of [KV], req/s
ALPHAS = [0.3, 0.1] if env.quick else [0.3, 0.25, 0.2, 0.1]
BETAS = [0.2, 0.1]
EPSILONS = [0.2, 0.5, 0.8]
DEPLOYMENT = "llama2-70b-2xa100"
PUBLISHED = {"mc-sf": 32.11, "mc-benchmark": 46.47}
print(f"mode {'quick' if env.quick else 'full'}: {REQUESTS} requests, seeds {SEEDS}, rates {RATES}")

# %% [markdown]
# One sweep for the policy comparison (exact lengths) and one per noise level ε, whose
# workload is `lmsys-matched` with a point prediction added (`with_point_prediction`,
# through the spec's `prediction` key). The seed of a cell fixes the lengths, the
# arrivals and the prediction noise.

# %%
base_spec = yaml.safe_load((spec_dir() / "lmsys-matched.yaml").read_text())
policies = ["mc-sf", "mc-benchmark", "svf", "svf-1bit",
            {"name": "alpha-greedy", "params": {"alpha": ALPHAS}},
            {"name": "alpha-beta", "params": {"alpha": ALPHAS, "beta": BETAS}}]
common = {"workload_params": {"rate": RATES, "requests": REQUESTS}, "deployment": DEPLOYMENT, "seeds": SEEDS}
frames = []
with tempfile.TemporaryDirectory() as tmp:
    spec = SweepSpec.from_dict({"name": "kv-real-trace", "workload": "lmsys-matched", "policies": policies, **common})
    frames.append(run_sweep(spec, Path(tmp) / "policies.parquet", workers=env.workers).assign(eps=0.0))
    for eps in EPSILONS:
        path = Path(tmp) / f"lmsys-matched-eps{eps}.yaml"
        path.write_text(yaml.safe_dump({**base_spec, "name": f"lmsys-matched-eps{eps}",
                                        "prediction": {"point_eps": eps}}))
        spec = SweepSpec.from_dict({"name": "kv-real-trace-noise", "workload": str(path),
                                    "policies": ["mc-sf", "mc-benchmark", "svf"], **common})
        frames.append(run_sweep(spec, Path(tmp) / f"noise{eps}.parquet", workers=env.workers).assign(eps=eps))
runs = pd.concat(frames, ignore_index=True)


def label(row: pd.Series) -> str:
    if row["policy"] == "alpha-greedy":
        return f"α-greedy α={row['policy.alpha']:g}"
    if row["policy"] == "alpha-beta":
        return f"α-β α={row['policy.alpha']:g} β={row['policy.beta']:g}"
    return str(row["policy"])


runs["label"] = runs.apply(label, axis=1)
runs["rate"] = runs["workload.rate"]
runs["demand"] = runs["rate"].map({50.0: "high (λ=50)", 10.0: "low (λ=10)"})
cols = ["demand", "rate", "eps", "label", "policy", "policy.alpha", "policy.beta", "seed", "mean_latency",
        "p50_latency", "p99_latency", "mean_ttft", "evictions", "wasted_tokens", "unfinished", "makespan",
        "mean_kv_util", "wall_seconds"]
runs = runs[cols].sort_values(["rate", "eps", "label", "seed"], ascending=[False, True, True, True])
env.save_table(runs, "runs")
assert (runs["unfinished"] == 0).all(), "every request must finish"

# %% [markdown]
# ## Policy comparison (exact lengths)
#
# Mean over seeds of each run's average end-to-end latency (s), its p99, evictions and
# wasted tokens (tokens generated and then discarded by an eviction), and the achieved
# request throughput (requests / makespan).

# %%
exact = runs[runs["eps"] == 0.0].copy()
exact["throughput"] = REQUESTS / exact["makespan"]
summary = (exact.groupby(["demand", "rate", "label"], sort=False)
           .agg(mean_latency=("mean_latency", "mean"), std_latency=("mean_latency", "std"),
                p99_latency=("p99_latency", "mean"), evictions=("evictions", "mean"),
                wasted_tokens=("wasted_tokens", "mean"), throughput=("throughput", "mean"))
           .reset_index())
summary["std_latency"] = summary["std_latency"].fillna(0.0)
mcsf = summary[summary["label"] == "mc-sf"].set_index("rate")["mean_latency"]
summary["vs_mc_sf"] = summary["mean_latency"] / summary["rate"].map(mcsf)
summary = summary.sort_values(["rate", "mean_latency"], ascending=[False, True])
env.save_table(summary, "summary")
with pd.option_context("display.width", 160, "display.float_format", "{:.2f}".format):
    print(summary.to_string(index=False))

# %%
comparison = []
for rate, part in summary.groupby("rate", sort=False):
    lat = part.set_index("label")["mean_latency"]
    comparison.append({
        "demand": part["demand"].iloc[0], "mc_sf": lat["mc-sf"], "mc_benchmark": lat["mc-benchmark"],
        "reduction_pct": 100 * (1 - lat["mc-sf"] / lat["mc-benchmark"]),
        "best_alpha_policy": part[part["label"].str.startswith("α")].iloc[0]["label"],
        "best_alpha_latency": part[part["label"].str.startswith("α")]["mean_latency"].min(),
        "published_mc_sf": PUBLISHED["mc-sf"], "published_mc_benchmark": PUBLISHED["mc-benchmark"],
        "published_reduction_pct": 100 * (1 - PUBLISHED["mc-sf"] / PUBLISHED["mc-benchmark"]),
    })
comparison = pd.DataFrame(comparison)
env.save_table(comparison, "comparison")
with pd.option_context("display.width", 160, "display.float_format", "{:.2f}".format):
    print(comparison.to_string(index=False))

# %%
fig, axes = plt.subplots(1, len(RATES), figsize=(11, 4.6), layout="constrained", sharey=False)
for ax, rate in zip(np.atleast_1d(axes), RATES):
    part = summary[summary["rate"] == rate].sort_values("mean_latency")
    colours = ["tab:green" if lb == "mc-sf" else "tab:orange" if lb == "mc-benchmark" else "tab:grey"
               for lb in part["label"]]
    ax.barh(part["label"], part["mean_latency"], xerr=part["std_latency"], color=colours)
    for y, (lat, sd, ev) in enumerate(zip(part["mean_latency"], part["std_latency"], part["evictions"])):
        ax.annotate(f"{lat:.0f}" + (f"  ({ev:.0f} evictions)" if ev else ""), (lat + sd, y), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel("mean end-to-end latency (s)")
    ax.set_title(f"{part['demand'].iloc[0]}: MC-SF {100 * (1 - mcsf[rate] / part.set_index('label')['mean_latency']['mc-benchmark']):.0f}%"
                 f" below MC-Benchmark (published 31%)", fontsize=9)
    ax.margins(x=0.25)
fig.suptitle(f"lmsys-matched lengths, {REQUESTS:,} requests, {DEPLOYMENT} (C = 16,492), "
             f"mean ± std over {len(SEEDS)} seed(s)", fontsize=9)
env.save_figure(fig, "latency_by_policy")

# %% [markdown]
# ## The smallest α that avoids evictions
#
# [KV] report 0.21 (high demand) and 0.24 (low) as the smallest α that avoided trouble,
# finer than their grid {0.3, 0.25, 0.2, 0.1}. α-protection greedy on the same
# workloads and seeds for α = 0.01 … 0.30 in steps of 0.01: the smallest α from which
# no seed evicts at any larger α on the grid.

# %%
from fluidopt.deployment import load_deployment  # noqa: E402
from fluidopt.executor.engine import simulate  # noqa: E402
from fluidopt.executor.policy import make_policy  # noqa: E402
from fluidopt.traces import load_workload  # noqa: E402

ALPHA_GRID = np.round(np.arange(0.05, 0.301, 0.05) if env.quick else np.arange(0.01, 0.301, 0.01), 2)
dep70 = load_deployment(DEPLOYMENT)
alpha_rows = []
for rate in RATES:
    for seed in SEEDS:
        w = load_workload("lmsys-matched", rate=rate, requests=REQUESTS, seed=seed)
        for alpha in ALPHA_GRID:
            s = simulate(w, dep70, make_policy("alpha-greedy", alpha=float(alpha))).summary()
            alpha_rows.append({"rate": rate, "seed": seed, "alpha": float(alpha), "evictions": int(s["evictions"]),
                               "mean_latency": s["mean_latency"]})
alpha_scan = pd.DataFrame(alpha_rows)
env.save_table(alpha_scan, "alpha_scan")
for rate, part in alpha_scan.groupby("rate", sort=False):
    evicting = part.groupby("alpha")["evictions"].sum()
    bad = evicting[evicting > 0]
    published = 0.21 if rate == 50.0 else 0.24
    if len(bad):
        safe = evicting.index[evicting.index > bad.index.max()].min()
        print(f"λ = {rate:g}: α-greedy evicts (in some seed) up to α = {bad.index.max():g}; no evictions from "
              f"α = {safe:g} on (published {published})")
    else:
        print(f"λ = {rate:g}: α-greedy never evicts on the grid (published {published})")

# %% [markdown]
# ## Prediction noise
#
# MC-SF, MC-Benchmark and SVF ordering and checking memory with õ ~ U[(1−ε)o, (1+ε)o]. An
# under-predicted request can outgrow the check, so the engine evicts (most recently
# admitted first) when an iteration would overflow; ε = 0 is the exact-length run.

# %%
noise = runs[runs["policy"].isin(["mc-sf", "mc-benchmark", "svf"])].copy()
noise_table = (noise.groupby(["demand", "rate", "policy", "eps"], sort=False)
               .agg(mean_latency=("mean_latency", "mean"), evictions=("evictions", "mean"),
                    wasted_tokens=("wasted_tokens", "mean")).reset_index())
exact_lat = noise_table[noise_table["eps"] == 0.0].set_index(["rate", "policy"])["mean_latency"]
noise_table["vs_exact"] = [lat / exact_lat[(r, p)] for r, p, lat in
                           zip(noise_table["rate"], noise_table["policy"], noise_table["mean_latency"])]
env.save_table(noise_table, "noise")
with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
    print(noise_table.to_string(index=False))

# %%
fig, axes = plt.subplots(1, len(RATES), figsize=(10, 3.8), layout="constrained")
for ax, rate in zip(np.atleast_1d(axes), RATES):
    part = noise[noise["rate"] == rate]
    latency_vs_rate(part, x="eps", group="policy", logy=False, ax=ax)
    ax.set_xlabel("prediction noise ε (õ ~ U[(1−ε)o, (1+ε)o])")
    ax.set_ylabel("mean end-to-end latency (s)")
    ax.set_ylim(bottom=0)
    ax.set_title(part["demand"].iloc[0], fontsize=9)
env.save_figure(fig, "noise")

# %%
for rate, (_, row) in zip(RATES, comparison.iterrows()):  # comparison rows follow RATES
    print(f"λ={rate:g}: MC-SF {row.mc_sf:.1f} s vs MC-Benchmark {row.mc_benchmark:.1f} s "
          f"→ {row.reduction_pct:.0f}% lower (published 32.11 vs 46.47 → 31% lower)")
for rate in RATES:
    thr = summary[(summary["rate"] == rate) & (summary["label"] == "mc-sf")]["throughput"].iloc[0]
    print(f"λ={rate:g}: MC-SF completes {thr:.2f} requests/s over the run (arrival rate {rate:g}/s)")
worst_noise = noise_table[noise_table["policy"] == "mc-sf"]["vs_exact"].max()
print(f"MC-SF latency with noisy predictions: at most {worst_noise:.2f}× its exact-length latency")

# %% [markdown]
# ## Why our reduction is larger than the published one: one factor at a time
#
# MC-Benchmark / MC-SF is 3.1× here at λ = 50 against 46.47 / 32.11 = 1.45× published.
# Three factors could make the difference; each is changed alone, on MC-SF and
# MC-Benchmark with exact lengths, 10,000 requests (the paper's count; quick mode 400),
# seed 0. Latency of an overloaded finite run grows with the number of requests, so the
# count is held at the paper's (the last cell varies it).
#
# 1. **Load relative to the server's limit.** λ* = fluid limit of the length sample on
#    `llama2-70b-2xa100` (`fluidopt.factors.fluid_limit`); runs at ρ·λ* for a range of
#    relative loads ρ. The paper's λ = 50 is ρ ≈ 5.4 here; the paper's own λ* is not
#    published.
# 2. **Reading of the algorithms.** [KV] add candidates "while" the check passes; we read
#    that as stopping at the first failure. The other reading the text allows skips a
#    failing candidate and keeps trying later ones (`first_fit=True`), for both policies.
# 3. **Length sample**, at equal relative load: the matched lognormal; the same sample
#    clipped at 4,096 tokens in total (the paper simulated with Vidur, whose trace loader
#    clips every request to the model's 4,096-token context); the tail cut (requests
#    dropped) at 2,048 and 1,024 tokens in total and at the caps of the [WAIT] authors'
#    LMSYS-Chat-1M files (prompt < 200, output < 500); and two real mixes, ShareGPT and
#    Azure conv, clipped at 4,096 like Vidur does. Each sample has its own λ*, so every
#    sample runs at the same ρ. The lognormal variants are the first 10,000 requests of
#    one seeded draw that survive the cut.

# %%
from fluidopt.factors import fluid_limit, truncate_lengths, with_poisson_arrivals  # noqa: E402
from fluidopt.generators import LMSYS_STATS, lengths_matching  # noqa: E402

FACTOR_N = 400 if env.quick else 10_000
PUBLISHED_RATIO = PUBLISHED["mc-benchmark"] / PUBLISHED["mc-sf"]
draw = lengths_matching(**LMSYS_STATS, n=2 * FACTOR_N, seed=0, rate=None)
s_all, o_all = draw.prompt, draw.output


def first_n(lengths: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return lengths[0][:FACTOR_N], lengths[1][:FACTOR_N]


samples = {
    "lognormal (matched)": first_n((s_all, o_all)),
    "clipped at 4,096 total (Vidur)": truncate_lengths(*first_n((s_all, o_all)), max_total=4096, mode="clip"),
    "cut at 2,048 total": first_n(truncate_lengths(s_all, o_all, max_total=2048)),
    "cut at 1,024 total": first_n(truncate_lengths(s_all, o_all, max_total=1024)),
    "cut at prompt < 200, output < 500": first_n(truncate_lengths(s_all, o_all, max_prompt=199, max_output=499)),
}
if not env.quick:
    for trace in ("sharegpt", "azure-conv"):
        tw = load_workload(trace, requests=FACTOR_N, seed=0, max_total_tokens=4096, overlong="clip")
        samples[f"{trace} (clipped at 4,096)"] = (tw.prompt, tw.output)
limits = {name: fluid_limit(s, o, dep70) for name, (s, o) in samples.items()}


def pair(sample: str, rho: float, first_fit: bool = False, requests: int | None = None) -> dict:
    """MC-SF and MC-Benchmark on one sample at relative load rho (mean latency, s); the
    first ``requests`` of the sample (default all)."""
    s, o = samples[sample]
    s, o = s[:requests], o[:requests]
    lam = rho * limits[sample]
    w = with_poisson_arrivals(s, o, lam, seed=0, name=sample)
    lat = {p: simulate(w, dep70, make_policy(p, first_fit=first_fit)).summary()["mean_latency"]
           for p in ("mc-sf", "mc-benchmark")}
    return {"sample": sample, "rho": rho, "rate": lam, "first_fit": first_fit, "mc_sf": lat["mc-sf"],
            "mc_benchmark": lat["mc-benchmark"], "ratio": lat["mc-benchmark"] / lat["mc-sf"]}


base = "lognormal (matched)"
RHO_NOMINAL = 50.0 / limits[base]  # the paper's high demand on our server
load_grid = [0.9, 1.0, 1.5, RHO_NOMINAL] if env.quick else [0.5, 0.8, 0.9, 0.95, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0,
                                                            RHO_NOMINAL, 10.0]
factor_rows = [pair(base, rho) for rho in load_grid]
factor_rows += [pair(base, rho, first_fit=True) for rho in ([1.0, RHO_NOMINAL] if env.quick else [1.0, 1.5, RHO_NOMINAL])]
factor_rows += [pair(name, rho) for name in samples if name != base for rho in (1.0, 1.5, RHO_NOMINAL)]
CAPS = "cut at prompt < 200, output < 500"
factor_rows += [pair(CAPS, rho, first_fit=True) for rho in (1.0, RHO_NOMINAL)]  # both factors together
factors = pd.DataFrame(factor_rows)
factors["lambda_star"] = factors["sample"].map(limits)
factors["published_ratio"] = PUBLISHED_RATIO
env.save_table(factors, "factors")
with pd.option_context("display.width", 160, "display.float_format", "{:.2f}".format):
    print(f"λ* of the matched sample: {limits[base]:.2f}/s, so λ = 50 is ρ = {RHO_NOMINAL:.2f}")
    print(factors.to_string(index=False))

# %%
fig, ax = plt.subplots(figsize=(10, 4.2), layout="constrained")
stop = factors[~factors["first_fit"]]
for name, part in stop.groupby("sample", sort=False):
    part = part.sort_values("rho")
    ax.plot(part["rho"], part["ratio"], marker="o", ms=3, label=f"{name} (λ* {limits[name]:.2f}/s)")
for name, style in ((base, "tab:blue"), (CAPS, "tab:purple")):  # the colours of their samples
    ff = factors[factors["first_fit"] & (factors["sample"] == name)].sort_values("rho")
    ax.plot(ff["rho"], ff["ratio"], marker="s", ms=4, ls="--", color=style, label=f"{name}, first-fit reading")
ax.axhline(PUBLISHED_RATIO, color="grey", ls=":", label=f"published {PUBLISHED_RATIO:.2f}")
ax.axvline(RHO_NOMINAL, color="grey", lw=0.8)
ax.set_xscale("log")
ax.set_xlabel("relative load ρ = λ / λ* (fluid limit of the sample)")
ax.set_ylabel("MC-Benchmark / MC-SF mean latency")
ax.set_title(f"one factor at a time, {FACTOR_N:,} requests, {DEPLOYMENT}; grey line: λ = 50 here", fontsize=9)
ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
env.save_figure(fig, "factors")

# %%


def ratio_at(sample: str, rho: float, first_fit: bool = False) -> float:
    row = factors[(factors["sample"] == sample) & np.isclose(factors["rho"], rho) & (factors["first_fit"] == first_fit)]
    return float(row["ratio"].iloc[0])


curve = stop[stop["sample"] == base].sort_values("rho")
above = curve.loc[curve["ratio"] >= PUBLISHED_RATIO, "rho"]
reach = f"first reaches the published {PUBLISHED_RATIO:.2f} at ρ = {above.min():.3g}" if len(above) else \
    f"never reaches the published {PUBLISHED_RATIO:.2f}"
print(f"load: the ratio is {ratio_at(base, load_grid[0]):.2f} at ρ = {load_grid[0]:g}, "
      f"{ratio_at(base, 1.0):.2f} at ρ = 1, {curve['ratio'].max():.2f} at most (ρ = "
      f"{curve.loc[curve['ratio'].idxmax(), 'rho']:.3g}), {ratio_at(base, RHO_NOMINAL):.2f} at λ = 50 "
      f"(ρ = {RHO_NOMINAL:.2f}); it {reach}")
print(f"reading: first fit gives {ratio_at(base, 1.0, True):.2f} at ρ = 1 and {ratio_at(base, RHO_NOMINAL, True):.2f} "
      f"at λ = 50 (stop at the first failure: {ratio_at(base, 1.0):.2f}, {ratio_at(base, RHO_NOMINAL):.2f})")
for name in samples:
    if name != base:
        print(f"length sample {name}: {ratio_at(name, 1.0):.2f} at ρ = 1, {ratio_at(name, RHO_NOMINAL):.2f} at "
              f"ρ = {RHO_NOMINAL:.2f} (matched lognormal {ratio_at(base, 1.0):.2f}, {ratio_at(base, RHO_NOMINAL):.2f})")
print(f"both: {CAPS} with the first-fit reading gives {ratio_at(CAPS, 1.0, True):.2f} at ρ = 1 and "
      f"{ratio_at(CAPS, RHO_NOMINAL, True):.2f} at ρ = {RHO_NOMINAL:.2f}")

# %% [markdown]
# **Run length.** Past the limit both queues grow for the whole run, so the mean latency
# (and the ratio) depends on how many requests arrive. The first 1,000 and 3,000
# requests of the matched sample against all of them, at ρ = 1 and at λ = 50.

# %%
RUN_LENGTHS = [100, 200, FACTOR_N] if env.quick else [1_000, 3_000, FACTOR_N]
run_length = pd.DataFrame([pair(base, rho, requests=n) | {"requests": n}
                           for n in RUN_LENGTHS for rho in (1.0, RHO_NOMINAL)])
env.save_table(run_length, "run_length")
with pd.option_context("display.width", 160, "display.float_format", "{:.2f}".format):
    print(run_length[["requests", "rho", "rate", "mc_sf", "mc_benchmark", "ratio"]].to_string(index=False))

# %% [markdown]
# **What the factors establish** (full mode, seed 0, 10,000 requests; numbers from the
# printed lines above and `kv_real_trace_factors.csv`):
#
# - **Load decides the size of the gap.** On the matched sample the ratio is 1.00 up to
#   ρ = 0.8, 1.21 at ρ = 0.95, 2.20 at ρ = 1, peaks at 6.6 at ρ = 2 and falls back to
#   3.33 at λ = 50 (ρ = 5.40): once both queues grow, the ratio depends on how far past
#   the limit the run is and on the run's length. The published 1.45 is crossed between
#   ρ = 0.95 and ρ = 1.
# - **Reading of the algorithms: a small part.** Skipping a failing candidate instead of
#   stopping lowers the ratio from 3.33 to 3.07 at λ = 50 (−8%) and from 2.20 to 1.72
#   at ρ = 1; it helps MC-Benchmark more than MC-SF.
# - **Length sample: the largest part at the paper's nominal load.** Clipping at 4,096
#   tokens changes nothing (no request of this draw is longer). Cutting the tail at the
#   [WAIT] authors' LMSYS-Chat-1M caps (prompt < 200, output < 500) gives 2.17 at
#   ρ = 5.40 (−35%) and 1.42 at ρ = 1, the published value; both factors together give
#   2.06 and 1.38. The two real mixes, clipped like Vidur, give 1.54 (ShareGPT) and 1.58
#   (Azure conv) at ρ = 5.40, within 9% of the published 1.45: the shape of a real
#   length distribution, not only its extreme tail, sets how much FCFS order costs.
# - **Run length** (next cell, `kv_real_trace_run_length.csv`): past the limit the
#   ratio grows with the number of requests, 1.44 / 2.46 / 3.33 for the first 1,000 /
#   3,000 / 10,000 at λ = 50 and 1.00 / 1.26 / 2.20 at ρ = 1; the paper's count
#   (10,000) is used everywhere else.
# - **Not established:** the paper's own relative load (its λ* is not published), so
#   which of these combinations matches its setting cannot be told from the ratio alone.

# %% [markdown]
# **Reading.** The ordering is the published one at both demand levels: MC-SF has the
# lowest average latency, MC-Benchmark (same memory check, FCFS order) is next, and the
# α-protection heuristics are worse still, the more so the larger α (see the tables
# above; the comparison table puts our reduction beside the published 31 %). Our
# reduction is larger than 31 % for two reasons. The matched lognormal lengths have a
# heavy output tail, so a few very long requests at the head of the FCFS queue hold the
# KV cache while many short ones wait, which is exactly what shortest-first avoids. And
# with our fitted 70B time model and these lengths the server's completion rate (the
# throughput column, printed above) is below both published rates, so both overload it
# and queueing dominates the latency; in the paper λ = 10 was low demand. The α-protection runs show
# the paper's trade-off: a large α leaves memory idle (higher latency, no evictions), a
# small one protects too little and evicts (eviction counts in the summary table and on
# the bars; the paper found 0.21 / 0.24 to be the smallest α that avoided trouble, the
# α scan finds no evictions from 0.15 / 0.18 on: lower, with the same order between high
# and low demand). With noisy predictions MC-SF's check trusts õ, so it evicts; its
# latency rises by the factor in the `vs_exact` column but stays far below
# MC-Benchmark's at every ε, and MC-Benchmark degrades more under the same noise, which
# is the published robustness claim. Absolute latencies are not comparable with the
# paper's: the lengths, the time model and the simulator all differ (see the top).
#
# **SVF.** Ordering by projected volume instead of output length lowers MC-SF's mean
# latency by about a quarter at high demand and a sixth at low demand (summary table,
# `vs_mc_sf`), without evictions; with noisy predictions it degrades a little more than
# MC-SF (up to 1.27× its exact-length latency, MC-SF up to 1.24×) and stays below MC-SF
# at every ε. One bit (long/short, classes projected at their means) is
# worse than MC-SF and better than MC-Benchmark here, with many evictions: the class mean
# of this heavy-tailed output distribution is far below its long requests' lengths.
