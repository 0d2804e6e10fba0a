# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # [WAIT] Fluid KV memory M* against the arrival rate
#
# The fluid benchmark (spec `fluid-and-wait.md` §1) puts M* = ΔT*·Σ_j λ_j V_j KV tokens in
# use, with ΔT* = c0 / (1 − Σ_j λ_j u_j). [WAIT] (v3/v4) reports, on the LMSYS-Chat-1M
# length mix with Llama-2-7B on an A100-80GB, M* = 34,377 / 55,758 / 100,327 / 250,509
# tokens at λ = 50 / 60 / 70 / 80 requests/s, crossing the capacity at about 74.1/s.
#
# **Nearest data we have.** LMSYS-Chat-1M may not be redistributed, so the length mix
# here is a lognormal sample matched to the statistics [KV] quotes for it (prompt mean
# 40.62 / median 11, output mean 85.32 / median 45; workload `lmsys-matched`). The
# iteration-time model is our fit to Vidur's A100 profiles (`llama2-7b-a100`, affine)
# and its decode-only linear-kv variant, with C = 118,784 tokens. The paper's own
# time fit (d0 ≈ 276 ms, d1 ≈ 0.0115 ms) is a whole-batch time, not a per-iteration one
# (`system-model.md`), so absolute numbers are not expected to agree; the shape is:
# M* is flat at low load and blows up as Σλu → 1, crossing C at a finite rate.

# %%
import numpy as np
import pandas as pd

from dataclasses import replace

from fluidopt.bounds.fluid import FluidArrays, FluidType, fluid_from_arrays
from fluidopt.deployment import load_deployment
from fluidopt.figures import memory_vs_rate
from fluidopt.generators import LMSYS_STATS, lengths_matching
from fluidopt.reproduce import notebook_env

env = notebook_env("wait_fluid_memory")
n_sample = 2_000 if env.quick else 50_000
sample = lengths_matching(**LMSYS_STATS, n=n_sample, seed=0)
print(f"length sample: {n_sample} requests, prompt mean {sample.prompt.mean():.2f}, "
      f"output mean {sample.output.mean():.2f}")

# %% [markdown]
# Each sampled request is a type with rate λ/n, so the fluid quantities are exact
# functions of the sample's mean volume and mean marginal work.

# %%
PUBLISHED = {50.0: 34_377, 60.0: 55_758, 70.0: 100_327, 80.0: 250_509}
rates = np.arange(10.0, 100.0 + 1e-9, 10.0 if env.quick else 2.5)
per_request = [FluidType(1.0 / len(sample), float(s), float(o)) for s, o in zip(sample.prompt, sample.output)]
rows, limits = [], {}
for dep_name in ("llama2-7b-a100", "llama2-7b-a100-linear"):
    unit_rate = FluidArrays.build(per_request, load_deployment(dep_name))  # total rate 1 req/s
    limits[dep_name] = fluid_from_arrays(unit_rate).max_stable_scale  # largest stable total rate, req/s
    for lam in rates:
        fb = fluid_from_arrays(replace(unit_rate, rate=unit_rate.rate * lam))
        rows.append({"deployment": dep_name, "rate": lam, "kv_in_use": fb.kv_in_use, "delta_t": fb.delta_t,
                     "load": fb.load, "stable": fb.stable})
table = pd.DataFrame(rows)
table["published_kv_in_use"] = table["rate"].map(PUBLISHED)
env.save_table(table, "table")
print(table[table["rate"].isin(list(PUBLISHED))].to_string(index=False))
print("largest stable rate (req/s):", {k: round(v, 1) for k, v in limits.items()}, "— published ≈ 74.1")

# %%
affine = table[table["deployment"] == "llama2-7b-a100"]
finite = affine[np.isfinite(affine["kv_in_use"])]
fig = memory_vs_rate(finite["rate"], finite["kv_in_use"], capacity=118_784, published=PUBLISHED)
ax = fig.axes[0]
ax.axvline(limits["llama2-7b-a100"], color="grey", ls=":", lw=1)
ax.set_title(f"M* vs λ, lmsys-matched lengths, llama2-7b-a100 (stable up to {limits['llama2-7b-a100']:.1f}/s)",
             fontsize=9)
env.save_figure(fig, "memory_vs_rate")

# %% [markdown]
# ## Why we cross C at a lower rate: one factor at a time
#
# Every fluid memory curve has the form M*(λ) = aλ / (1 − bλ), with a = c0·E[V]
# (token·s) and b = E[u] (s, the mean marginal work of a request), so two numbers say
# everything: the **load limit** 1/b, where M* blows up, and a/b, which sets the
# *relative* load ρ_C = C / (a/b + C) at which M* reaches C. The crossing rate is
# ρ_C / b. The published four (λ, M*) pairs give (a, b) by a straight-line fit of
# λ/M* against λ (`fluidopt.factors.fit_fluid_curve`); the residual shows how exactly
# they follow the form. Then each factor is changed alone:
#
# - **Time model**: our affine fit, our linear-kv fit (decode steps only), and [WAIT]'s own
#   coefficients d0 = 276 ms, d1 = 0.0115 ms per KV token taken as a per-iteration
#   linear-kv model. Under linear-kv a/b = d0/d1 whatever the lengths, which is a test
#   of whether the published curve was computed with them.
# - **Length sample**: the matched lognormal; clipped at 4,096 tokens in total (Vidur's
#   trace loader); the tail cut at the caps of the [WAIT] authors' LMSYS-Chat-1M files
#   (prompt < 200 and output < 500, the file their simulator reads; and < 500 / < 600);
#   cut at 1,024 in total; and two real mixes, ShareGPT and Azure conv (clipped at
#   4,096). The cut samples drop the requests over the caps.

# %%
from fluidopt.factors import (  # noqa: E402
    crossing_rate,
    fit_fluid_curve,
    linear_kv_deployment,
    sample_arrays,
    truncate_lengths,
)
from fluidopt.traces import load_workload  # noqa: E402

C = 118_784
PAPER_D0, PAPER_D1 = 0.276, 0.0115e-3  # s, s per KV token ([WAIT]'s fit, system-model.md)
pub_a, pub_b, pub_resid = fit_fluid_curve(list(PUBLISHED), list(PUBLISHED.values()))
s0, o0 = sample.prompt, sample.output
length_samples = {
    "lognormal (matched)": (s0, o0),
    "clipped at 4,096 total (Vidur)": truncate_lengths(s0, o0, max_total=4096, mode="clip"),
    "cut at prompt < 200, output < 500": truncate_lengths(s0, o0, max_prompt=199, max_output=499),
    "cut at prompt < 500, output < 600": truncate_lengths(s0, o0, max_prompt=499, max_output=599),
    "cut at 1,024 total": truncate_lengths(s0, o0, max_total=1024),
}
for trace in ("sharegpt", "azure-conv"):
    tw = load_workload(trace, seed=0, max_total_tokens=4096, overlong="clip")
    tw = tw.head(min(len(tw), n_sample))
    length_samples[f"{trace} (clipped at 4,096)"] = (tw.prompt, tw.output)
time_models = {
    "affine (llama2-7b-a100)": load_deployment("llama2-7b-a100"),
    "linear-kv (llama2-7b-a100-linear)": load_deployment("llama2-7b-a100-linear"),
    "[WAIT] d0 = 276 ms, d1 = 0.0115 ms": linear_kv_deployment("wait-paper", PAPER_D0, PAPER_D1, C),
}
factor_rows = [{"sample": "published", "time_model": "[WAIT] (fit to the four pairs)", "mean_volume": np.nan,
                "a": pub_a, "b": pub_b, "load_limit": 1 / pub_b, "a_over_b": pub_a / pub_b,
                "rho_at_C": C / (pub_a / pub_b + C), "crossing": crossing_rate(pub_a, pub_b, C)}]
for sname, (s, o) in length_samples.items():
    for mname, dep_f in time_models.items():
        arr = sample_arrays(s, o, dep_f)
        a_f, b_f = arr.c0 * float(arr.rate @ arr.volume), float(arr.rate @ arr.work)
        factor_rows.append({"sample": sname, "time_model": mname, "mean_volume": float(np.mean(arr.volume)),
                            "a": a_f, "b": b_f, "load_limit": 1 / b_f, "a_over_b": a_f / b_f,
                            "rho_at_C": C / (a_f / b_f + C), "crossing": crossing_rate(a_f, b_f, C)})
factors = pd.DataFrame(factor_rows)
factors["published_crossing"] = 74.1
for lam in PUBLISHED:  # M* of each curve at the published rates (inf past its load limit)
    load_b = factors["b"] * lam
    factors[f"m_star_at_{lam:g}"] = np.where(load_b < 1, factors["a"] * lam / (1 - load_b.clip(upper=1 - 1e-12)),
                                             np.inf)
env.save_table(factors, "factors")
with pd.option_context("display.width", 180, "display.float_format", "{:.4g}".format):
    print(factors.to_string(index=False))

# %%
ours = factors[(factors["sample"] == "lognormal (matched)") & (factors["time_model"] == "affine (llama2-7b-a100)")].iloc[0]
capped = factors[(factors["sample"] == "cut at prompt < 200, output < 500")
                 & (factors["time_model"] == "affine (llama2-7b-a100)")].iloc[0]
paper_tm = factors[(factors["sample"] == "lognormal (matched)")
                   & (factors["time_model"] == "[WAIT] d0 = 276 ms, d1 = 0.0115 ms")].iloc[0]
implied_volume = pub_b / PAPER_D1  # E[V] for which [WAIT]'s d1 gives the published b
print(f"published pairs: a = {pub_a:.1f} token·s, b = {pub_b * 1e3:.3f} ms (worst residual {pub_resid:.1e}): "
      f"load limit {1 / pub_b:.1f}/s, a/b = {pub_a / pub_b:,.0f} tokens ([WAIT]'s d0/d1 = {PAPER_D0 / PAPER_D1:,.0f}), "
      f"M* = C = 118,784 at {crossing_rate(pub_a, pub_b, C):.1f}/s; the published 74.1/s implies "
      f"C = {74.1 * pub_a / (1 - 74.1 * pub_b):,.0f}")
print(f"ours (matched lognormal, affine): load limit {ours.load_limit:.1f}/s, a/b = {ours.a_over_b:,.0f}, "
      f"ρ_C = {ours.rho_at_C:.3f} (published {C / (pub_a / pub_b + C):.3f}), crossing {ours.crossing:.1f}/s")
print(f"tail cut at the authors' caps (prompt < 200, output < 500), affine: load limit {capped.load_limit:.1f}/s, "
      f"crossing {capped.crossing:.1f}/s")
print(f"[WAIT]'s d0, d1 as per-iteration costs on the matched sample: crossing {paper_tm.crossing:.2f}/s; "
      f"the published b needs E[V] = {implied_volume:,.0f} tokens with d1 = 0.0115 ms "
      f"(matched sample: {paper_tm.mean_volume:,.0f})")
linear = factors[(factors["sample"] == "lognormal (matched)")
                 & (factors["time_model"] == "linear-kv (llama2-7b-a100-linear)")].iloc[0]
rho_eq = 50.0 * pub_b  # the published λ = 50 as a relative load λ·b
print(f"at equal relative load ρ = {rho_eq:.3f} (the published λ = 50): M* published {PUBLISHED[50.0]:,}, ours "
      f"{ours.a_over_b * rho_eq / (1 - rho_eq):,.0f} (affine), {linear.a_over_b * rho_eq / (1 - rho_eq):,.0f} (linear-kv)")
for label, row in (("matched lognormal, affine", ours), ("tail cut at the authors' caps, affine", capped)):
    print(f"M* at λ = 50 / 60 / 70 / 80, {label}: "
          + " / ".join(f"{row[f'm_star_at_{lam:g}']:,.0f}" for lam in PUBLISHED)
          + " (published " + " / ".join(f"{m:,}" for m in PUBLISHED.values()) + ")")

# %% [markdown]
# **Reading.** Both curves have the published shape: M* grows slowly, then without
# bound as the marginal-work load Σλu approaches 1; the rate where M* meets C is the
# fluid stability limit.
#
# **What the factors establish** (full mode, 50,000 sampled requests; printed lines
# above and `wait_fluid_memory_factors.csv`):
#
# - The four published pairs follow the fluid form exactly (worst residual 7·10⁻⁶):
#   load limit 1/b = 88.4/s, a/b = 26,429 tokens, M* = C at 72.3/s for C = 118,784 (the
#   published 74.1/s needs C = 136,568, so the paper's C was a little larger or its
#   crossing read off a plot).
# - **Crossing rate: the length tail.** Ours crosses at 51.0/s (0.69× published) with
#   load limit 54.5/s. Cutting the sample at the [WAIT] authors' LMSYS-Chat-1M caps
#   (prompt < 200, output < 500 — the file their simulator reads) moves the crossing to
#   73.6/s (0.99×) and the load limit to 76.9/s, on the same affine time model.
#   Clipping at 4,096 tokens changes little (51.6/s).
# - **The M\* values: the time model's form.** With the caps our M* at λ = 50 / 60 / 70
#   is 9,934 / 18,985 / 54,367 against 34,377 / 55,758 / 100,327 published (0.29–0.54×):
#   our affine curve is flatter (a/b = 5,339) than the published one (26,429). Under a
#   linear-kv model a/b = d0/d1 whatever the lengths, and the published a/b is within
#   10% of [WAIT]'s own d0/d1 = 24,000 (our linear-kv fit: 33,609). At equal relative
#   load ρ = 0.565 (the published λ = 50), our linear-kv M* is 43,716 (1.27× published),
#   our affine one 10,667 (0.31×). So the published curve has the linear-kv form, with
#   the paper's d0/d1 ratio; the paper's own d0, d1 read as per-iteration costs would
#   put the crossing at 4.4/s on our sample (they are whole-batch times), and the
#   published b needs E[V] = 983 tokens with d1 = 0.0115 ms, far below any of our
#   samples (7,669 with the caps): the absolute scale of the published curve is not
#   reproduced by any combination tried.
