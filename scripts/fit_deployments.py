#!/usr/bin/env python
"""Re-derive the fitted deployment files from the profiling data in ``instances/profiling``.

Writes (into ``--out``, default ``instances/deployments``):

- ``llama2-7b-a100.yaml``: Llama-2-7B, fp16, one A100-80GB. Per-iteration times are composed
  from Vidur's operator profiles (``instances/profiling/vidur_a100_llama2_7b``) on a grid of
  realistic batches, then the five non-negative coefficients of the affine model

      τ = c0 + c_seq·B + c_kv·ΣKV + c_new·N_new + c_pf2·Σ chunk²

  are fitted by least squares.
- ``llama2-7b-a100-vidur.yaml``: the same model and GPU configured as Vidur's defaults
  (KV blocks of 16 with the prompt reserved, 128 sequences, a padded 4,096-token prefill
  budget, recompute preemption of the latest arrival, no CPU overhead) with the
  profile-based time model (``profile_time``) and, for the fluid model, an affine fit of
  the compute part alone; its provenance reports both models' errors on held-out profile
  rows.
- ``llama2-7b-a100-linear.yaml``: the linear-kv model τ = d0 + d1·ΣKV fitted to the
  decode-only iterations of the same grid (for [WAIT]-style experiments).
- ``llama2-70b-2xa100.yaml``: Llama-2-70B on two A100-80GB (TP 2), C = 16,492 tokens (the
  setting of [KV]), affine model fitted to SplitwiseSim's measured prompt and token times
  (``instances/profiling/splitwise_perf_model``).

The profiles are in milliseconds; every coefficient in the YAML files is in **seconds**.
``--check`` recomputes everything and compares it with the files in ``--out`` instead of
writing (exit 1 on a difference), so a reviewer can confirm the committed files.

Usage::

    python scripts/fit_deployments.py                 # rewrite instances/deployments/*.yaml
    python scripts/fit_deployments.py --out /tmp/dep  # write elsewhere
    python scripts/fit_deployments.py --check         # compare with the committed files
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.optimize import nnls

from fluidopt.deployment import TimeModel
from fluidopt.io import atomic_path

REPO = Path(__file__).resolve().parents[1]
PROFILING = REPO / "instances" / "profiling"
OUT = REPO / "instances" / "deployments"

LAYERS = 32  # Llama-2-7B (model_config_Llama-2-7b-hf.yml)
#: Per-layer operators of mlp.csv that run once per token (all but the embedding, as in Vidur).
TOKEN_LINEAR_OPS = (
    "input_layernorm",
    "attn_pre_proj",
    "attn_rope",
    "attn_post_proj",
    "post_attention_layernorm",
    "mlp_up_proj",
    "mlp_act",
    "mlp_down_proj",
    "add",
)
#: Vidur's KV capacity for Llama-2-7B on one A100-80GB: 7,424 blocks × 16 tokens.
CAPACITY_7B = 7_424 * 16
#: [KV]'s setting for Llama-2-70B on two A100s.
CAPACITY_70B = 16_492
COEFFS = ("c0", "c_seq", "c_kv", "c_new", "c_pf2")
#: Significant digits kept in the files (the fit itself is far less precise than this).
DIGITS = 6
#: Relative tolerance of --check (rounding to DIGITS significant digits, with margin).
CHECK_RTOL = 1e-5
#: Relative tolerance of --check on the numbers in provenance (rounded to 3–5 digits).
PROVENANCE_RTOL = 1e-2


def _sig(x: float, digits: int = DIGITS) -> float:
    return float(f"{x:.{digits}g}")


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------------------
# Features of a batch (the affine model's regressors)
# ---------------------------------------------------------------------------------------


@dataclass
class Batch:
    """One iteration: decoding sequences and prefilling sequences.

    ``decode_kv`` holds the end-of-iteration footprint of each decoding sequence (tokens,
    including the token it writes this iteration; the decode attention reads all of them).
    ``prefill`` holds (chunk, cached tokens before the chunk, completes prompt) per prefilling
    sequence; a chunk that completes the prompt also emits token 1, so its footprint is
    cached + chunk + 1 (system model), otherwise cached + chunk.
    """

    family: str
    decode_kv: list[int] = field(default_factory=list)
    prefill: list[tuple[int, int, bool]] = field(default_factory=list)

    @property
    def features(self) -> list[float]:
        """[1, B, ΣKV, N_new, Σ chunk²] in tokens."""
        b = len(self.decode_kv) + len(self.prefill)
        kv = sum(self.decode_kv) + sum(k + c + (1 if done else 0) for c, k, done in self.prefill)
        new = len(self.decode_kv) + sum(c for c, _, _ in self.prefill)
        sq = sum(c * c for c, _, _ in self.prefill)
        return [1.0, float(b), float(kv), float(new), float(sq)]


# ---------------------------------------------------------------------------------------
# Llama-2-7B on A100: components from the Vidur profiles (all ms)
# ---------------------------------------------------------------------------------------


@dataclass
class Vidur7B:
    """Operator-level components, re-derived from the profiling files (ms)."""

    tokens: np.ndarray  # num_tokens grid of mlp.csv (TP 1)
    linear_ms: np.ndarray  # 32 layers × Σ medians of TOKEN_LINEAR_OPS at those token counts
    prefill_attn: tuple[float, float, float]  # per layer: p1·c + p2·c² + p3·c·kv
    prefill_attn_r2: float
    decode_attn: tuple[float, float]  # per layer: d1·B + d2·Σkv
    decode_attn_median_rel: float
    cpu: tuple[float, float]  # o0 + o1·B
    cpu_r2: float
    duplicates: int

    def linear_ops(self, n: float) -> float:
        """Token-linear operators over all layers for a forward pass of n tokens (ms)."""
        return float(np.interp(n, self.tokens, self.linear_ms))

    def iteration_ms(self, batch: Batch, cpu: bool = True) -> float:
        """Composed iteration time (ms): linear ops + attention (+ CPU overhead)."""
        p1, p2, p3 = self.prefill_attn
        d1, d2 = self.decode_attn
        o0, o1 = self.cpu
        n_tok = len(batch.decode_kv) + sum(c for c, _, _ in batch.prefill)
        t = self.linear_ops(n_tok)
        t += LAYERS * sum(p1 * c + p2 * c * c + p3 * c * k for c, k, _ in batch.prefill)
        if batch.decode_kv:
            t += LAYERS * (d1 * len(batch.decode_kv) + d2 * sum(batch.decode_kv))
        if cpu:
            t += o0 + o1 * (len(batch.decode_kv) + len(batch.prefill))
        return t


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - np.mean(y)) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def load_vidur_7b(folder: Path, held_tokens: frozenset[int] = frozenset(), held_attn: frozenset[int] = frozenset()) -> Vidur7B:
    """Re-derive the component models of the reference iteration-time model
    (instances/profiling/SOURCES.md, 'Reference iteration-time model') from the copied Vidur files.

    ``held_tokens`` (mlp.csv token counts) and ``held_attn`` (0-based data rows of the
    attention file) are left out, for the held-out evaluation.
    """
    # 1. Token-linear operators. mlp.csv repeats a few token counts (2048, 4096); their
    #    sums are averaged so the interpolation grid is strictly increasing.
    by_n: dict[int, list[float]] = defaultdict(list)
    for row in _read_csv(folder / "mlp.csv"):
        if int(row["num_tensor_parallel_workers"]) != 1 or int(row["num_tokens"]) in held_tokens:
            continue
        per_layer = sum(float(row[f"time_stats.{op}.median"]) for op in TOKEN_LINEAR_OPS)
        by_n[int(row["num_tokens"])].append(LAYERS * per_layer)
    tokens = np.array(sorted(by_n), dtype=float)
    linear = np.array([np.mean(by_n[int(n)]) for n in tokens])
    duplicates = sum(len(v) - 1 for v in by_n.values())

    # 2. Attention (per layer, ms). Prefill: ordinary least squares on (c, c², c·kv).
    #    Decode: relative-error-weighted least squares on (B, B·L), since the decode times
    #    span 0.009–3.3 ms and an unweighted fit would ignore the small batches.
    rows = [r for i, r in enumerate(_read_csv(folder / "attention_tp1_sampled.csv")) if i not in held_attn]
    pre = [r for r in rows if r["is_prefill"] == "True"]
    c = np.array([float(r["prefill_chunk_size"]) for r in pre])
    kv = np.array([float(r["kv_cache_size"]) for r in pre])
    y = np.array([float(r["attn_median_ms_per_layer"]) for r in pre])
    x = np.column_stack([c, c * c, c * kv])
    p, *_ = np.linalg.lstsq(x, y, rcond=None)
    prefill_r2 = _r2(y, x @ p)
    dec = [r for r in rows if r["is_prefill"] == "False"]
    b = np.array([float(r["batch_size"]) for r in dec])
    ctx = np.array([float(r["kv_cache_size"]) for r in dec])
    y = np.array([float(r["attn_median_ms_per_layer"]) for r in dec])
    x = np.column_stack([b, b * ctx])
    d, *_ = np.linalg.lstsq(x / y[:, None], np.ones_like(y), rcond=None)
    decode_rel = float(np.median(np.abs(x @ d - y) / y))

    # 3. CPU and scheduler overhead per iteration, Llama-2-7b rows at TP 1.
    cpu_rows = [
        r
        for r in _read_csv(folder / "cpu_overheads.csv")
        if r["model_name"] == "meta-llama/Llama-2-7b-hf" and int(r["tensor_parallel_degree"]) == 1
    ]
    bs = np.array([float(r["batch_size"]) for r in cpu_rows])
    over = np.array(
        [
            float(r["schedule_median"])
            + float(r["sampler_e2e_median"])
            + float(r["prepare_inputs_e2e_median"])
            + float(r["process_model_outputs_median"])
            + float(r["ray_comm_time_mean"])
            for r in cpu_rows
        ]
    )
    o1, o0 = np.polyfit(bs, over, 1)
    cpu_r2 = _r2(over, o0 + o1 * bs)
    return Vidur7B(
        tokens=tokens,
        linear_ms=linear,
        prefill_attn=(float(p[0]), float(p[1]), float(p[2])),
        prefill_attn_r2=prefill_r2,
        decode_attn=(float(d[0]), float(d[1])),
        decode_attn_median_rel=decode_rel,
        cpu=(float(o0), float(o1)),
        cpu_r2=cpu_r2,
        duplicates=duplicates,
    )


#: Decode-only grid: every sequence has the same context (the decode attention is linear in Σkv,
#: so mixing contexts would add no information).
DECODE_B = (1, 2, 4, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128)
DECODE_CTX = (128, 256, 512, 1024, 2048, 3000, 4000)
#: Single-prompt prefill sizes.
PREFILL_N = (64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)
#: Mixed (Sarathi-like) batches: B_dec decodes at context L plus one prompt chunk after kv
#: cached prompt tokens; the chunk either fills a 512-token budget or is a prompt's last,
#: shorter chunk (128 or 256 tokens).
MIXED_BDEC = (1, 4, 16, 32, 64, 128)
MIXED_CTX = (512, 1024, 2048)
MIXED_CACHED = (0, 1024, 2048, 3072)
TOKEN_BUDGET = 512


def grid_7b() -> list[Batch]:
    """The batches the 7B model is fitted on (deterministic)."""
    out: list[Batch] = []
    for b in DECODE_B:
        for ctx in DECODE_CTX:
            out.append(Batch("decode", decode_kv=[ctx] * b))
    for n in PREFILL_N:
        out.append(Batch("prefill", prefill=[(n, 0, True)]))
    for b in MIXED_BDEC:
        for ctx in MIXED_CTX:
            for cached in MIXED_CACHED:
                for chunk, last in ((TOKEN_BUDGET - b, False), (128, True), (256, True)):
                    if chunk > 0 and cached + chunk <= 4096:
                        out.append(Batch("mixed", decode_kv=[ctx] * b, prefill=[(chunk, cached, last)]))
    return out


# ---------------------------------------------------------------------------------------
# Fitting and fit quality
# ---------------------------------------------------------------------------------------


def fit_nonnegative(x: np.ndarray, y: np.ndarray, families: list[str]) -> np.ndarray:
    """Non-negative least squares on relative errors, each family weighted equally.

    Minimises Σ_f (1/n_f) Σ_{i∈f} ((x_i·θ − y_i)/y_i)² over θ ≥ 0: relative errors so a
    10 ms decode step counts as much as a 340 ms prefill, and per-family weights so the
    family with the most grid points does not dominate.
    """
    counts = defaultdict(int)
    for f in families:
        counts[f] += 1
    w = np.array([1.0 / (y_i * math.sqrt(counts[f])) for y_i, f in zip(y, families)])
    a = x * w[:, None]
    scale = np.abs(a).max(axis=0)
    scale[scale == 0] = 1.0
    theta, _ = nnls(a / scale, w * y, maxiter=10_000)
    return theta / scale


def quality(y: np.ndarray, pred: np.ndarray, families: list[str]) -> dict[str, Any]:
    """R², median and max relative error, overall and per family (errors as fractions)."""

    def stats(mask: np.ndarray) -> dict[str, Any]:
        rel = np.abs(pred[mask] - y[mask]) / y[mask]
        return {
            "points": int(mask.sum()),
            "r2": _sig(_r2(y[mask], pred[mask]), 5),
            "median_rel_err": _sig(float(np.median(rel)), 3),
            "max_rel_err": _sig(float(np.max(rel)), 3),
        }

    fam = np.array(families)
    out = {"all": stats(np.ones(len(y), dtype=bool))}
    for f in dict.fromkeys(families):
        out[f] = stats(fam == f)
    return out


def _time_block(kind: str, theta_ms: np.ndarray, names: tuple[str, ...] = COEFFS) -> dict[str, Any]:
    """Coefficients fitted in ms → the YAML ``time`` mapping in s (zeros kept, explicitly)."""
    block: dict[str, Any] = {"kind": kind}
    for name, value in zip(names, theta_ms):
        block[name] = _sig(float(value) / 1000.0)
    return block


def _ms(theta_ms: np.ndarray, names: tuple[str, ...] = COEFFS) -> dict[str, float]:
    return {name: _sig(float(v), 4) for name, v in zip(names, theta_ms)}


def p512d20_note(time: dict[str, Any]) -> dict[str, Any]:
    """Single-type fluid stability limit λ < 1/u for prompt 512, output 20 (memory aside)."""
    tm = TimeModel(**time)
    u = float(tm.marginal_work(512, 20))
    return {
        "marginal_work_s": _sig(u, 4),
        "rate_limit_per_s": _sig(1.0 / u, 4),
        "note": "fluid stability needs λ·u < 1; [WAIT] reports observed limits λ* ≈ 23 (WAIT), 22 "
        "(Sarathi-like), 19 (vLLM-like) requests/s for this workload on this deployment",
    }


def build_7b(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The affine and the linear-kv deployment for Llama-2-7B on one A100-80GB."""
    comp = load_vidur_7b(folder)
    batches = grid_7b()
    x = np.array([b.features for b in batches])
    y = np.array([comp.iteration_ms(b) for b in batches])
    fams = [b.family for b in batches]
    theta = fit_nonnegative(x, y, fams)
    q = quality(y, x @ theta, fams)

    # Sub-fit on the decode family alone, τ = a + b·B + c·ΣKV: the form of the reference model.
    dmask = np.array([f == "decode" for f in fams])
    xd = x[dmask][:, :3]
    decode_only, *_ = np.linalg.lstsq(xd, y[dmask], rcond=None)
    decode_only_r2 = _r2(y[dmask], xd @ decode_only)

    p1, p2, p3 = comp.prefill_attn
    d1, d2 = comp.decode_attn
    o0, o1 = comp.cpu
    files = [
        "instances/profiling/vidur_a100_llama2_7b/mlp.csv",
        "instances/profiling/vidur_a100_llama2_7b/attention_tp1_sampled.csv",
        "instances/profiling/vidur_a100_llama2_7b/cpu_overheads.csv",
    ]
    components = {
        "linear_ops_ms": (
            f"L(n) = {LAYERS} × Σ medians of {', '.join(TOKEN_LINEAR_OPS)} (mlp.csv, TP 1), "
            f"linear interpolation in n; {comp.duplicates} repeated token counts averaged; "
            f"L(1) = {comp.linear_ops(1):.2f}, L(128) = {comp.linear_ops(128):.2f}, "
            f"L(512) = {comp.linear_ops(512):.2f}, L(4096) = {comp.linear_ops(4096):.2f}"
        ),
        "attention_prefill_ms_per_layer": {
            "form": "p1·c + p2·c² + p3·c·kv (chunk c after kv cached tokens), least squares",
            "p1": _sig(p1, 4),
            "p2": _sig(p2, 4),
            "p3": _sig(p3, 4),
            "r2": _sig(comp.prefill_attn_r2, 4),
        },
        "attention_decode_ms_per_layer": {
            "form": "d1·B + d2·Σkv, relative-error-weighted least squares",
            "d1": _sig(d1, 4),
            "d2": _sig(d2, 4),
            "median_rel_err": _sig(comp.decode_attn_median_rel, 3),
        },
        "cpu_overhead_ms": {
            "form": "o0 + o1·B (schedule + sampler_e2e + prepare_inputs_e2e + process_model_outputs "
            "medians + ray_comm_time_mean; fitted on B = 8…128, extrapolated below 8)",
            "o0": _sig(o0, 4),
            "o1": _sig(o1, 4),
            "r2": _sig(comp.cpu_r2, 4),
        },
    }
    grid = {
        "decode": f"B ∈ {list(DECODE_B)} × per-sequence context ∈ {list(DECODE_CTX)} "
        f"({len(DECODE_B) * len(DECODE_CTX)} batches; as in the reference decode fit, "
        f"instances/profiling/SOURCES.md, 'Reference iteration-time model', some exceed C)",
        "prefill": f"one prompt of n ∈ {list(PREFILL_N)} tokens, whole prompt in one iteration",
        "mixed": f"B_dec ∈ {list(MIXED_BDEC)} decodes at context ∈ {list(MIXED_CTX)} plus one prompt "
        f"chunk after {list(MIXED_CACHED)} cached prompt tokens; chunk = {TOKEN_BUDGET} − B_dec "
        "(budget-filling) or 128/256 (a prompt's last chunk); chunks ending past 4096 tokens dropped",
    }
    common_caveats = [
        "The attention terms come from 129 TP-1 points transcribed from Vidur's attention profile "
        "(the full file was not available); see SOURCES.md in instances/profiling.",
        "Kernels are Vidur's 2024 profiles (FLASH_ATTENTION backend, paged block 16); newer stacks "
        "are faster, mostly in the per-sequence decode term.",
        "The [WAIT] paper's d0 ≈ 276 ms and d1 ≈ 0.0115 ms are times of a whole batch run, not of "
        "one iteration, and are not used here.",
    ]
    affine = {
        "name": "llama2-7b-a100",
        "description": "Llama-2-7B fp16, one A100-80GB; affine fit to Vidur profiles",
        "capacity": CAPACITY_7B,
        "time": _time_block("affine", theta),
        "max_batch": None,
        "max_tokens": None,
        "chunk_size": 512,
        "block_size": 1,
        "provenance": {
            "generated_by": "scripts/fit_deployments.py",
            "inputs": files,
            "units": "coefficients in s (profiles are in ms); capacity in KV tokens",
            "capacity": "Vidur's KV capacity for this deployment: 7,424 blocks × 16 tokens "
            "(90% of 80 GB minus fp16 weights, 0.5 MiB of KV per token)",
            "chunk_size": "default prefill chunk for Sarathi-like runs (512 tokens); policies that "
            "prefill whole prompts ignore it",
            "method": "compose per-iteration times (ms) = L(N_tok) + 32·attention + CPU overhead on the "
            "grid below, then fit τ = c0 + c_seq·B + c_kv·ΣKV + c_new·N_new + c_pf2·Σchunk² by "
            "non-negative least squares on relative errors, each batch family weighted equally. "
            "ΣKV counts end-of-iteration footprints (a prompt's finishing chunk includes token 1).",
            "components": components,
            "grid": grid,
            "coefficients_ms": _ms(theta),
            "fit_quality": q,
            "p512d20": None,
            "decode_only_fit_ms": {
                "form": "a + b·B + c·ΣKV on the decode family alone (compare the reference decode fit, "
                "instances/profiling/SOURCES.md, 'Reference iteration-time model')",
                "a": _sig(float(decode_only[0]), 4),
                "b": _sig(float(decode_only[1]), 4),
                "c": _sig(float(decode_only[2]), 4),
                "r2": _sig(decode_only_r2, 5),
            },
            "caveats": [
                *common_caveats,
                "One affine model cannot follow the flat, weight-bandwidth-bound cost of small "
                "forward passes (≤ ~100 tokens) and the linear cost of large ones at once; see the "
                "per-family errors above. The prefill attention's c·kv term has no regressor of its "
                "own and is absorbed by c_kv.",
            ],
        },
    }

    affine["provenance"]["p512d20"] = p512d20_note(affine["time"])

    # Linear-kv variant: τ = d0 + d1·ΣKV on the decode-only iterations.
    xl = x[dmask][:, [0, 2]]
    theta_l = fit_nonnegative(xl, y[dmask], ["decode"] * int(dmask.sum()))
    q_l = quality(y[dmask], xl @ theta_l, ["decode"] * int(dmask.sum()))
    pmask = np.array([f != "decode" for f in fams])
    q_other = quality(y[pmask], x[pmask][:, [0, 2]] @ theta_l, [f for f in fams if f != "decode"])
    q_other.pop("all")
    linear = {
        "name": "llama2-7b-a100-linear",
        "description": "Llama-2-7B fp16, one A100-80GB; linear-kv fit to decode steps",
        "capacity": CAPACITY_7B,
        "time": _time_block("linear-kv", theta_l, ("c0", "c_kv")),
        "max_batch": None,
        "max_tokens": None,
        "chunk_size": 512,
        "block_size": 1,
        "provenance": {
            "generated_by": "scripts/fit_deployments.py",
            "inputs": files,
            "units": "c0 = d0 and c_kv = d1, in s and s per KV token; capacity in KV tokens",
            "capacity": affine["provenance"]["capacity"],
            "method": "the decode family of llama2-7b-a100's grid (same composed times), fitted with "
            "τ = d0 + d1·ΣKV by non-negative least squares on relative errors. For [WAIT]-style "
            "experiments, where the per-request marginal work is d1·V.",
            "grid": {"decode": grid["decode"]},
            "coefficients_ms": {"d0": _sig(float(theta_l[0]), 4), "d1": _sig(float(theta_l[1]), 4)},
            "fit_quality": q_l,
            "p512d20": None,
            "error_outside_fit": {
                "note": "the same d0, d1 applied to the other families of the grid; linear-kv has no "
                "prefill compute term, so prompts are badly under-priced",
                **q_other,
            },
            "caveats": [
                *common_caveats,
                "linear-kv ignores the per-sequence decode cost (≈ 0.12 ms per sequence), so small "
                "contexts at large B are under-predicted.",
            ],
        },
    }
    linear["provenance"]["p512d20"] = p512d20_note(linear["time"])
    return affine, linear


# ---------------------------------------------------------------------------------------
# Llama-2-70B on two A100s: SplitwiseSim's measured prompt and token times
# ---------------------------------------------------------------------------------------


def build_70b(folder: Path) -> dict[str, Any]:
    """Affine model for Llama-2-70B, TP 2 on A100-80GB, from SplitwiseSim's perf_model.csv."""
    rows = [
        r
        for r in _read_csv(folder / "perf_model.csv")
        if r["model"] == "llama2-70b" and r["hardware"] == "a100-80gb" and r["tensor_parallel"] == "2"
    ]
    groups: dict[tuple[int, int, int], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        groups[(int(r["prompt_size"]), int(r["batch_size"]), int(r["token_size"]))].append(r)

    def med(key: tuple[int, int, int], col: str) -> float:
        return float(np.median([float(r[col]) for r in groups[key]]))

    batches: list[Batch] = []
    y: list[float] = []
    excluded: list[str] = []
    used_keys = sorted(k for k in groups if k[2] == 128 and (k[1] == 1 or k[0] == 512))
    for s, b, t in used_keys:
        if b == 64:
            excluded.append(
                f"batch 64 (prompt {s}): token_time {med((s, b, t), 'token_time'):.1f} ms is below batch 32's "
                f"and e2e_time {med((s, b, t), 'e2e_time') / 1000:.0f} s is "
                f"{med((s, b, t), 'e2e_time') / med((s, 32, t), 'e2e_time'):.1f}× batch 32's, so the "
                "64 requests did not run as one batch"
            )
            continue
        # Prompt phase: b prompts of s tokens in one iteration, each emitting token 1.
        batches.append(Batch("prompt", prefill=[(s, 0, True)] * b))
        y.append(med((s, b, t), "prompt_time"))
        # Token phase: token_time is the mean decode step over generated tokens 2…t, whose
        # end-of-iteration footprints s + 2 … s + t average s + (t + 2)/2.
        mean_kv = s + (t + 2) / 2
        batches.append(Batch("token", decode_kv=[mean_kv] * b))
        y.append(med((s, b, t), "token_time"))
    other = sorted(k for k in groups if k[2] != 128)
    flat = [med(k, "token_time") for k in other]
    spread = max(
        max(float(r["e2e_time"]) for r in groups[k]) / min(float(r["e2e_time"]) for r in groups[k]) for k in other
    )
    excluded.append(
        f"the generated-length sweep (prompt 512, batch 1, token_size {other[0][2]}–{other[-1][2]}): "
        f"token_time stays at {min(flat):.1f}–{max(flat):.1f} ms (median per size) for contexts up to "
        f"{512 + other[-1][2]} tokens, beyond Llama-2's 4,096, while the e2e_time of repetitions of one "
        f"configuration differs by up to {spread:.0f}×; these rows do not describe steady decoding"
    )
    x = np.array([b.features for b in batches])
    yv = np.array(y)
    fams = [b.family for b in batches]
    theta = fit_nonnegative(x, yv, fams)
    pred = x @ theta
    q = quality(yv, pred, fams)
    # Split the families further for the report: batch sweep vs prompt-size sweep.
    sub_fams = [
        f"{f}_{'batch_sweep' if len(bt.decode_kv) + len(bt.prefill) > 1 else 'batch1'}"
        for f, bt in zip(fams, batches)
    ]
    q_sub = quality(yv, pred, sub_fams)
    q_sub.pop("all")

    # Which terms the data leave undetermined is argued in the text below; the fit itself
    # can only say which coefficients the non-negativity constraint pinned at zero.
    pinned = [name for name, v in zip(COEFFS, theta) if v == 0.0]
    return {
        "name": "llama2-70b-2xa100",
        "description": "Llama-2-70B fp16, two A100-80GB (TP 2); C of [KV], affine fit to SplitwiseSim",
        "capacity": CAPACITY_70B,
        "time": _time_block("affine", theta),
        "max_batch": None,
        "max_tokens": None,
        "chunk_size": None,
        "block_size": 1,
        "provenance": {
            "generated_by": "scripts/fit_deployments.py",
            "inputs": ["instances/profiling/splitwise_perf_model/perf_model.csv"],
            "units": "coefficients in s (the measurements are in ms); capacity in KV tokens",
            "capacity": "16,492 tokens, the setting of [KV] (Llama2-70B on two A100s simulated with Vidur)",
            "method": "rows llama2-70b, a100-80gb, tensor_parallel 2; median of the repetitions of each "
            "configuration. Each configuration gives two iterations: the prompt phase (B prompts of "
            "s tokens prefilled in one iteration; prompt_time) and a mean decode step (B sequences "
            "at mean footprint s + (token_size + 2)/2; token_time). Fitted by non-negative least "
            "squares on relative errors, prompt and token families weighted equally.",
            "used": f"prompt sizes {sorted({k[0] for k in used_keys if k[1] == 1})} at batch 1 and "
            f"batch sizes {sorted({k[1] for k in used_keys if k[1] != 64})} at prompt 512, token_size 128",
            "excluded": excluded,
            "coefficients_ms": _ms(theta),
            "fit_quality": {**q, **q_sub},
            "identification": (
                "c_kv is set by the prompt-size sweep of token_time at batch 1 (context 193–8,257); "
                "c_seq + c_new by the batch sweep of token_time; c_new + c_kv and c_pf2 by prompt_time "
                "against prompt size; c_seq apart from c0 and c_new only by batch prompt phases "
                "against single prompts of the same total size, which is weakly determined. "
                + (
                    f"Pinned at 0 by the non-negativity constraint: {', '.join(pinned)}."
                    if pinned
                    else "No coefficient was pinned at 0."
                )
            ),
            "caveats": [
                "SplitwiseSim measured a different serving stack than the Vidur simulation of [KV]; only "
                "the shape and scale of the iteration time are meant to carry over.",
                "token_time jumps by about 5 ms from batch 1 to batch 2 and is flat after that up to "
                "batch 8; the affine model averages over this.",
            ],
        },
    }


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------


def render(doc: dict[str, Any]) -> str:
    """YAML text of a deployment file (field order kept, Unicode kept)."""
    header = (
        f"# {doc['name']}: generated by scripts/fit_deployments.py from instances/profiling/;\n"
        "# rerun the script instead of editing by hand (--check compares).\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def _write(path: Path, text: str) -> None:
    # Complete file or none (a temporary file next to the target, renamed on success).
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _compare(new: dict[str, Any], path: Path) -> list[str]:
    """Differences between a recomputed deployment and the file at ``path``."""
    if not path.exists():
        return [f"{path}: missing"]
    old = yaml.safe_load(path.read_text())
    problems = []
    keys = ("name", "capacity", "max_batch", "max_tokens", "chunk_size", "block_size", "token_budget", "preemption",
            "victim", "iteration_time")
    for key in keys:
        if old.get(key) != new.get(key):
            problems.append(f"{path}: {key} is {old.get(key)!r}, recomputed {new.get(key)!r}")
    for key in ("cpu_overhead", "profile_time"):
        if not same_provenance(old.get(key), new.get(key), CHECK_RTOL):
            problems.append(f"{path}: {key} differs from the recomputed one")
    if old["time"].get("kind") != new["time"]["kind"]:
        problems.append(f"{path}: time.kind differs")
    for name, value in new["time"].items():
        if name == "kind":
            continue
        was = float(old["time"].get(name, 0.0))
        if not math.isclose(was, value, rel_tol=CHECK_RTOL, abs_tol=1e-15):
            problems.append(f"{path}: time.{name} is {was!r}, recomputed {value!r}")
    if not same_provenance(old.get("provenance"), new.get("provenance")):
        problems.append(f"{path}: provenance differs from the recomputed one")
    return problems


def same_provenance(a: Any, b: Any, rel: float = PROVENANCE_RTOL) -> bool:
    """Equal structure and text; numbers equal within ``rel`` (they are rounded to 3–5 digits,
    so another numpy/BLAS build may flip a last digit without anything having changed)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_provenance(a[k], b[k], rel) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_provenance(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)
    return a == b


# ---------------------------------------------------------------------------------------
# Llama-2-7B on A100 as Vidur's defaults: profile-based time model, held-out errors
# ---------------------------------------------------------------------------------------

#: Vidur's rounding: batch tokens up to a multiple of 8, cached tokens up to a multiple of 64.
TOKEN_ROUND, KV_ROUND = 8, 64
#: Every HOLDOUT-th profile row (from the third on) is held out in the evaluation.
HOLDOUT = 4


def profile_spec(comp: Vidur7B) -> dict[str, Any]:
    """The ``profile_time`` table of a deployment from the component models (ms per layer)."""
    p1, p2, p3 = comp.prefill_attn
    d1, d2 = comp.decode_attn
    return {
        "layers": LAYERS,
        "token_round": TOKEN_ROUND,
        "kv_round": KV_ROUND,
        "linear_ops_ms": {
            "tokens": [int(n) for n in comp.tokens],
            "ms": [_sig(float(v) / LAYERS) for v in comp.linear_ms],
        },
        "attention_ms_per_layer": {
            "prefill": {"p1": _sig(p1), "p2": _sig(p2), "p3": _sig(p3)},
            "decode": {"d1": _sig(d1), "d2": _sig(d2)},
        },
    }


def _affine_compute(comp: Vidur7B) -> np.ndarray:
    """Affine coefficients (ms) fitted to the compute part (no CPU overhead) on the grid."""
    batches = grid_7b()
    x = np.array([b.features for b in batches])
    y = np.array([comp.iteration_ms(b, cpu=False) for b in batches])
    return fit_nonnegative(x, y, [b.family for b in batches])


def heldout_errors(folder: Path) -> dict[str, Any]:
    """Errors of the affine and the profile model on profile rows left out of both.

    Every HOLDOUT-th token count of mlp.csv (TP 1) and every HOLDOUT-th attention point
    is held out; both models are rebuilt from the rest (the affine one by the same grid
    fit, compute part only). Each held-out row gives one iteration whose "true" time uses
    the held-out measurement for its own component and the all-rows model for the other:
    a prompt of n tokens (held-out linear ops), B decodes at context kv (held-out decode
    attention), one chunk c after kv cached tokens (held-out prefill attention).
    """
    from fluidopt.executor.timing import ProfileTime

    full = load_vidur_7b(folder)
    tp1 = sorted({int(r["num_tokens"]) for r in _read_csv(folder / "mlp.csv") if int(r["num_tensor_parallel_workers"]) == 1})
    held_tokens = frozenset(n for i, n in enumerate(tp1) if i % HOLDOUT == 2)
    attn_rows = _read_csv(folder / "attention_tp1_sampled.csv")
    held_attn = frozenset(i for i in range(len(attn_rows)) if i % HOLDOUT == 2)
    train = load_vidur_7b(folder, held_tokens, held_attn)
    theta = _affine_compute(train)
    prof = ProfileTime(profile_spec(train))
    p1, p2, p3 = full.prefill_attn
    cases: dict[str, list[tuple[float, float, float]]] = {"linear_ops": [], "decode_attention": [], "prefill_attention": []}
    for n in sorted(held_tokens):  # a prompt of n tokens, nothing cached
        true = full.linear_ms[list(full.tokens).index(n)] + LAYERS * (p1 * n + p2 * n * n)
        aff = float(np.array(Batch("p", prefill=[(n, 0, True)]).features) @ theta)
        pro = 1000 * prof.tau(n, 0, 0, 0, n * n)
        cases["linear_ops"].append((true, aff, pro))
    for i in sorted(held_attn):
        r = attn_rows[i]
        ms = LAYERS * float(r["attn_median_ms_per_layer"])
        kv = int(float(r["kv_cache_size"]))
        if r["is_prefill"] == "True":
            c = int(float(r["prefill_chunk_size"]))
            true = full.linear_ops(c) + ms
            aff = float(np.array(Batch("p", prefill=[(c, kv, False)]).features) @ theta)
            pro = 1000 * prof.tau(c, 0, 0, prof.round_kv(kv), c * c)
            cases["prefill_attention"].append((true, aff, pro))
        else:
            b = int(float(r["batch_size"]))
            true = full.linear_ops(b) + ms
            aff = float(np.array(Batch("d", decode_kv=[kv + 1] * b).features) @ theta)
            pro = 1000 * prof.tau(b, b, b * kv, 0, 0)
            cases["decode_attention"].append((true, aff, pro))
    out: dict[str, Any] = {}
    for fam, rows in cases.items():
        t = np.array([r[0] for r in rows])
        errs = {name: np.abs(np.array([r[k] for r in rows]) - t) / t for k, name in ((1, "affine"), (2, "profile"))}
        out[fam] = {"points": len(rows)} | {
            f"{name}_{stat}": _sig(float(f(e)), 3) for name, e in errs.items() for stat, f in (("median", np.median), ("max", np.max))
        }
    return out


def build_7b_vidur(folder: Path) -> dict[str, Any]:
    """Llama-2-7B on one A100 configured as Vidur's defaults, with the profile time model."""
    comp = load_vidur_7b(folder)
    theta = _affine_compute(comp)
    o0, o1 = comp.cpu
    return {
        "name": "llama2-7b-a100-vidur",
        "description": "Llama-2-7B fp16, one A100-80GB, as Vidur's default vLLM/Sarathi replica; profile time model",
        "capacity": CAPACITY_7B,
        "time": _time_block("affine", theta),
        "max_batch": 128,
        "max_tokens": 4096,
        "chunk_size": 512,
        "block_size": 16,
        "token_budget": "padded",
        "preemption": "recompute",
        "victim": "latest-arrival",
        "iteration_time": "profile",
        "cpu_overhead": {"c0": _sig(o0 / 1000.0), "c_seq": _sig(o1 / 1000.0), "included": False},
        "profile_time": profile_spec(comp),
        "provenance": {
            "generated_by": "scripts/fit_deployments.py",
            "inputs": [
                "instances/profiling/vidur_a100_llama2_7b/mlp.csv",
                "instances/profiling/vidur_a100_llama2_7b/attention_tp1_sampled.csv",
                "instances/profiling/vidur_a100_llama2_7b/cpu_overheads.csv",
            ],
            "licence": "profile_time is derived from Vidur's profiles (MIT, Microsoft; "
            "instances/deployments/NOTICE.md)",
            "vidur_defaults": "microsoft/vidur 7d47513: batch_size_cap 128, block_size 16, "
            "watermark_blocks_fraction 0.01 (the vllm and sarathi policies' default watermark), "
            "vLLM max_tokens_in_batch 4096 counted as prompts × longest, Sarathi chunk_size 512 "
            "(decodes included), preemption restarts the latest-arrived running request with its "
            "generated tokens re-prefilled, skip_cpu_overhead_modeling true, KV 7,424 blocks",
            "time": "the affine fit of llama2-7b-a100 without the CPU overhead (the compute part), "
            "for the fluid model and calibration; the executor uses profile_time",
            "profile_time": "linear_ops_ms: per-layer Σ of the token-linear operators' medians at each "
            "profiled token count (mlp.csv TP 1, repeated counts averaged), interpolated linearly; "
            "attention: the per-layer least-squares forms of llama2-7b-a100 (the full attention "
            "profile was not available); Vidur's rounding (tokens to multiples of 8, cached tokens "
            "to multiples of 64, the prefill members as one prompt of chunk √Σc² after Σkv)",
            "cpu_overhead": "o0 + o1·B of llama2-7b-a100's components; not included (Vidur's default)",
            "coefficients_ms": _ms(theta),
            "heldout_error": heldout_errors(folder),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiling", type=Path, default=PROFILING, help="folder with the profiling inputs")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the deployment files")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out; write nothing")
    args = parser.parse_args(argv)

    affine, linear = build_7b(args.profiling / "vidur_a100_llama2_7b")
    big = build_70b(args.profiling / "splitwise_perf_model")
    docs = [affine, build_7b_vidur(args.profiling / "vidur_a100_llama2_7b"), linear, big]
    if args.check:
        problems = [p for d in docs for p in _compare(d, args.out / f"{d['name']}.yaml")]
        for p in problems:
            print(p, file=sys.stderr)
        print("check: " + ("differences found" if problems else f"{len(docs)} deployment files match"))
        return 1 if problems else 0
    if not args.out.is_dir():
        print(f"output folder {args.out} does not exist", file=sys.stderr)
        return 2
    for d in docs:
        path = args.out / f"{d['name']}.yaml"
        _write(path, render(d))
        q = d["provenance"].get("fit_quality", {}).get("all")
        quality_text = f"; R² {q['r2']}, median rel. err {q['median_rel_err']}, max {q['max_rel_err']}" if q else ""
        print(
            f"{path}: {d['time']['kind']}, "
            + ", ".join(f"{k}={v:.4g}" for k, v in d["time"].items() if k != "kind")
            + f" s{quality_text}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
