"""Closed-form lower bounds on the minimum total completion time Σ c_i (unit-time model,
rounds): the trivial bound and the memory-volume bound.

Spec ``completion-time.md`` §1. Both are ≤ the optimum of the time-indexed program
(``fluidopt.models.tct_mip``) and therefore ≤ the Σ c_i of every policy run in the
executor (see that module for why the program bounds every policy).

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
  trivial bound. It costs O(n log n) and runs on any number of requests.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from fluidopt.completion.instance import instance_arrays

if TYPE_CHECKING:
    from fluidopt.workload import Workload


def trivial_bound(workload: Workload) -> float:
    """Σ (a_i + o_i), rounds (arrivals rounded up to the next decision epoch)."""
    a, _, o = instance_arrays(workload)
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
    a, s, o = instance_arrays(workload)
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
