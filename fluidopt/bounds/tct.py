"""Lower bounds on the minimum total completion time Σ c_i (unit-time model, rounds).

Spec ``completion-time.md`` §1. Every bound here is ≤ the optimum of the time-indexed MIP
(``fluidopt.models.tct_mip``), and therefore ≤ the Σ c_i of every policy run in the
executor (see that module for why the MIP bounds every policy).

- :func:`trivial_bound` — Σ (a_i + o_i): a request started at an epoch ≥ a_i needs o_i
  rounds.
- :func:`volume_bound` — the memory-volume bound. KV memory is a resource of C
  token·rounds per round and request i consumes exactly V_i = o_i·s_i + o_i(o_i+1)/2 of
  it, all inside rounds a_i+1 … c_i. Relax to one machine of speed C on which job i has
  size V_i and release a_i, preemption allowed: SRPT (shortest remaining processing
  time) leaves the fewest unfinished jobs at every instant (Schrage 1968), so the k-th
  SRPT completion time is ≤ the k-th smallest c_i of every feasible schedule. The
  c_i are integers, so the k-th smallest is also ≥ ⌈SRPT_(k)⌉, and it is ≥ the k-th
  smallest a_i + o_i. The bound is Σ_k max(⌈SRPT_(k)⌉, (a+o)_(k)) and dominates the
  trivial bound.
- :func:`lp_bound` — the LP relaxation of the MIP over valid start windows (deadlines
  from an incumbent, which cut off no optimal schedule, so the relaxation of the
  restricted program still bounds the optimum).

Measured tightness (``benchmarks/kv_synthetic/README.md``): on 16 closed [KV] instances
with 8 requests, bound/optimum averages 0.59 (trivial), 0.72 (volume), 0.875 (LP); at
40–60 requests, against the best schedule found, 0.18, 0.65 and 0.68.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fluidopt.workload import Workload


def _arrays(workload: Workload) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.ceil(np.asarray(workload.arrival, dtype=np.float64)).astype(np.int64),
        np.asarray(workload.prompt, dtype=np.int64),
        np.asarray(workload.output, dtype=np.int64),
    )


def trivial_bound(workload: Workload) -> float:
    """Σ (a_i + o_i), rounds (arrivals rounded up to the next decision epoch)."""
    a, _, o = _arrays(workload)
    return float(np.sum(a + o))


def srpt_completions(release: np.ndarray, size: np.ndarray, rate: float) -> np.ndarray:
    """Completion times of preemptive SRPT on one machine (sorted ascending).

    Parameters
    ----------
    release
        Release times (rounds).
    size
        Job sizes (token·rounds).
    rate
        Machine speed (tokens per round, i.e. C).

    Returns
    -------
    numpy.ndarray
        The n completion times in ascending order (rounds, fractional).
    """
    import heapq

    order = np.argsort(release, kind="stable")
    rel = np.asarray(release, dtype=np.float64)[order]
    rem_sizes = np.asarray(size, dtype=np.float64)[order] / float(rate)
    n = rel.shape[0]
    out: list[float] = []
    heap: list[float] = []
    t = rel[0] if n else 0.0
    k = 0
    while k < n or heap:
        if not heap:
            t = max(t, rel[k])
        while k < n and rel[k] <= t:
            heapq.heappush(heap, rem_sizes[k])
            k += 1
        rem = heapq.heappop(heap)
        next_rel = rel[k] if k < n else math.inf
        if t + rem <= next_rel:
            t += rem
            out.append(t)
        else:
            heapq.heappush(heap, rem - (next_rel - t))
            t = next_rel
    return np.sort(np.asarray(out))


def volume_bound_arrays(
    arrival: np.ndarray, prompt: np.ndarray, output: np.ndarray, capacity: int
) -> float:
    """:func:`volume_bound` on raw arrays (arrivals already integer epochs)."""
    a = np.asarray(arrival, dtype=np.int64)
    s = np.asarray(prompt, dtype=np.float64)
    o = np.asarray(output, dtype=np.float64)
    if a.shape[0] == 0:
        return 0.0
    volume = o * s + o * (o + 1) / 2
    srpt = np.ceil(srpt_completions(a, volume, float(capacity)) - 1e-9)
    q = np.sort(a + o)
    return float(np.sum(np.maximum(srpt, q)))


def volume_bound(workload: Workload, capacity: int) -> float:
    """Memory-volume bound Σ_k max(⌈SRPT_(k)⌉, (a+o)_(k)), rounds (see module docstring)."""
    a, s, o = _arrays(workload)
    return volume_bound_arrays(a, s, o, capacity)


def volume_bound_without_each(
    arrival: np.ndarray, prompt: np.ndarray, output: np.ndarray, capacity: int
) -> np.ndarray:
    """For every i, the volume bound of the instance without request i (rounds).

    Used for per-request deadlines: removing a request only frees memory, so the other
    requests' part of any schedule is feasible for the smaller instance and their Σ c is
    at least this bound.
    """
    n = arrival.shape[0]
    out = np.empty(n)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        keep[i] = False
        out[i] = volume_bound_arrays(arrival[keep], prompt[keep], output[keep], capacity)
        keep[i] = True
    return out


def lp_bound(
    workload: Workload,
    capacity: int,
    *,
    upper_bound: float | None = None,
    time_limit: float | None = None,
) -> dict[str, Any]:
    """LP relaxation of the time-indexed MIP, rounds.

    Parameters
    ----------
    workload, capacity
        The instance; C in KV tokens.
    upper_bound
        Σ c of a known feasible schedule, used for per-request deadlines (default: the
        best heuristic schedule of ``fluidopt.tct``).
    time_limit
        Seconds for the LP solve.

    Returns
    -------
    dict
        ``bound`` (the LP optimum rounded up to an integer, since Σ c_i is integer;
        ``None`` if the LP did not finish), ``lp_value`` (unrounded), ``seconds``,
        ``n_cols``, ``n_rows``.
    """
    from fluidopt.models import tct_mip
    from fluidopt.solver import SolveOptions, highs_model, solve
    from fluidopt.tct import prepare

    prep = prepare(workload, capacity, horizon="incumbent", upper_bound=upper_bound)
    arrays = tct_mip.build_arrays(prep.data)
    res = solve(highs_model(arrays, relax=True), SolveOptions(time_limit=time_limit))
    value = res.objective if res.status == "optimal" else None
    return {
        "bound": None if value is None else float(math.ceil(value - 1e-6)),
        "lp_value": value,
        "seconds": res.seconds,
        "n_cols": arrays.shape[1],
        "n_rows": arrays.shape[0],
    }


def lower_bounds(workload: Workload, capacity: int, *, lp: bool = True, time_limit: float | None = None) -> dict[str, Any]:
    """All bounds of this module for one instance (rounds), plus the best of them."""
    out: dict[str, Any] = {
        "trivial": trivial_bound(workload),
        "volume": volume_bound(workload, capacity),
    }
    if lp:
        out["lp"] = lp_bound(workload, capacity, time_limit=time_limit)["bound"]
    out["best"] = max(v for v in out.values() if v is not None)
    return out
