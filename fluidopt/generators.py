"""Seeded workload generators: arrival processes, the paper families, predictions.

Every generator takes an integer ``seed`` and draws from one
``numpy.random.default_rng(seed)``, in an order stated in its docstring, so a seed fixes
the workload exactly (same numpy version). The seed is recorded in ``Workload.meta``.

Families
--------
- :func:`kv_synthetic` — the [KV] synthetic instances (unit time, arrival models 1 and 2).
- :func:`poisson_types` — multi-type arrivals for the [WAIT] setups (Poisson, or a gamma
  renewal process for bursty arrivals), type labels ``p{prompt}d{output}``.
- :func:`lengths_matching` — a length sample matched to published mean/median statistics
  (lognormal), e.g. LMSYS-Chat-1M (:data:`LMSYS_STATS`).
- :func:`vidur_synthetic` — Vidur's default synthetic request generator on a trace's
  lengths (proportional length reduction, seeded shuffle, capped Poisson gaps), draw
  for draw the same requests Vidur generates for the same seed.
- :func:`with_prediction_interval`, :func:`with_point_prediction` — add predictions of a
  chosen accuracy to any workload.
- :func:`generate` — run a YAML spec (``instances/workloads/*.yaml``).

Spec files
----------
A spec is a mapping with keys ``generator`` (one of :data:`GENERATORS`), ``params``
(keyword arguments of that generator), ``seed`` (int, default 0), ``description`` and
optionally ``name`` and ``prediction`` (``{interval_alpha: a}`` or ``{point_eps: e}``,
applied after generation with a seed derived from the spec seed). ``poisson-types`` takes
either ``types: [{rate, prompt, output[, label]}, ...]`` (absolute rates, req/s) or
``rate`` (total req/s) with ``mix: [{share, prompt, output[, label]}, ...]``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fluidopt.errors import InputError
from fluidopt.io import read_mapping
from fluidopt.workload import Workload

#: LMSYS-Chat-1M token statistics quoted by [KV]: prompt mean/median, output mean/median.
LMSYS_STATS: dict[str, float] = {
    "prompt_mean": 40.62,
    "prompt_median": 11.0,
    "output_mean": 85.32,
    "output_median": 45.0,
}

#: Arrival processes understood by :func:`arrival_times`.
PROCESSES = ("poisson", "gamma", "constant")


# ---------------------------------------------------------------------- arrivals
def arrival_times(
    rng: np.random.Generator,
    *,
    rate: float,
    n: int | None = None,
    duration: float | None = None,
    process: str = "poisson",
    cv: float = 1.0,
) -> np.ndarray:
    """Arrival times (seconds) of a renewal process started at time 0.

    Parameters
    ----------
    rng
        Source of randomness.
    rate
        Mean arrival rate λ (requests per second).
    n, duration
        Exactly one: the number of arrivals, or the horizon in seconds (all arrivals
        in ``[0, duration]``).
    process
        ``"poisson"`` (exponential gaps), ``"gamma"`` (gamma gaps with mean 1/λ and
        coefficient of variation ``cv``: shape 1/cv², scale cv²/λ; cv > 1 is burstier
        than Poisson) or ``"constant"`` (gaps exactly 1/λ, no randomness).
    cv
        Coefficient of variation of the gaps; only for ``"gamma"`` (``"poisson"``
        requires cv = 1).

    Returns
    -------
    numpy.ndarray
        Non-decreasing float64 times; the first arrival is one gap after 0 (a renewal
        process observed from time 0, not an arrival at 0).
    """
    if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
        raise InputError(f"arrival rate must be a positive number (got {rate!r})", field="rate")
    if process not in PROCESSES:
        raise InputError(f"unknown arrival process {process!r}; use one of {', '.join(PROCESSES)}", field="process")
    if process == "poisson" and cv != 1.0:
        raise InputError(f"a Poisson process has cv = 1 (got cv={cv}); use process 'gamma'", field="cv")
    if not (math.isfinite(cv) and cv > 0):
        raise InputError(f"cv must be positive (got {cv})", field="cv")
    if (n is None) == (duration is None):
        raise InputError("give exactly one of n (requests) and duration (seconds)", field="n")

    def gaps(k: int) -> np.ndarray:
        if process == "poisson":
            return rng.exponential(1.0 / rate, size=k)
        if process == "gamma":
            return rng.gamma(1.0 / cv**2, cv**2 / rate, size=k)
        return np.full(k, 1.0 / rate)

    if n is not None:
        if n < 1:
            raise InputError(f"number of requests must be ≥ 1 (got {n})", field="n")
        return np.cumsum(gaps(int(n)))
    assert duration is not None
    if not (math.isfinite(duration) and duration > 0):
        raise InputError(f"duration must be positive seconds (got {duration})", field="duration")
    # Draw in chunks (mean count plus a margin) until the horizon is passed; the chunks
    # come from one stream, so the result does not depend on the chunk size.
    expected = rate * duration
    chunk = int(expected + 6 * math.sqrt(expected) * max(cv, 1.0) + 16)
    times = np.empty(0)
    last = 0.0
    while last <= duration:
        new = last + np.cumsum(gaps(chunk))
        times = np.concatenate([times, new])
        last = float(new[-1])
    return times[times <= duration]


def _rng(seed: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"seed must be an integer (got {seed!r})", field="seed")
    return np.random.default_rng(int(seed))


def _child_seed(seed: int, stream: int) -> int:
    """An independent integer seed for a secondary stream (predictions) of ``seed``."""
    return int(np.random.SeedSequence([int(seed), stream]).generate_state(1)[0])


# ---------------------------------------------------------------------- [KV] synthetic
def kv_synthetic(arrival_model: int, seed: int, n: int | None = None) -> tuple[Workload, int]:
    """A [KV] synthetic instance in the unit-time model.

    Draws, in this order, from ``default_rng(seed)``:

    1. capacity C ~ U{30, …, 50} (KV tokens);
    2. n ~ U{40, …, 60} (always drawn; replaced by ``n`` when given, so a given seed
       keeps its C);
    3. prompts s_i ~ U{1, …, 5};
    4. outputs o_i ~ U{1, …, C − s_i} (so every request fits: s_i + o_i ≤ C);
    5. model 2 only: rate λ ~ U(0.5, 1.5) per round, then n exponential gaps of mean
       1/λ.

    Arrival model 1: every request arrives at round 0. Arrival model 2: a Poisson
    process started at 0 (first arrival one gap after 0); the arrival round of a request
    is the **floor** of its continuous arrival time t, i.e. a request arriving at
    t ∈ [k, k+1) gets round k (several may share a round, and round 0 is possible). This
    is the project's reading of "Poisson arrivals in rounds".

    Returns
    -------
    (Workload, int)
        Requests sorted by arrival (integer rounds stored as floats, ids 0…n−1 in
        arrival order) and the capacity C, also in ``workload.meta["capacity"]`` with
        ``arrival_model``, ``seed``, ``rate`` (model 2) and ``time_model = "unit"``.
    """
    if arrival_model not in (1, 2):
        raise InputError(f"arrival_model must be 1 or 2 (got {arrival_model!r})", field="arrival_model")
    rng = _rng(seed)
    capacity = int(rng.integers(30, 51))
    n_drawn = int(rng.integers(40, 61))
    if n is not None and (isinstance(n, bool) or int(n) < 1):
        raise InputError(f"number of requests must be ≥ 1 (got {n})", field="n")
    count = int(n) if n is not None else n_drawn
    prompt = rng.integers(1, 6, size=count)
    output = rng.integers(1, capacity - prompt + 1)  # high is exclusive: o ≤ C − s
    meta: dict[str, Any] = {
        "generator": "kv-synthetic",
        "arrival_model": arrival_model,
        "seed": int(seed),
        "capacity": capacity,
        "time_model": "unit",
    }
    if arrival_model == 1:
        arrival = np.zeros(count)
    else:
        rate = float(rng.uniform(0.5, 1.5))
        arrival = np.floor(np.cumsum(rng.exponential(1.0 / rate, size=count)))
        meta["rate"] = rate
    frame = pd.DataFrame({"arrival": arrival, "prompt": prompt, "output": output})
    name = f"kv-synthetic-{arrival_model}"
    w = Workload.from_frame(frame, name=name, source=f"{name} seed={seed}", meta=meta)
    return w, capacity


# ---------------------------------------------------------------------- multi-type
def type_label(prompt: int, output: int) -> str:
    """The [WAIT] label of a type, e.g. ``p512d20`` (prompt 512, decode/output 20)."""
    return f"p{int(prompt)}d{int(output)}"


def poisson_types(
    types: Sequence[Sequence[Any]],
    *,
    n: int | None = None,
    duration: float | None = None,
    seed: int,
    process: str = "poisson",
    cv: float = 1.0,
    name: str = "poisson-types",
) -> Workload:
    """Multi-type arrivals with fixed (prompt, output) per type.

    Parameters
    ----------
    types
        ``(rate, prompt, output)`` or ``(rate, prompt, output, label)`` per type: rate
        in requests per second, prompt and output in tokens. The default label is
        ``p{prompt}d{output}``.
    n, duration
        Exactly one: total number of requests, or horizon in seconds.
    seed
        Seed of ``default_rng``. Draws: the aggregate arrival times first (all gaps),
        then the type of every request.
    process, cv
        Arrival process of the aggregate stream, see :func:`arrival_times`.

    Notes
    -----
    The aggregate stream has rate Λ = Σ_j λ_j and each request independently gets type
    j with probability λ_j/Λ. For Poisson arrivals this is exactly m independent Poisson
    streams of rates λ_j; for the gamma process it is a bursty aggregate stream with
    independent type marks (not a superposition of m gamma streams) — the choice that
    keeps cv the burstiness of what the server sees.
    """
    if len(types) == 0:
        raise InputError("at least one type is needed", field="types")
    rates, prompts, outputs, labels = [], [], [], []
    for j, t in enumerate(types):
        if len(t) not in (3, 4):
            raise InputError(f"type {j + 1}: expected (rate, prompt, output[, label]), got {t!r}", field="types")
        rate, s, o = t[0], t[1], t[2]
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise InputError(f"type {j + 1}: rate must be positive (got {rate!r})", field="rate")
        for what, v in (("prompt", s), ("output", o)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise InputError(f"type {j + 1}: {what} must be a positive integer (got {v!r})", field=what)
        rates.append(float(rate))
        prompts.append(int(s))
        outputs.append(int(o))
        labels.append(str(t[3]) if len(t) == 4 else type_label(s, o))
    rng = _rng(seed)
    lam = np.asarray(rates)
    total = float(lam.sum())
    arrival = arrival_times(rng, rate=total, n=n, duration=duration, process=process, cv=cv)
    if arrival.size == 0:
        raise InputError(f"no arrivals within duration {duration} s at rate {total}/s", field="duration")
    j = rng.choice(len(lam), size=arrival.size, p=lam / total)
    frame = pd.DataFrame(
        {
            "arrival": arrival,
            "prompt": np.asarray(prompts)[j],
            "output": np.asarray(outputs)[j],
            "type": np.asarray(labels, dtype=object)[j],
        }
    )
    meta = {
        "generator": "poisson-types",
        "seed": int(seed),
        "process": process,
        "cv": cv,
        "rate_total": total,
        "types": [
            {"label": lb, "rate": r, "prompt": s, "output": o} for lb, r, s, o in zip(labels, rates, prompts, outputs)
        ],
    }
    return Workload.from_frame(frame, name=name, source=f"{name} seed={seed}", meta=meta)


# ---------------------------------------------------------------------- matched lengths
def lognormal_params(mean: float, median: float) -> tuple[float, float]:
    """(μ, σ) of the lognormal with the given mean and median.

    median = e^μ and mean = e^(μ + σ²/2), so μ = ln(median), σ = √(2·ln(mean/median)).
    Requires mean ≥ median > 0 (a lognormal is right-skewed).
    """
    if not (median > 0 and mean >= median):
        raise InputError(
            f"a lognormal needs mean ≥ median > 0 (got mean {mean}, median {median})", field="mean"
        )
    return math.log(median), math.sqrt(2.0 * math.log(mean / median))


def lengths_matching(
    prompt_mean: float,
    prompt_median: float,
    output_mean: float,
    output_median: float,
    n: int,
    seed: int,
    *,
    rate: float | None = 1.0,
    process: str = "poisson",
    cv: float = 1.0,
    name: str = "lengths-matching",
) -> Workload:
    """Requests whose prompt and output lengths match given means and medians.

    Each length is an independent lognormal with the given mean and median (see
    :func:`lognormal_params`), rounded to the nearest integer and raised to ≥ 1 token.
    Rounding keeps the median (for integer medians) and moves the mean by well under a
    token; prompt and output are drawn independently (the statistics say nothing about
    their correlation). Draws: n prompts, n outputs, then the arrival gaps.

    Parameters
    ----------
    prompt_mean, prompt_median, output_mean, output_median
        Target statistics in tokens; :data:`LMSYS_STATS` holds the LMSYS-Chat-1M values
        quoted by [KV] (prompt 40.62 / 11, output 85.32 / 45).
    n
        Number of requests.
    seed
        Seed of ``default_rng``.
    rate
        Arrival rate (req/s) of the arrival process, or ``None`` for all requests at
        time 0 (the semi-online setting of [ROB]).
    process, cv
        See :func:`arrival_times`.
    """
    if isinstance(n, bool) or int(n) < 1:
        raise InputError(f"number of requests must be ≥ 1 (got {n})", field="n")
    rng = _rng(seed)
    lengths = []
    for what, mean, median in (("prompt", prompt_mean, prompt_median), ("output", output_mean, output_median)):
        try:
            mu, sigma = lognormal_params(float(mean), float(median))
        except InputError as exc:
            raise InputError(f"{what}: {exc}", field=f"{what}_mean") from None
        lengths.append(np.maximum(1, np.rint(rng.lognormal(mu, sigma, size=int(n)))).astype(np.int64))
    arrival = np.zeros(int(n)) if rate is None else arrival_times(rng, rate=rate, n=int(n), process=process, cv=cv)
    frame = pd.DataFrame({"arrival": arrival, "prompt": lengths[0], "output": lengths[1]})
    meta = {
        "generator": "lengths-matching",
        "seed": int(seed),
        "targets": {
            "prompt_mean": prompt_mean,
            "prompt_median": prompt_median,
            "output_mean": output_mean,
            "output_median": output_median,
        },
        "rate": rate,
        "process": process if rate is not None else "all-at-zero",
        "cv": cv,
    }
    return Workload.from_frame(frame, name=name, source=f"{name} seed={seed}", meta=meta)


# ---------------------------------------------------------------------- predictions
def with_prediction_interval(w: Workload, alpha: float, seed: int) -> Workload:
    """Add a prediction interval [pred_lo, pred_hi] of accuracy α = lo/hi to every request.

    Construction (real-valued, then rounded outward): draw u_i ~ U(0, 1) and set
    hi_i = o_i / (α + (1 − α)·u_i) and lo_i = α·hi_i. Then lo_i/hi_i = α exactly,
    lo_i ≤ o_i ≤ hi_i, and the truth sits at relative position u_i inside the interval,
    i.e. uniformly (not always at an end, which would leak the truth to Amin or Amax).
    Rounding: pred_lo = max(1, ⌊lo_i⌋), pred_hi = ⌈hi_i⌉, which keeps the truth inside;
    for short outputs the integer ratio differs from α (e.g. o = 1 gives [1, ⌈1/α'⌉]).

    Parameters
    ----------
    w
        Any workload (existing predictions are replaced).
    alpha
        Accuracy in (0, 1]; α = 1 gives the exact length as the interval.
    seed
        Seed of ``default_rng`` (one uniform per request, in request order).
    """
    if not (isinstance(alpha, (int, float)) and 0 < alpha <= 1):
        raise InputError(f"accuracy alpha must be in (0, 1] (got {alpha!r})", field="alpha")
    rng = _rng(seed)
    o = w.output.astype(np.float64)
    u = rng.uniform(size=len(w))
    hi = o / (alpha + (1.0 - alpha) * u)
    lo_i = np.maximum(1, np.floor(alpha * hi)).astype(np.int64)
    hi_i = np.ceil(hi).astype(np.int64)
    # Guard against the last-ulp rounding of the division (the truth must stay inside).
    lo_i = np.minimum(lo_i, w.output)
    hi_i = np.maximum(hi_i, w.output)
    meta = {"prediction": {"kind": "interval", "alpha": float(alpha), "seed": int(seed)}}
    return w.replace(pred_lo=lo_i, pred_hi=hi_i, meta=meta)


def with_point_prediction(w: Workload, eps: float, seed: int) -> Workload:
    """Add a point prediction õ_i ~ U[(1 − ε)·o_i, (1 + ε)·o_i], rounded, ≥ 1 token.

    This is the [KV] noise model (ε ∈ {0.2, 0.5, 0.8} in their experiment). One uniform
    per request in request order from ``default_rng(seed)``; ε = 0 gives the truth.
    """
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
        raise InputError(f"noise level eps must be ≥ 0 (got {eps!r})", field="eps")
    rng = _rng(seed)
    o = w.output.astype(np.float64)
    pred = np.maximum(1, np.rint(rng.uniform((1.0 - eps) * o, (1.0 + eps) * o))).astype(np.int64)
    meta = {"prediction": {"kind": "point", "eps": float(eps), "seed": int(seed)}}
    return w.replace(pred=pred, meta=meta)


# ---------------------------------------------------------------------- Vidur's generator
def vidur_synthetic(
    trace: str = "azure-conv",
    n: int = 10_000,
    rate: float = 4.0,
    max_tokens: int = 4096,
    seed: int = 42,
    name: str = "vidur-synthetic",
) -> Workload:
    """Vidur's synthetic request generator (trace lengths, Poisson intervals) on ``trace``.

    The facts reproduced (microsoft/vidur 7d47513, ``SyntheticRequestGenerator`` with
    ``TraceRequestLengthGenerator`` and ``PoissonRequestIntervalGenerator``):

    1. Lengths: the trace's (prompt, output) rows in file order; a row whose total
       t = s + o exceeds ``max_tokens`` loses d = t − max_tokens tokens proportionally,
       s −= ⌈d·s/t⌉ and o −= ⌈d·o/t⌉, each then at least 1. The rows are shuffled by
       ``numpy.random.RandomState(seed).permutation`` (what pandas' ``sample(frac=1,
       random_state=seed)`` draws) and the first ``n`` are used.
    2. Arrivals: gaps g = min(−ln(1 − U)/rate, 3/rate) with U from Python's
       ``random.Random(seed)`` (Mersenne Twister; Vidur seeds the global one), the first
       request one gap after 0. The cap at 3/rate makes the mean gap shorter than 1/rate:
       at rate 4 the realised rate is about 4.2 requests/s.

    The same seed thus gives Vidur's request sequence (same NumPy/pandas shuffle). Vidur
    uses ``seed`` 42 by default for both streams.

    Parameters
    ----------
    trace
        A registered trace name or a file (only its lengths are used).
    n
        Requests (at most the trace's rows).
    rate
        Poisson rate (Vidur's ``qps``), requests/s.
    max_tokens
        Largest prompt + output, tokens (Vidur's ``max_tokens``, default 4096).
    seed
        Seed of the shuffle and of the arrival stream.
    """
    import random

    from fluidopt.traces import load_workload

    if not rate > 0:
        raise InputError(f"rate must be positive (got {rate})", field="rate")
    if isinstance(max_tokens, bool) or int(max_tokens) != max_tokens or max_tokens < 2:
        raise InputError(f"max_tokens must be an integer ≥ 2 (got {max_tokens!r})", field="max_tokens")
    src = load_workload(str(trace))
    if isinstance(n, bool) or int(n) != n or not 1 <= n <= len(src):
        raise InputError(f"n must be an integer in 1..{len(src)} (the trace's rows; got {n!r})", field="n")
    s = np.asarray(src.prompt, dtype=np.int64)
    o = np.asarray(src.output, dtype=np.int64)
    t = s + o
    d = np.clip(t - int(max_tokens), 0, None)
    s2 = np.maximum(s - np.ceil(d * (s / t)).astype(np.int64), 1)
    o2 = np.maximum(o - np.ceil(d * (o / t)).astype(np.int64), 1)
    order = np.random.RandomState(int(seed)).permutation(len(src))[: int(n)]
    rng = random.Random(int(seed))
    cap = 3.0 / rate
    clock = 0.0
    arrival = np.empty(int(n))
    for k in range(int(n)):
        clock = clock + min(-math.log(1.0 - rng.random()) / rate, cap)
        arrival[k] = clock
    frame = pd.DataFrame({"arrival": arrival, "prompt": s2[order], "output": o2[order]})
    meta = {
        "generator": "vidur-synthetic",
        "trace": str(trace),
        "seed": int(seed),
        "rate": float(rate),
        "max_tokens": int(max_tokens),
        "reduced": int((d > 0)[order].sum()),
    }
    return Workload.from_frame(frame, name=name, meta=meta)


# ---------------------------------------------------------------------- specs
#: Generator names usable in a spec's ``generator`` key.
GENERATORS = ("kv-synthetic", "poisson-types", "lengths-matching", "trace", "vidur-synthetic")
_SPEC_KEYS = {"generator", "params", "seed", "description", "name", "prediction"}


def read_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML spec file into a mapping (raises InputError naming the file)."""
    p = Path(path)
    spec = read_mapping(p, what="a workload spec mapping (YAML)")
    spec.setdefault("name", p.name.split(".")[0])
    return spec


def generate(
    spec: Mapping[str, Any] | str | os.PathLike[str],
    *,
    seed: int | None = None,
    rate: float | None = None,
    n: int | None = None,
) -> Workload:
    """Build the workload a spec describes.

    Parameters
    ----------
    spec
        A mapping or the path of a YAML file (see the module docstring).
    seed
        Overrides the spec's ``seed``.
    rate
        Overrides the total arrival rate (req/s): for ``poisson-types`` the per-type
        rates are scaled to sum to ``rate`` (the mix is kept); for ``lengths-matching``
        and ``trace`` it is passed on. ``kv-synthetic`` draws its own rate, so a rate
        there is an error.
    n
        Overrides the number of requests (a spec's ``n`` or ``duration``; for
        ``trace``, the trace must hold that many).
    """
    source = str(spec) if not isinstance(spec, Mapping) else str(spec.get("name", "spec"))
    if not isinstance(spec, Mapping):
        spec = read_spec(spec)
    spec = dict(spec)
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise InputError(
            f"unknown spec key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_SPEC_KEYS))}",
            source=source,
            field=sorted(unknown)[0],
        )
    gen = spec.get("generator")
    if gen not in GENERATORS:
        raise InputError(f"unknown generator {gen!r}; use one of {', '.join(GENERATORS)}", source=source, field="generator")
    raw_params = spec.get("params") or {}
    if not isinstance(raw_params, Mapping):
        raise InputError("params must be a mapping of generator arguments", source=source, field="params")
    params = dict(raw_params)
    if n is not None:
        if gen == "trace":
            params["requests"] = n
        else:
            params.pop("duration", None)
            params["n"] = n
    raw_seed = spec.get("seed", 0) if seed is None else seed
    if isinstance(raw_seed, bool) or not isinstance(raw_seed, (int, np.integer)) or raw_seed < 0:
        raise InputError(f"seed must be a non-negative integer (got {raw_seed!r})", source=source, field="seed")
    use_seed = int(raw_seed)
    name = str(spec.get("name") or gen)
    pred = spec.get("prediction")
    if pred and (
        not isinstance(pred, Mapping)
        or len(pred) != 1
        or next(iter(pred)) not in ("interval_alpha", "point_eps")
        or not isinstance(next(iter(pred.values())), (int, float))
    ):
        raise InputError("prediction must be {interval_alpha: A} or {point_eps: E}", source=source, field="prediction")
    step = "params"
    try:
        w = _run_generator(gen, dict(params), use_seed, rate, name)  # a copy: the generator pops keys
        if pred:
            step = "prediction"
            ((kind, value),) = pred.items()
            pseed = _child_seed(use_seed, 1)  # independent of the generator's stream
            if kind == "interval_alpha":
                w = with_prediction_interval(w, float(value), pseed)
            else:
                w = with_point_prediction(w, float(value), pseed)
    except InputError as exc:
        if exc.source:
            raise
        raise InputError(_bare_message(exc), source=source, field=exc.field and f"{step}.{exc.field}") from None
    meta = {
        **w.meta,
        "spec": {"name": name, "generator": gen, "params": params, "seed": use_seed},
        "description": str(spec.get("description", "")).strip(),
    }
    if rate is not None:
        meta["rate_override"] = rate
    return w.replace(name=name, source=source, meta=meta)


def _bare_message(exc: InputError) -> str:
    """The message of an InputError without its location prefix (to re-locate it)."""
    text = str(exc)
    where = [str(exc.source)] if exc.source else []
    if exc.row is not None:
        where.append(f"row {exc.row}")
    if exc.field is not None:
        where.append(f"field '{exc.field}'")
    prefix = ": ".join(where) + ": " if where else ""
    return text[len(prefix):] if prefix and text.startswith(prefix) else text


def _check_params(func: Any, params: Mapping[str, Any], gen: str, reserved: tuple[str, ...] = ()) -> None:
    """Reject params the generator does not take, or required ones that are missing."""
    import inspect

    sig = inspect.signature(func)
    allowed = [p for p in sig.parameters if p not in ("seed", "name", *reserved)]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InputError(
            f"bad params for generator {gen}: unknown {', '.join(unknown)}; allowed: {', '.join(allowed)}",
            field=unknown[0],
        )
    missing = [
        p for p, par in sig.parameters.items()
        if par.default is inspect.Parameter.empty and p not in ("seed", "name", *reserved) and p not in params
    ]
    if missing:
        raise InputError(f"bad params for generator {gen}: missing {', '.join(missing)}", field=missing[0])


def _run_generator(gen: str, params: dict[str, Any], seed: int, rate: float | None, name: str) -> Workload:
    if gen == "kv-synthetic":
        if rate is not None:
            raise InputError("kv-synthetic draws its own arrival rate; --rate does not apply", field="rate")
        model = params.pop("arrival_model", 1)
        _check_params(kv_synthetic, params, gen, reserved=("arrival_model",))
        w, _ = kv_synthetic(model, seed, **params)
        return w
    if gen == "poisson-types":
        types = _types_from_params(params, rate)
        _check_params(poisson_types, params, gen, reserved=("types",))
        return poisson_types(types, seed=seed, name=name, **params)
    if gen == "lengths-matching":
        if rate is not None:
            params["rate"] = rate
        _check_params(lengths_matching, params, gen)
        return lengths_matching(seed=seed, name=name, **params)
    if gen == "vidur-synthetic":
        if rate is not None:
            params["rate"] = rate
        _check_params(vidur_synthetic, params, gen)
        return vidur_synthetic(seed=seed, name=name, **params)
    # gen == "trace": a registered trace or a file, possibly re-timed
    from fluidopt.traces import load_workload

    trace = params.pop("name", None)
    if not trace:
        raise InputError("generator 'trace' needs params.name (a trace name or path)", field="name")
    spec_rate = params.pop("rate", None)
    _check_params(load_workload, params, gen, reserved=("name_or_path", "rate"))
    return load_workload(str(trace), seed=seed, rate=rate if rate is not None else spec_rate, **params)


def _types_from_params(params: dict[str, Any], rate: float | None) -> list[tuple[float, int, int, str]]:
    """Turn ``types`` (absolute rates) or ``rate`` + ``mix`` (shares) into type tuples."""
    types = params.pop("types", None)
    mix = params.pop("mix", None)
    base_rate = params.pop("rate", None)
    if (types is None) == (mix is None):
        raise InputError("poisson-types needs exactly one of 'types' (absolute rates) or 'mix' (shares)", field="types")
    out: list[tuple[float, int, int, str]] = []
    entries = types if types is not None else mix
    if not isinstance(entries, list) or not entries:
        raise InputError("'types'/'mix' must be a non-empty list", field="types")
    key = "rate" if types is not None else "share"
    for j, t in enumerate(entries):
        if not isinstance(t, Mapping) or not {key, "prompt", "output"} <= set(t):
            raise InputError(f"entry {j + 1} needs keys {key}, prompt, output (got {t!r})", field="types")
        s, o = t["prompt"], t["output"]
        out.append((float(t[key]), s, o, str(t.get("label", type_label(s, o)))))
    if mix is not None:
        if base_rate is None and rate is None:
            raise InputError("'mix' needs a total 'rate' (req/s)", field="rate")
        total = float(rate if rate is not None else base_rate)
        shares = np.array([t[0] for t in out])
        if np.any(shares <= 0):
            raise InputError("mix shares must be positive", field="mix")
        shares = shares / shares.sum()
        return [(total * float(sh), s, o, lb) for sh, (_, s, o, lb) in zip(shares, out)]
    if base_rate is not None:
        raise InputError("'rate' goes with 'mix'; with 'types' give the rate of each type", field="rate")
    if rate is not None:
        total = sum(t[0] for t in out)
        return [(t[0] * rate / total, t[1], t[2], t[3]) for t in out]
    return out


# ---------------------------------------------------------------------- [VAR] adversarial
def adversarial_fcfs_sf(
    capacity: int, *, n_fat: int | None = None, n_thin: int | None = None
) -> tuple[Workload, int]:
    """An instance on which FCFS and shortest-first lose a factor growing like √C.

    [VAR] (arXiv 2508.06133) prove that FCFS and shortest-first (SF, which includes
    MC-SF) have competitive ratios growing with the KV capacity C when prompts differ;
    our spec does not give their instance, so this is the project's construction of
    that effect (unit-time model, all requests at round 0, no randomness):

    - ``n_fat`` *fat* requests, prompt C − 1 and output 1 (peak footprint C: each needs
      the whole cache for its one round, so no other request can run beside it), ids
      0 … n_fat − 1, type ``fat``;
    - ``n_thin`` *thin* requests, prompt 1 and output 2 (peak 3, so ⌊C/3⌋ of them run
      together), the following ids, type ``thin``.

    FCFS serves in id order and SF in output order, so both run the fats one after the
    other first, and every thin request waits n_fat rounds: Σ c ≥ n_thin·n_fat. Serving
    the thins first in batches of ⌊C/3⌋ costs about n_thin·(3·n_thin/C + 1) for the
    thins plus n_fat·(6·n_thin/C + n_fat/2) for the fats. With the defaults
    n_thin = C and n_fat = ⌈√C⌉ the first is ≈ C^{3/2} and the second O(C), so the
    ratio grows like √C. Sorted-F's batch quality F = Σo/|X|² is 1 for a fat alone
    and 2/k for k thins, so it runs the thins first.

    Parameters
    ----------
    capacity
        KV capacity C in tokens, ≥ 4 (so that a thin request, peak 3, fits and a fat
        one has a prompt ≥ 3).
    n_fat, n_thin
        Numbers of fat and thin requests (defaults ⌈√C⌉ and C).

    Returns
    -------
    (Workload, int)
        Requests at arrival 0 (fats first by id) and C, also in
        ``workload.meta["capacity"]`` with ``generator``, ``n_fat``, ``n_thin`` and
        ``time_model = "unit"``.
    """
    if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 4:
        raise InputError(f"capacity must be an integer ≥ 4 (got {capacity!r})", field="capacity")
    cap = int(capacity)
    fat = math.isqrt(cap - 1) + 1 if n_fat is None else n_fat  # ⌈√C⌉ for C ≥ 2
    thin = cap if n_thin is None else n_thin
    for what, v in (("n_fat", fat), ("n_thin", thin)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise InputError(f"{what} must be a non-negative integer (got {v!r})", field=what)
    if fat + thin < 1:
        raise InputError("the instance needs at least one request", field="n_fat")
    fat, thin = int(fat), int(thin)
    frame = pd.DataFrame(
        {
            "arrival": np.zeros(fat + thin),
            "prompt": np.r_[np.full(fat, cap - 1), np.ones(thin)].astype(np.int64),
            "output": np.r_[np.ones(fat), np.full(thin, 2)].astype(np.int64),
            "type": np.r_[np.full(fat, "fat", dtype=object), np.full(thin, "thin", dtype=object)],
        }
    )
    meta = {"generator": "adversarial-fcfs-sf", "capacity": cap, "n_fat": fat, "n_thin": thin, "time_model": "unit"}
    name = "adversarial-fcfs-sf"
    return Workload.from_frame(frame, name=name, source=f"{name} C={cap}", meta=meta), cap
