"""A completion-time instance as arrays, and the feasibility of a schedule.

Unit-time model (spec ``system-model.md``, model 1; ``completion-time.md`` §1): a request
started at integer epoch t ≥ a_i holds s_i + j KV tokens at the end of round t + j and
completes at c_i = t + o_i. All times here are rounds, all memory KV tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fluidopt.workload import Workload


def instance_arrays(workload: Workload) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(earliest start epoch ⌈a_i⌉, s_i, o_i) as int64 arrays."""
    a = np.ceil(np.asarray(workload.arrival, dtype=np.float64)).astype(np.int64)
    return a, np.asarray(workload.prompt, dtype=np.int64), np.asarray(workload.output, dtype=np.int64)


def serial_horizon(workload: Workload) -> int:
    """max ⌈a_i⌉ + Σ o_i: no optimal schedule ends later (rounds; see
    :mod:`fluidopt.completion.windows`)."""
    a, _, o = instance_arrays(workload)
    return int(a.max() + o.sum())


def memory_profile(workload: Workload, starts: np.ndarray) -> np.ndarray:
    """KV tokens held at the end of every round 0 … max c_i under contiguous runs.

    Entry r is Σ over requests with t_i < r ≤ t_i + o_i of s_i + r − t_i (tokens).
    """
    a, s, o = instance_arrays(workload)
    t = np.asarray(starts, dtype=np.int64)
    load = np.zeros(int((t + o).max()) + 2, dtype=np.int64)
    for ti, si, oi in zip(t.tolist(), s.tolist(), o.tolist()):
        load[ti + 1 : ti + oi + 1] += si + np.arange(1, oi + 1)
    return load


def schedule_problems(workload: Workload, capacity: int, starts: np.ndarray) -> list[str]:
    """What is wrong with a schedule of contiguous runs (empty list: it is feasible)."""
    a, s, o = instance_arrays(workload)
    t = np.asarray(starts, dtype=np.int64)
    problems = []
    if t.shape != a.shape:
        return [f"{t.shape[0]} start epochs for {a.shape[0]} requests"]
    early = np.flatnonzero(t < a)
    if early.size:
        i = int(early[0])
        problems.append(f"request {workload.id[i]} starts at {t[i]} before its arrival {workload.arrival[i]}")
    load = memory_profile(workload, t)
    over = np.flatnonzero(load > capacity)
    if over.size:
        r = int(over[0])
        problems.append(f"round {r} holds {load[r]} KV tokens, more than C = {capacity}")
    return problems
