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
# segments, the best point per arrival rate kept). No trace result is published for
# this calibration; the target (spec `fluid-and-wait.md` §5) is to replace the grid
# search by optimisation and confirm it by simulation, on held-out data, with no
# evictions, and to report latency, TTFT and throughput against the fluid benchmark.
#
# **Setting.** Trace `azure-conv` (Azure LLM inference 2023, conversation, 1 h,
# CC-BY-4.0) on `llama2-7b-a100` (C = 118,784 tokens). At its native rate the trace is
# beyond what the WAIT conditions admit on this deployment, so arrivals are rescaled
# (times multiplied, order kept) to a fraction of the native rate (`SCALES`). The first
# half of the requests is the training window, the second half (times shifted to start
# at 0) the held-out test window.
#
# - **Calibrated WAIT**: `fluidopt.calibrate.calibrate` on the training half (types by
#   output-length bins, the binning chosen by the calibration, latency objective,
#   ε = 0.05), for the authors' simulator rule (`rule="advance"`, run with
#   `advance_resident=True`) and for the paper's rule (`rule="paper"`) when it is
#   feasible. WAIT sees the true lengths (types are assigned by them).
# - **Authors' rule**: Nested WAIT with `models.thresholds.practical_rule` thresholds
#   (η = 0.05), the grid searched by simulation on the *test* half (the authors pick the
#   best point per rate in simulation: this favours their rule). Full mode uses
#   L ∈ {1, 2, 3, 4, 5} and tl ∈ {20, 200, 1000, 2000, 5000}: their tl range was made for
#   outputs of at most 50 tokens, where tl = 200 means about 4 requests per stage; with
#   outputs up to 1000 tokens every tl ≤ 200 rounds to n = 1, so the grid is extended in
#   proportion (L = 10, 20 dropped for run time). The best point is the lowest mean
#   latency among the runs with no eviction and nothing unfinished (any run if none).
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
SCALES = [0.6] if env.quick else [0.5, 0.6, 0.7]
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
        for rule in ("advance", "paper"):
            path = tmp / f"wait-{rule}-{scale}.json"
            try:
                rep = calibrate(train, dep, policy="wait", objective="latency", epsilon=0.05, rule=rule, path=path)
            except FluidoptError as exc:
                cal_rows.append({"scale": scale, "rule": rule, "error": str(exc).splitlines()[0][:160]})
                continue
            cal_rows.append({"scale": scale, "rule": rule, "error": "",
                             "types": len(rep["thresholds"]), "memory_rule": rep["solution"]["memory_rule"],
                             "thresholds": json.dumps({t["type"]: t["threshold"] for t in rep["thresholds"]}),
                             "sensitivity_p90": json.dumps(rep.get("sensitivity", {}).get("thresholds"))})
            policies.append({"name": "wait", "params": {"thresholds": str(path), "advance_resident": rule == "advance"}})
        # the authors' practical rule: distinct plans of the (L, tl) grid
        data = nested_data(train, dep, epsilon=0.05)
        plans = {}
        for L in GRID_L:
            for tl in GRID_TL:
                p = th.practical_rule(data, tl, L, eta=0.05)
                plans.setdefault((tuple(p.boundaries), tuple(p.thresholds)), (L, tl))
        for (bounds, n), (L, tl) in plans.items():
            policies.append({"name": "nested-wait", "params": {"segments": [[[b, k] for b, k in zip(bounds, n)]]}})
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
print(calibration.to_string(index=False))


# %%
def label(row) -> str:
    if row["policy"] == "wait":
        return "wait calibrated (advance residents)" if row["policy.advance_resident"] is True else "wait calibrated (paper rule)"
    if row["policy"] == "nested-wait":
        return "nested-wait authors' rule"
    return row["policy"]


runs["label"] = runs.apply(label, axis=1)
keep = ["scale", "label", "policy.segments", "mean_latency", "p99_latency", "mean_ttft", "throughput_tokens_per_s",
        "evictions", "unfinished", "peak_kv"]
runs = runs.reindex(columns=list(dict.fromkeys(keep + list(runs.columns))))
grid = runs[runs["label"] == "nested-wait authors' rule"].copy()
grid["clean"] = (grid["unfinished"] == 0) & (grid["evictions"] == 0)
# per scale: the fastest clean run, or the fastest run when none is clean
best_grid = grid.sort_values(["scale", "clean", "mean_latency"], ascending=[True, False, True]).groupby("scale").head(1)
table = pd.concat([runs[runs["label"] != "nested-wait authors' rule"], best_grid.assign(label="nested-wait authors' rule (best of grid)")])
table = table[keep].merge(fluid, on="scale").sort_values(["scale", "mean_latency"]).reset_index(drop=True)
table["latency_over_fluid"] = table["mean_latency"] / table["fluid_mean_latency"]
table["throughput_over_fluid"] = table["throughput_tokens_per_s"] / table["fluid_throughput_tokens_per_s"]
env.save_table(table, "summary")
env.save_table(runs[keep], "runs")
env.save_table(calibration, "calibration")
print(table.drop(columns=["policy.segments", "peak_kv", "fluid_stable", "fluid_load"])
      .to_string(index=False, float_format=lambda x: f"{x:.3g}"))
wait_runs = table[table["label"].str.startswith("wait calibrated")]
print("evictions of the calibrated WAIT runs:", dict(zip(wait_runs["label"] + " x" + wait_runs["scale"].astype(str),
                                                         wait_runs["evictions"])))

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
for ax, (col, fcol, name) in zip(axes, (("mean_latency", "fluid_mean_latency", "mean latency (s)"),
                                        ("mean_ttft", "fluid_ttft", "mean TTFT (s)"),
                                        ("throughput_tokens_per_s", "fluid_throughput_tokens_per_s",
                                         "throughput (output tokens/s)"))):
    for lab, part in table.groupby("label"):
        ax.plot(part["scale"] * native_rate, part[col], marker="o", ms=4, label=lab)
    ax.plot(fluid["rate"], fluid[fcol], color="black", ls="--", marker="x", label="fluid benchmark")
    ax.set_xlabel("arrival rate of the test half (requests/s)")
    ax.set_ylabel(name)
    if col != "throughput_tokens_per_s":
        ax.set_yscale("log")
axes[0].legend(fontsize=7)
axes[1].set_title(f"azure-conv held-out half, {DEPLOYMENT}", fontsize=9)
env.save_figure(fig, "summary")

# %% [markdown]
# **Reading.** See the summary table above (each policy beside the fluid benchmark of the
# held-out window it ran on).
#
# - *Calibration.* Under the paper's rule no thresholds exist for this trace (the error
#   above: with every stage of every type kept at n_j ≥ 1 the pipeline alone needs ~10⁶
#   KV tokens). For the authors' simulator rule the calibration keeps one type with
#   n = 1 under the chance memory rule: WAIT then admits one request per iteration and
#   runs every resident, close to a continuous-batching scheduler.
# - *Against the baselines.* On this trace and deployment calibrated WAIT does not beat
#   Sarathi in mean latency (compare the rows); it is ahead of vLLM, and its TTFT is
#   close to vLLM's (both admit whole prompts). Throughput equals the offered load for every policy that keeps up
#   (ratio to the fluid Thr* ≈ 1), so the differences are in latency.
# - *Evictions.* WAIT guards only the next iteration's memory; its thresholds bound the
#   pipeline in expectation (chance rule), not surely, so with heavy-tailed outputs the
#   decode growth can reach C: the printed eviction counts are not all zero at the higher
#   loads — the spec's requirement is not met there. A reserve at admission (as vLLM's
#   and Sarathi's watermark) or a stricter chance level would be needed.
# - *The authors' rule* (Nested WAIT, lengths unknown, grid-searched on the test half)
#   is far slower than every other policy here: with equal-width segments over outputs
#   up to 1000 tokens, a small n keeps batches tiny, and a larger n fills C with paused
#   residents at the boundaries.
# - *Against the fluid benchmark*: the fluid latency Σλ_j o_j ΔT*/Σλ_j is an
#   equilibrium value, not a bound; Sarathi stays within about 10% of it at these loads.
