# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # Capacity under an SLO: requests per second per GPU, per policy, beside the fluid limit
#
# The question a capacity review asks: how many requests per second can one replica serve
# for this traffic while meeting the service-level objective, and which scheduling policy
# buys more? The fluid limit (`fluid-and-wait.md` §1) says how much a replica can carry
# at all; it knows nothing of latency targets. `fluidopt capacity` answers the question
# by simulation (`fluidopt.capacity`): the fluid limit brackets the search from above,
# bisection by simulation finds the largest arrival rate at which the SLO holds (2%
# precision), on three replications so the answer is not one lucky run.
#
# **Setting.**
#
# - Traces `azure-conv` (chat) and `azure-code` (code: long prompts, short outputs, bursty
#   arrivals), time-scaled as `fluidopt simulate --rate` does (the whole trace's mean rate
#   becomes the probed rate). Each replication is a window of consecutive requests:
#   6,000 for azure-conv (19,366 requests, three windows) and 2,900 for azure-code (8,819
#   requests, three windows); the first window is what `simulate -n` runs.
# - Deployments `llama2-7b-a100` (Llama-2-7B on one A100-80GB, C = 118,784 KV tokens) and
#   `llama2-70b-2xa100` (Llama-2-70B on two A100s, C = 16,492 tokens, the [KV] setting):
#   affine iteration-time fits to public profiles (`instances/deployments/`).
# - Policies: `sarathi` (chunked prefill, 512-token budget), `vllm` (prefill first) and
#   WAIT with the authors' rule (`advance_resident=True`), its thresholds and admission
#   reserve **recalibrated at every probed rate** on the probed requests
#   (`fluidopt.calibrate.calibrate`, latency objective, ε = 0.05). WAIT under the paper's
#   rule is left out: on these length mixes its full pipeline exceeds C even at n = 1, so
#   calibration is infeasible at every rate.
# - SLOs, one per workload and the same for both deployments (seconds):
#   chat `p99_ttft<=2,p99_tpot<=0.12`; code `p99_ttft<=10,p99_tpot<=0.3` (code prompts
#   average about 2,000 tokens and arrive in bursts, so a 2 s TTFT is out of reach on
#   these deployments at any useful rate).
#
# The figure shows, per policy, the largest rate meeting the SLO on the first window
# (bar, with its share of the fluid limit), the range of the three windows' critical rates
# (whisker) and the largest rate verified on all three (diamond); the dashed line is the
# fluid limit of the first window. Below it, how close each probe came to the SLO.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fluidopt.capacity import parse_policies, search_capacity
from fluidopt.figures import capacity_bars, slo_margin_vs_rate
from fluidopt.reproduce import notebook_env

env = notebook_env("capacity_slo")
SLO = {"azure-conv": "p99_ttft<=2,p99_tpot<=0.12", "azure-code": "p99_ttft<=10,p99_tpot<=0.3"}
if env.quick:
    CASES = [("azure-conv", "llama2-7b-a100", 400), ("azure-code", "llama2-7b-a100", 400)]
    POLICIES, REPLICATIONS, PRECISION, WORKERS = "sarathi,vllm", 1, 0.05, 1
else:
    CASES = [(w, d, {"azure-conv": 6_000, "azure-code": 2_900}[w])
             for d in ("llama2-7b-a100", "llama2-70b-2xa100") for w in ("azure-conv", "azure-code")]
    POLICIES, REPLICATIONS, PRECISION, WORKERS = "sarathi,vllm,wait", 3, 0.02, env.workers
PARAMS = [("wait.advance_resident", True)] if "wait" in POLICIES else []
print(f"{'quick' if env.quick else 'full'} mode: {len(CASES)} cases, policies {POLICIES}, "
      f"{REPLICATIONS} replication(s), precision {PRECISION:.0%}")

# %%
results, started = {}, time.perf_counter()
for workload, deployment, n in CASES:
    res = search_capacity(workload, deployment, parse_policies(POLICIES, PARAMS), SLO[workload], requests=n,
                          replications=REPLICATIONS, precision=PRECISION, workers=WORKERS)
    results[(workload, deployment)] = res
    print(f"{workload} on {deployment}: {len(res.probes)} simulations in {res.seconds:.0f} s")
print(f"total {time.perf_counter() - started:.0f} s")

capacity = pd.concat([r.to_frame() for r in results.values()], ignore_index=True)
probes = pd.concat(
    [pd.DataFrame(r.to_dict()["probes"]).assign(workload=w, deployment=d, slo=str(r.slo), fluid_limit=r.fluid_limit)
     for (w, d), r in results.items()],
    ignore_index=True,
)
env.save_table(capacity, "capacity")
env.save_table(probes.drop(columns=[c for c in probes.columns if c.startswith(("p99_", "p90_", "p50_", "mean_"))]),
               "probes")
cols = ["workload", "deployment", "policy", "max_rate", "fail_rate", "fraction_of_fluid_limit", "fluid_limit",
        "all_replications_rate", "rate_min", "rate_max", "limited_by", "evaluations"]
print(capacity[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}"))

# %%
LABELS = {"wait(advance_resident=true)": "wait (authors' rule)"}
capacity["label"] = capacity["policy"].replace(LABELS)
probes["label"] = probes["policy"].replace(LABELS)
workloads = list(dict.fromkeys(w for w, _, _ in CASES))
deployments = list(dict.fromkeys(d for _, d, _ in CASES))
shape = (len(deployments), len(workloads))
size = (4.8 * len(workloads), 2.6 * len(deployments) + 0.8)
bars, bar_axes = plt.subplots(*shape, figsize=size, layout="constrained", squeeze=False)
margins, margin_axes = plt.subplots(*shape, figsize=size, layout="constrained", squeeze=False)
for (workload, deployment), res in results.items():
    i, j = deployments.index(deployment), workloads.index(workload)
    title = f"{workload} on {deployment}\nSLO {res.slo}"
    part = capacity[(capacity["workload"] == workload) & (capacity["deployment"] == deployment)]
    capacity_bars(part.assign(policy=part["label"]).reset_index(drop=True), legend=False, ax=bar_axes[i, j])
    bar_axes[i, j].set_title(title, fontsize=9)
    first = probes[(probes["workload"] == workload) & (probes["deployment"] == deployment)
                   & (probes["replication"] == 0) & probes["margin"].notna()]
    slo_margin_vs_rate(first, group="label", fluid_limit=res.fluid_limit, ax=margin_axes[i, j])
    margin_axes[i, j].set_title(f"{title} (first window)", fontsize=9)
handles, labels = bar_axes[0, 0].get_legend_handles_labels()
bars.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8)
env.save_figure(bars, "capacity")
env.save_figure(margins, "margin")

# %% [markdown]
# **Reading** (full mode; the committed `capacity_slo_capacity.csv`, `capacity_slo_probes.csv`
# and figures come from a run on 2026-12-07 on a 2-core Intel Xeon shared with other jobs,
# 2 worker processes, load average 2.0 at the start and 6.7 at the end: 356 simulations,
# 187 s wall clock, 108 s of CPU. Rates in requests/s; "of fluid" is the share of the
# first window's fluid limit.)
#
# | workload · deployment | fluid limit | sarathi | wait (authors' rule) | vllm |
# |---|---|---|---|---|
# | azure-conv · 7B | 4.90 | 4.40 (90%) | 4.21 (86%) | 4.12 (84%) |
# | azure-code · 7B | 4.94 | 0.326 (7%) | 0.241 (5%) | 0.141 (3%) |
# | azure-conv · 70B | 0.662 | 0.080 (12%) | 0.227 (34%) | 0.229 (35%) |
# | azure-code · 70B | 1.04 | 0.036 (3%) | not met | not met |
#
# - *Chat on the 7B deployment sits near the fluid limit.* Under p99 TTFT ≤ 2 s and
#   p99 TPOT ≤ 0.12 s every policy sustains 84–90% of the fluid limit on the first window;
#   Sarathi leads (chunked prefill keeps TTFT low without stalling decodes), WAIT and
#   vLLM follow within 2% of each other. The three windows differ at the same time scale
#   (the later ones are heavier): the rates met on all three are 3.10 (Sarathi), 2.82
#   (WAIT) and 2.70 (vLLM).
# - *Code traffic is decided by bursts, not by throughput.* The first 2,900 requests of
#   azure-code hold a burst of 72 requests and 147,593 prompt tokens within one second
#   of trace time, more than the 7B cache (C = 118,784); time scaling stretches a burst
#   but keeps its size, so at any rate the p99 TTFT includes the queue behind it. The SLO
#   binds at 3–7% of the fluid limit: on TTFT for Sarathi (p99 9.8 s at its max rate),
#   on TPOT for vLLM and WAIT, whose whole-prompt prefills stall the decodes of the short
#   code outputs (p99 TPOT 0.30 s).
# - *On the 70B deployment the order flips.* Each iteration costs c0 = 52.8 ms there, so
#   Sarathi's 512-token chunks take a 4,000-token prompt through eight or more iterations
#   before its first token: its chat capacity under the TTFT target is 0.080 against
#   0.229 (vLLM) and 0.227 (WAIT), and on one window it meets the SLO at no rate (p99 TTFT
#   2.3 s even when idle: that window's p99 prompt has 5,105 tokens, ten chunks of about
#   0.22 s each). On code, only Sarathi meets the SLO (0.036, 3%); vLLM and WAIT miss the
#   TPOT target even at 1/64 of the fluid limit (worst term 1.6–1.7× its limit): on this
#   deployment a whole-prompt prefill of a long code prompt takes over 2 s, and the
#   decodes in flight wait for it.
# - *Planning.* The fluid limit is the upper bracket, not the forecast: the capacity
#   under an SLO is from 90% of it down to nothing, depending on traffic, deployment and
#   policy. `fluidopt plan --capacities` sizes a fleet with the rates met on every
#   window (the diamonds), not with the fluid limit.
