"""One factor at a time: what the reproduction notebooks vary to explain a difference.

A published number and ours can differ through the reading of an algorithm, the length
sample, or the time model (and with it the load the server is under). The notebooks
isolate each one by changing it alone; this module holds the pieces they share:

- :func:`sample_arrays` / :func:`fluid_limit`: the fluid benchmark of a length sample
  (one type per request, exact, no binning), so that two samples or two time models can
  be compared at the same *relative* load λ/λ*;
- :func:`truncate_lengths` and :func:`with_poisson_arrivals`: a sample cut at a maximum
  prompt, output or total length (dropped, as a length-filtered trace does, or clipped,
  as Vidur's trace loader does), given Poisson arrivals;
- :func:`fit_fluid_curve`: the two numbers (a, b) of the fluid memory curve
  M*(λ) = aλ / (1 − bλ) that a table of published (λ, M*) pairs implies;
- :func:`linear_kv_deployment`: a deployment with a paper's own linear-kv coefficients;
- :func:`with_engine_mechanics`: one deployment's time model under another's engine
  mechanics (caps, KV blocks, preemption).

Units: lengths in tokens, rates in requests/s, times in s, memory in KV tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fluidopt.bounds.fluid import FluidArrays, FluidType, max_stable_scale
from fluidopt.deployment import Deployment, TimeModel
from fluidopt.errors import InputError
from fluidopt.generators import arrival_times
from fluidopt.workload import Workload


def sample_arrays(prompt: np.ndarray, output: np.ndarray, deployment: Deployment) -> FluidArrays:
    """Fluid arrays with one type per request of the sample, total rate 1 request/s.

    Multiplying ``rate`` by λ gives the sample at total rate λ; the fluid quantities are
    then exact functions of the sample's mean volume and mean marginal work.
    """
    prompt, output = np.asarray(prompt), np.asarray(output)
    if prompt.shape != output.shape or prompt.size == 0:
        raise InputError("a length sample needs as many prompts as outputs, at least one")
    share = 1.0 / prompt.size
    return FluidArrays.build([FluidType(share, float(s), float(o)) for s, o in zip(prompt, output)], deployment)


def fluid_limit(prompt: np.ndarray, output: np.ndarray, deployment: Deployment) -> float:
    """The fluid stability limit λ* of a length sample on ``deployment`` (requests/s).

    The largest total rate with Σλu < 1 and M* ≤ C (``fluid-and-wait.md`` §1); a run at
    ρ·λ* is at relative load ρ.
    """
    return max_stable_scale(sample_arrays(prompt, output, deployment))


def truncate_lengths(
    prompt: np.ndarray,
    output: np.ndarray,
    *,
    max_prompt: int | None = None,
    max_output: int | None = None,
    max_total: int | None = None,
    mode: str = "filter",
) -> tuple[np.ndarray, np.ndarray]:
    """A length sample cut at maximum lengths (tokens).

    ``mode="filter"`` drops every request over a limit (a length-filtered trace, e.g.
    the [WAIT] authors' LMSYS files "input < 200, output < 500"); ``"clip"`` keeps every
    request and cuts it: prompt and output to their own limits, then a total above
    ``max_total`` is taken off both in proportion, as Vidur's trace loader does (each
    keeps ≥ 1 token). Order is kept.
    """
    s = np.asarray(prompt, dtype=np.int64).copy()
    o = np.asarray(output, dtype=np.int64).copy()
    if mode == "filter":
        keep = np.ones(s.size, dtype=bool)
        if max_prompt is not None:
            keep &= s <= max_prompt
        if max_output is not None:
            keep &= o <= max_output
        if max_total is not None:
            keep &= s + o <= max_total
        if not keep.any():
            raise InputError("every request of the sample exceeds the maximum lengths")
        return s[keep], o[keep]
    if mode != "clip":
        raise InputError(f"mode must be 'filter' or 'clip' (got {mode!r})", field="mode")
    if max_prompt is not None:
        s = np.minimum(s, max_prompt)
    if max_output is not None:
        o = np.minimum(o, max_output)
    if max_total is not None:
        over = np.maximum(s + o - max_total, 0)
        total = s + o
        s = np.maximum(s - np.ceil(over * s / total).astype(np.int64), 1)
        o = np.maximum(o - np.ceil(over * o / total).astype(np.int64), 1)
    return s, o


def with_poisson_arrivals(
    prompt: np.ndarray, output: np.ndarray, rate: float, seed: int, *, name: str = "sample"
) -> Workload:
    """The requests of a length sample, in order, arriving as a Poisson process of ``rate``.

    The gaps come from ``default_rng(seed)`` scaled by 1/rate, so samples of equal size
    and seed share their arrival pattern at every rate (only the time scale changes).
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    arrival = arrival_times(rng, rate=1.0, n=len(prompt)) / float(rate)
    frame = pd.DataFrame({"arrival": arrival, "prompt": prompt, "output": output})
    return Workload.from_frame(frame, name=name, source=f"{name} seed={seed} rate={rate:g}",
                               meta={"seed": int(seed), "rate": float(rate)})


def fit_fluid_curve(rates: Sequence[float], memory: Sequence[float]) -> tuple[float, float, float]:
    """(a, b, worst relative residual) of M*(λ) = aλ / (1 − bλ) through (λ, M*) pairs.

    The fluid closed form has exactly this shape: a = c0·E[V] (token·s) and b = E[u]
    (s), so 1/b is the load limit and λ/M* = 1/a − (b/a)·λ is a straight line, fitted
    by least squares. The residual says how well the pairs follow the fluid form.
    """
    lam = np.asarray(rates, dtype=np.float64)
    mem = np.asarray(memory, dtype=np.float64)
    if lam.size < 2 or lam.shape != mem.shape:
        raise InputError("need at least two (rate, memory) pairs")
    slope, intercept = np.polyfit(lam, lam / mem, 1)
    a = 1.0 / intercept
    b = -slope * a
    fitted = a * lam / (1.0 - b * lam)
    return float(a), float(b), float(np.max(np.abs(fitted / mem - 1.0)))


def crossing_rate(a: float, b: float, capacity: float) -> float:
    """The rate (requests/s) where aλ / (1 − bλ) reaches ``capacity`` tokens."""
    return float(capacity / (a + b * capacity))


#: the engine mechanics :func:`with_engine_mechanics` copies (``docs/engine-settings.md``)
ENGINE_MECHANICS = ("max_batch", "max_tokens", "block_size", "token_budget", "preemption", "victim")


def with_engine_mechanics(deployment: Deployment, source: Deployment) -> Deployment:
    """``deployment``'s time model and capacity under ``source``'s engine mechanics.

    Copies the batch and token caps, KV block size, token-budget rule, preemption and
    victim rule (:data:`ENGINE_MECHANICS`), so that a run changes the engine alone, e.g.
    our affine fit under the mechanics of Vidur's replica (``llama2-7b-a100-vidur``).
    """
    return deployment.with_settings(**{field: getattr(source, field) for field in ENGINE_MECHANICS})


def linear_kv_deployment(name: str, d0: float, d1: float, capacity: int) -> Deployment:
    """A deployment with [WAIT]'s iteration time τ = d0 + d1·ΣKV (s, s per KV token)."""
    return Deployment(name=name, capacity=int(capacity), time=TimeModel.linear_kv(d0, d1),
                      description=f"linear-kv d0 = {d0 * 1e3:g} ms, d1 = {d1 * 1e3:g} ms per KV token")


__all__ = [
    "ENGINE_MECHANICS",
    "crossing_rate",
    "fit_fluid_curve",
    "fluid_limit",
    "linear_kv_deployment",
    "sample_arrays",
    "truncate_lengths",
    "with_engine_mechanics",
    "with_poisson_arrivals",
]
