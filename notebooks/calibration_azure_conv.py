# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # [WAIT] Threshold calibration on a real trace (azure-conv), checked in the executor
#
# [WAIT] tunes its thresholds by a grid search in simulation: the authors' practical rule
# for Nested WAIT (q_k = min(p_k + η, 0.99) with η = 0.05, n_k = n_1 Π q_r, total limit
# tl = Σ δ_k n_k over tl ∈ {20…200} and L ∈ {1, 2, 3, 4, 5, 10, 20} equal-width
# segments, the best point per arrival rate kept; at high load their best point was one
# segment). No trace result is published for this calibration, so there is no published
# number to set beside ours; the target (spec `fluid-and-wait.md` §5) is to replace the
# grid search by optimisation and confirm it by simulation, on held-out data, with no
# evictions, and to report latency, TTFT and throughput against the fluid benchmark.
#
# **Setting.** Trace `azure-conv` (Azure LLM inference 2023, conversation, 1 h,
# CC-BY-4.0) on `llama2-7b-a100` (C = 118,784 tokens). At its native rate the trace is
# outside the fluid stable region of this deployment (max stable scale 0.89× for the
# whole trace), so arrivals are rescaled (times multiplied, order kept) to a fraction of
# the native rate (`SCALES`, up to 0.85×). The first half of the requests is the
# training window, the second half (times shifted to start at 0) the held-out test
# window. The two halves differ: the first is the heavier one (its own fluid limit is
# about 0.82× of the native rate, the second's about 0.95×).
#
# - **Calibrated WAIT**: `fluidopt.calibrate.calibrate` on the training half (types by
#   output-length bins, the binning chosen by the calibration, latency objective,
#   ε = 0.05), for the authors' simulator rule (`rule="advance"`, run with
#   `advance_resident=True`) and for the paper's rule (`rule="paper"`) when it is
#   feasible, with the admission reserve confirmed by simulation (`reserve="simulate"`,
#   below), which the thresholds file carries and `wait` applies. WAIT sees the true
#   lengths.
# - **Calibrated Nested WAIT** (lengths unknown): `calibrate(policy="nested-wait",
#   rule="advance", reserve="simulate")` on the training half: one segment, n_1 from the
#   one-type WAIT program, resident stages always advance (`advance_resident=True`), and
#   an admission reserve R = ⌈r̄·ln(1/δ)⌉ (r̄ = E[o²]/(2E[o]) the mean remaining output of
#   a resident, δ = 0.01) doubled until a run on the training half has no eviction.
#   With one type and n = 1 this is the calibrated WAIT policy plus the reserve.
# - **Authors' rule**: Nested WAIT with `models.thresholds.practical_rule` thresholds
#   (η = 0.05), the grid searched by simulation on the *test* half (the authors pick the
#   best point per rate in simulation: this favours their rule), once under the paper's
#   Algorithm 2 and once with resident stages always advancing (the variant their WAIT
#   simulator uses). Full mode uses L ∈ {1, 2, 3, 4, 5} and tl ∈ {20, 200, 1000, 2000,
#   5000}: their tl range was made for outputs of at most 50 tokens; with outputs up to
#   1000 tokens every tl ≤ 200 rounds to n = 1, so the grid is extended in proportion
#   (L = 10, 20 dropped for run time). The best point is the lowest mean latency among
#   the runs with no eviction and nothing unfinished (any run if none is clean).
# - **Baselines**: `sarathi` and `vllm` on the test half.
# - **Fluid benchmark** of the test half's binned types: throughput Thr* = Σ λ_j o_j,
#   mean latency Σ λ_j o_j ΔT* / Σ λ_j and TTFT ΔT* (one iteration).

# %%
import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fluidopt.bounds.fluid import fluid_from_arrays
from fluidopt.calibrate import arrays_from_workload, calibrate, nested_data
from fluidopt.deployment import load_deployment
from fluidopt.errors import FluidoptError
from fluidopt.models import thresholds as th
from fluidopt.reproduce import notebook_env
from fluidopt.sweep import SweepSpec, run_sweep
from fluidopt.traces import load_workload, write_parquet
from fluidopt.workload import Workload

env = notebook_env("calibration_azure_conv")
DEPLOYMENT = "llama2-7b-a100"
dep = load_deployment(DEPLOYMENT)
WORKERS = 1 if env.quick else env.workers
SCALES = [0.6] if env.quick else [0.5, 0.6, 0.7, 0.8, 0.85]
N_REQUESTS = 1_500 if env.quick else None  # None: the whole trace (19,366 requests)
# tl: the authors' range (20…200, made for outputs ≤ 50) plus values scaled to outputs ≤ 1000
GRID_L, GRID_TL = ((1,), (200, 2000)) if env.quick else ((1, 2, 3, 4, 5), (20, 200, 1000, 2000, 5000))
native = load_workload("azure-conv")
native_rate = (len(native) - 1) / float(native.arrival[-1] - native.arrival[0])
print(f"azure-conv: {len(native)} requests, native rate {native_rate:.2f}/s; scales {SCALES}")


def halves(w: Workload) -> tuple[Workload, Workload]:
    """First half (training) and second half (held out, arrivals shifted to start at 0)."""
    k = len(w) // 2
    frame = w.to_frame()
    train = Workload.from_frame(frame.iloc[:k].reset_index(drop=True), name=f"{w.name}-train", meta=w.meta)
    test = frame.iloc[k:].reset_index(drop=True)
    test["arrival"] -= test["arrival"].iloc[0]
    return train, Workload.from_frame(test, name=f"{w.name}-test", meta=w.meta)


def first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200]


# %%
rows, cal_rows, fluid_rows = [], [], []
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    for scale in SCALES:
        w = load_workload("azure-conv", rate=scale * native_rate, requests=N_REQUESTS)
        train, test = halves(w)
        test_path = tmp / f"test-{scale}.parquet"
        write_parquet(test, test_path)
        policies: list = ["sarathi", "vllm"]
        train_bench = fluid_from_arrays(arrays_from_workload(train, dep, n_output_bins=1).arrays)
        for policy, rule in (("wait", "advance"), ("wait", "paper"), ("nested-wait", "advance")):
            path = tmp / f"{policy}-{rule}-{scale}.json"
            base = {"scale": scale, "policy": policy, "rule": rule,
                    "train_fluid_max_scale": train_bench.max_stable_scale * scale}
            try:
                rep = calibrate(train, dep, policy=policy, objective="latency", epsilon=0.05, rule=rule,
                                reserve="simulate", path=path)
            except FluidoptError as exc:
                cal_rows.append({**base, "error": first_line(exc)})
                continue
            sol = rep["solution"]
            thr = ({t["type"]: t["threshold"] for t in rep["thresholds"]} if policy == "wait"
                   else [[t["end"], t["threshold"]] for t in rep["thresholds"]])
            cal_rows.append({**base, "error": "", "types": len(rep["thresholds"]),
                             "memory_rule": sol["memory_rule"], "thresholds": json.dumps(thr),
                             "reserve": rep["reserve"]["reserve"],
                             "reserve_estimate": int(np.ceil(rep["reserve"]["mean_residual_output"]
                                                             * np.log(1 / rep["reserve"]["delta"]))),
                             "reserve_trail": json.dumps(rep["reserve"].get("trail", [])),
                             "sensitivity_p90": json.dumps(rep.get("sensitivity", {}).get("thresholds"))})
            if policy == "wait":
                policies.append({"name": "wait", "params": {"thresholds": str(path),
                                                            "advance_resident": rule == "advance"}})
            else:
                # the file's segments and reserve as parameters (one column type per sweep)
                policies.append({"name": "nested-wait", "params": {
                    "segments": [[[t["end"], t["threshold"]] for t in rep["thresholds"]]],
                    "advance_resident": True, "reserve": int(rep["reserve"]["reserve"])}})
        # the authors' practical rule: distinct plans of the (L, tl) grid, both rules
        data = nested_data(train, dep, epsilon=0.05)
        plans = {}
        for L in GRID_L:
            for tl in GRID_TL:
                p = th.practical_rule(data, tl, L, eta=0.05)
                plans.setdefault((tuple(p.boundaries), tuple(p.thresholds)), (L, tl))
        for (bounds, n), (L, tl) in plans.items():
            policies.append({"name": "nested-wait", "params": {"segments": [[[b, k] for b, k in zip(bounds, n)]],
                                                               "advance_resident": [False, True]}})
        spec = SweepSpec.from_dict({"name": f"azure-conv-x{scale}", "workload": str(test_path),
                                    "deployment": DEPLOYMENT, "policies": policies, "seeds": [0]})
        runs = run_sweep(spec, tmp / f"runs-{scale}.parquet", workers=WORKERS)
        runs["scale"] = scale
        rows.append(runs)
        bench = fluid_from_arrays(arrays_from_workload(test, dep).arrays)
        rate = bench.throughput_requests_per_s
        fluid_rows.append({"scale": scale, "rate": rate, "fluid_stable": bench.stable, "fluid_load": bench.load,
                           "fluid_throughput_tokens_per_s": bench.throughput_tokens_per_s,
                           "fluid_mean_latency": float(np.dot(bench.latency, bench.n_per_stage / bench.delta_t)) / rate
                           if bench.stable else np.nan,
                           "fluid_ttft": bench.delta_t})
runs = pd.concat(rows, ignore_index=True)
calibration = pd.DataFrame(cal_rows)
fluid = pd.DataFrame(fluid_rows)
print(calibration.drop(columns=["reserve_trail"], errors="ignore").to_string(index=False))


# %%
AUTHORS_PAPER = "nested-wait authors' rule (Algorithm 2)"
AUTHORS_ADV = "nested-wait authors' rule (residents advance)"


def label(row) -> str:
    if row["policy"] == "wait":
        return "wait calibrated (advance residents)" if row["policy.advance_resident"] is True else "wait calibrated (paper rule)"
    if row["policy"] == "nested-wait":
        if row["policy.reserve"] > 0:  # only the calibrated runs have a reserve
            return "nested-wait calibrated (advance residents, reserve)"
        return AUTHORS_ADV if row["policy.advance_resident"] is True else AUTHORS_PAPER
    return row["policy"]


runs["label"] = runs.apply(label, axis=1)
keep = ["scale", "label", "policy.segments", "policy.reserve", "mean_latency", "p99_latency", "mean_ttft", "throughput_tokens_per_s",
        "evictions", "unfinished", "peak_kv"]
runs = runs.reindex(columns=list(dict.fromkeys(keep + list(runs.columns))))
grid = runs[runs["label"].isin([AUTHORS_PAPER, AUTHORS_ADV])].copy()
grid["clean"] = (grid["unfinished"] == 0) & (grid["evictions"] == 0)
# per scale and rule: the fastest clean run, or the fastest run when none is clean
best_grid = (grid.sort_values(["scale", "label", "clean", "mean_latency"], ascending=[True, True, False, True])
             .groupby(["scale", "label"]).head(1))
best_grid["label"] = best_grid["label"] + " (best of grid)"
table = pd.concat([runs[~runs["label"].isin([AUTHORS_PAPER, AUTHORS_ADV])], best_grid])
table = table[keep].merge(fluid, on="scale").sort_values(["scale", "mean_latency"]).reset_index(drop=True)
table["latency_over_fluid"] = table["mean_latency"] / table["fluid_mean_latency"]
table["throughput_over_fluid"] = table["throughput_tokens_per_s"] / table["fluid_throughput_tokens_per_s"]
env.save_table(table, "summary")
env.save_table(runs[keep], "runs")
env.save_table(calibration, "calibration")
print(table.drop(columns=["peak_kv", "fluid_stable", "fluid_load"])
      .to_string(index=False, float_format=lambda x: f"{x:.3g}"))
for lab in ("wait calibrated (advance residents)", "nested-wait calibrated (advance residents, reserve)"):
    part = table[table["label"] == lab]
    print(f"evictions, {lab}:", dict(zip(part["scale"], part["evictions"])))
# the authors' rule under Algorithm 2 is driven by arrivals, not by time: same evictions at every scale
paper_grid = grid[grid["label"] == AUTHORS_PAPER].assign(plan=lambda d: d["policy.segments"].astype(str))
print("Algorithm 2 grid, evictions of each plan per scale:\n",
      paper_grid.pivot_table(index="plan", columns="scale", values="evictions").to_string())

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
for ax, (col, fcol, name) in zip(axes, (("mean_latency", "fluid_mean_latency", "mean latency (s)"),
                                        ("mean_ttft", "fluid_ttft", "mean TTFT (s)"),
                                        ("throughput_tokens_per_s", "fluid_throughput_tokens_per_s",
                                         "throughput (output tokens/s)"))):
    for lab, part in table.groupby("label"):
        ax.plot(part["scale"] * native_rate, part[col], marker="o", ms=4, label=lab)
        bad = part[part["evictions"] > 0]
        ax.scatter(bad["scale"] * native_rate, bad[col], s=60, facecolors="none", edgecolors="red")
    ax.plot(fluid["rate"], fluid[fcol], color="black", ls="--", marker="x", label="fluid benchmark")
    ax.set_xlabel("arrival rate of the test half (requests/s)")
    ax.set_ylabel(name)
    if col != "throughput_tokens_per_s":
        ax.set_yscale("log")
axes[0].legend(fontsize=7)
axes[1].set_title(f"azure-conv held-out half, {DEPLOYMENT} (red circle: run with evictions)", fontsize=9)
env.save_figure(fig, "summary")

# %% [markdown]
# **Reading** (full mode, held-out half; mean / p99 latency in s, evictions in brackets;
# no published number exists for this experiment).
#
# | scale | calibrated Nested WAIT (advance, reserve R) | calibrated WAIT (advance, its own R) | authors' rule, Algorithm 2 | authors' rule, residents advance | Sarathi | vLLM | fluid mean |
# |---|---|---|---|---|---|---|---|
# | 0.5× | 4.08 / 15.1 (0), R = 810 | 4.08 / 15.1 (0) | 36.0 / 104 (642) | 4.08 / 15.1 (0) | 3.63 / 11.7 (0) | 4.30 / 16.2 (0) | 3.39 |
# | 0.6× | 5.39 / 23.5 (0), R = 810 | 5.39 / 23.5 (0) | 30.4 / 87.5 (642) | 5.41 / 23.7 (3) | 4.39 / 15.4 (0) | 5.87 / 27.5 (0) | 4.10 |
# | 0.7× | 8.57 / 57.0 (0), R = 810 | 8.57 / 57.0 (0) | 28.0 / 76.7 (642) | 8.86 / 59.4 (23) | 5.73 / 23.9 (0) | 9.63 / 61.8 (0) | 5.19 |
# | 0.8× | 16.0 / 78.2 (0), R = 3,240 | 16.0 / 78.2 (0) | 30.0 / 86.7 (642) | 17.0 / 81.4 (82) | 9.09 / 40.0 (0) | 18.6 / 84.8 (2) | 7.08 |
# | 0.85× | none: training half outside the region | none | 36.2 / 100 (642) | 25.9 / 97.4 (177) | 12.5 / 50.0 (0) | 27.3 / 99.2 (6) | 8.64 |
#
# - *Thresholds.* Under the paper's rule WAIT has no thresholds on this trace (every
#   stage of every type stays full: Σ_j V_j = 1,126,377 KV tokens > C at n = 1). Under
#   the authors' variant the calibration keeps one type with n = 1 at every scale: the
#   latency proxy prefers one bin, and no threshold choice can lower the memory. In that
#   variant the mean KV in use is M* whatever n is (M* ≈ 16k–48k tokens here, 0.14–0.4·C),
#   and n = 1 already gives the smallest fluctuation; runs with 2, 4 or 8 types or
#   n = 2–4 evict more, not less. The chance row (mean + 3 sd ≤ C at the ε-inflated ΔT)
#   holds up to 0.7×; at 0.8× it fails and the thresholds fall back to mean keep-up
#   (memory rule "mean"). At 0.85× the *training* half is outside the fluid region
#   (its own limit is 0.82× of the native rate: M* = 173,803 > C) and the calibration
#   refuses, although the held-out half would still be stable.
# - *Why WAIT evicts.* The memory reaches C in bursts (long prompts, up to 14k tokens,
#   and bursty arrivals), not through the mean: WAIT's guard admits anything that fits
#   the next iteration, after which the residents' decode growth overflows. The lever is
#   an admission reserve R, sized from the length distribution (R = ⌈r̄ ln(1/δ)⌉ = 810
#   tokens, r̄ = 176 the mean remaining output of a resident, δ = 0.01) and doubled until
#   a run on the training half is clean (0.8×: 810 → 1,620 → 3,240). With it the
#   calibrated policy (Nested WAIT, one segment n = 1, residents advancing, which with
#   one type is calibrated WAIT plus the reserve) has no eviction from 0.5× to 0.8× and
#   is slightly faster than without (no recomputed prefills). Calibrated WAIT gets the same
#   reserve from its own calibration (the same R at every scale) and gives the same
#   runs; without it (the authors' rule with residents advancing, whose best grid point
#   is the same policy) the evictions are 3, 23 and 82 at 0.6×, 0.7× and 0.8×.
# - *The authors' rule row.* Under Algorithm 2 it is 5–10× slower than everything else
#   and has the same 642 evictions at every scale. Both come from the rule, not from a
#   bug in the grid: on this trace one iteration lasts 17–45 ms and requests arrive
#   every 0.2–0.4 s (λ·ΔT ≈ 0.05–0.15), so the entry queue of segment 1 almost never
#   holds n_1 requests; the server idles until the next arrival and every resident
#   advances about one token per arrival. A request of o tokens then takes about o
#   inter-arrival times (throughput still matches the load, but latency is in
#   arrival-counts, not iterations), and since every batch is triggered by an arrival
#   the schedule is the same sequence of batches at every scale — hence identical
#   eviction counts. Longer segment lists are far worse (hundreds to thousands of
#   seconds): requests paused at a boundary wait for n_k others to reach it. The rule
#   was designed for heavy traffic (λ·ΔT ≫ 1, many arrivals per iteration); letting
#   resident stages advance, as the authors' WAIT simulator does, brings its best grid
#   point (again one segment, n = 1) to the calibrated policy's latency — with the
#   same evictions, since it has no reserve.
# - *Against the baselines.* Sarathi (chunked prefill, reserves KV for whole prompts) is
#   the fastest at every scale (its chunking also keeps its peak KV lower); the
#   calibrated policy is ahead of vLLM in mean and p99 latency at every scale, and has
#   fewer evictions than vLLM at 0.8× (0 against 2). Throughput equals the offered load
#   for every policy (ratio to Thr* ≥ 0.99), so the differences are in latency.
# - *Against the fluid benchmark*: the fluid latency Σλ_j o_j ΔT*/Σλ_j is an equilibrium
#   value, not a bound; the calibrated policy is 1.2× it at 0.5× and 2.3× at 0.8×.
