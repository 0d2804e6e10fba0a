"""Mean-busy-time lower bound on Σ c_i (unit-time model, rounds).

Idea (Goemans' mean busy times for one machine with release dates, applied to KV
memory as a resource of rate C): measure each request by the memory-weighted mean of
the rounds in which it holds memory, bound the sum of those means with a one-machine
relaxation, and convert back to completion times exactly, because the shape of a
request's memory use (its ramp s_i + 1, …, s_i + o_i) is known.

Proof sketch
------------
Take any feasible schedule: request i starts at t_i ≥ a_i and holds m_i(r) = s_i + r − t_i
tokens in rounds r = t_i + 1 … t_i + o_i (every executor schedule reduces to one of these
with the same Σ c_i, spec ``completion-time.md`` §1), and Σ_i m_i(r) ≤ C in every round.

1. *A one-machine schedule.* Read round r as the time interval (r − 1, r] and let the
   schedule "process" request i at rate m_i(r) during it. This is a schedule on one
   machine of speed C (the rates of all requests sum to ≤ C at every instant) in which
   request i receives V_i = Σ_j (s_i + j) units of work, none before its release a_i
   (processor sharing is allowed). Its mean busy time is
   M_i = (1/V_i) Σ_r (r − ½)·m_i(r) = t_i + μ_i − ½ with μ_i = Σ_j j(s_i + j)/V_i, so

       c_i = t_i + o_i = M_i + δ_i,   δ_i = o_i + ½ − μ_i   (exact, per request).

2. *Σ_i M_i is smallest under preemptive shortest-volume-first.* With W_i(τ) the work i
   has received by time τ, V_i·M_i = ∫ τ dW_i = ∫_0^∞ (V_i − W_i(τ)) dτ, and writing
   1/V_i = ∫_0^∞ [θ ≤ 1/V_i] dθ,

       Σ_i M_i = ∫_0^∞ ∫_0^∞ R_θ(τ) dτ dθ,   R_θ(τ) = Σ_{i : V_i ≤ 1/θ} (V_i − W_i(τ)),

   the work of the requests with volume ≤ 1/θ still left at τ. For a fixed set S, no
   schedule of rate ≤ C with releases a_i has done more work on S by time τ than one that
   serves S at full rate whenever some released S-work is left (from the last instant
   before τ at which that schedule had no S-work left, it has done all released S-work
   and then works at the largest rate). The preemptive schedule that always serves the
   released request of smallest V_i at rate C does this for every set
   {i : V_i ≤ 1/θ} at once, so it minimises every R_θ(τ) and hence Σ_i M_i.

3. So Σ_i c_i ≥ Σ_i M_i^{pSV} + Σ_i δ_i, and since Σ c_i is an integer, also ≥ its
   ceiling (:func:`mean_busy_time_bound`).

It differs from the memory-volume bound of ``fluidopt.bounds.tct`` (the same machine,
counting completions) by adding what the machine relaxation forgets: a request holds
memory for o_i rounds along its ramp, so its completion lies δ_i ≈ (o_i − 1)/2 (for
s_i ≫ o_i) after its mean busy time. Measured at trace scale in
``benchmarks/trace_bounds/README.md``.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from fluidopt.bounds.ramp import ramp_instance


def ramp_offsets(prompt: np.ndarray, output: np.ndarray) -> np.ndarray:
    """δ_i = o_i + ½ − μ_i, μ_i = Σ_j j(s_i + j)/V_i: completion minus mean busy time, rounds."""
    s = np.asarray(prompt, dtype=np.float64)
    o = np.asarray(output, dtype=np.float64)
    volume = o * s + o * (o + 1) / 2
    mu = (s * o * (o + 1) / 2 + o * (o + 1) * (2 * o + 1) / 6) / volume
    return o + 0.5 - mu


@dataclass(frozen=True)
class MachinePieces:
    """The preemptive shortest-volume-first schedule of the machine relaxation.

    Pieces are in time order and do not overlap: job ``job[k]`` is processed at full rate
    from ``begin[k]`` to ``end[k]`` (rounds).
    """

    job: np.ndarray
    begin: np.ndarray
    end: np.ndarray
    rate: float

    def mean_busy_times(self, volume: np.ndarray) -> np.ndarray:
        """M_i = (1/V_i)∫ τ dW_i(τ) per job (rounds)."""
        weighted = np.zeros(volume.shape[0])
        np.add.at(weighted, self.job, (self.end - self.begin) * self.rate * (self.begin + self.end) / 2)
        return weighted / volume

    @property
    def makespan(self) -> float:
        return float(self.end[-1]) if self.end.size else 0.0


def shortest_volume_first(release: np.ndarray, volume: np.ndarray, rate: float) -> MachinePieces:
    """Preemptive shortest-volume-first on one machine of speed ``rate``.

    Parameters
    ----------
    release
        Release times (rounds).
    volume
        Work of each job (token·rounds); also its priority (smaller first, ties by index).
    rate
        Machine speed (tokens per round, i.e. C).
    """
    rel = np.asarray(release, dtype=np.float64)
    size = np.asarray(volume, dtype=np.float64)
    n = rel.shape[0]
    order = np.argsort(rel, kind="stable")
    jobs: list[int] = []
    begins: list[float] = []
    ends: list[float] = []
    heap: list[tuple[float, int, float]] = []  # (volume, index, remaining work)
    t = 0.0
    k = 0
    while k < n or heap:
        if not heap:
            t = max(t, float(rel[order[k]]))
        while k < n and rel[order[k]] <= t:
            i = int(order[k])
            heapq.heappush(heap, (float(size[i]), i, float(size[i])))
            k += 1
        v, i, rem = heapq.heappop(heap)
        next_rel = float(rel[order[k]]) if k < n else np.inf
        run = min(rem / rate, next_rel - t)
        jobs.append(i)
        begins.append(t)
        ends.append(t + run)
        t += run
        if rem - run * rate > 1e-9 * v:  # (dropping a sliver of work only lowers the bound)
            heapq.heappush(heap, (v, i, rem - run * rate))
    return MachinePieces(np.asarray(jobs, dtype=np.int64), np.asarray(begins), np.asarray(ends), float(rate))


def mean_busy_time_bound(
    arrival: np.ndarray,
    prompt: np.ndarray,
    output: np.ndarray,
    capacity: int,
    *,
    time_limit: float | None = None,
) -> tuple[float, dict[str, Any]]:
    """Lower bound ⌈Σ_i M_i^{pSV} + Σ_i δ_i⌉ on the optimal Σ c_i (see module docstring).

    Parameters
    ----------
    arrival
        Arrival epochs a_i (rounds; fractional values are rounded up to the next epoch).
    prompt, output
        s_i, o_i (tokens).
    capacity
        KV capacity C, tokens.
    time_limit
        Accepted for a uniform interface; the bound takes O(n log n) and ignores it.

    Returns
    -------
    (bound, info)
        The bound on Σ c_i (rounds, an integer-valued float) and ``info`` with
        ``sum_mean_busy`` (Σ M_i), ``sum_offsets`` (Σ δ_i), ``makespan`` (end of the
        relaxed schedule, rounds) and ``seconds``.
    """
    started = time.perf_counter()
    inst = ramp_instance(arrival, prompt, output, capacity)
    if inst.n == 0:
        return 0.0, {"sum_mean_busy": 0.0, "sum_offsets": 0.0, "makespan": 0.0, "seconds": 0.0}
    volume = inst.volume
    pieces = shortest_volume_first(inst.arrival, volume, float(inst.capacity))
    busy = pieces.mean_busy_times(volume)
    offsets = ramp_offsets(inst.prompt, inst.output)
    value = float(busy.sum() + offsets.sum())
    # float64 sums of n terms: relative error far below 1e-12; keep a margin anyway
    bound = float(np.ceil(value - 1e-9 * max(1.0, abs(value))))
    makespan = pieces.makespan
    return bound, {
        "sum_mean_busy": float(busy.sum()),
        "sum_offsets": float(offsets.sum()),
        "makespan": makespan,
        "seconds": time.perf_counter() - started,
    }

