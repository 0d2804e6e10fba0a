"""Heuristic schedules of a completion-time instance (all feasible, contiguous runs).

They serve as incumbents: the upper bound that sets per-request deadlines
(:mod:`fluidopt.completion.windows`), the MIP start / CP-SAT hint, and the seed of the
improvement step (:mod:`fluidopt.completion.improve`). Unit-time model; rounds and KV
tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fluidopt.completion.instance import instance_arrays, schedule_problems, serial_horizon

if TYPE_CHECKING:
    from fluidopt.workload import Workload


class _Profile:
    """A memory profile being filled by greedy heuristics (rounds 0 … H)."""

    def __init__(self, horizon: int, capacity: int) -> None:
        self.load = np.zeros(horizon + 2, dtype=np.int64)
        self.C = capacity

    def fits(self, t: int, s: int, o: int) -> bool:
        seg = self.load[t + 1 : t + o + 1]
        return bool(np.all(seg + s + np.arange(1, o + 1) <= self.C))

    def earliest(self, t0: int, s: int, o: int) -> int:
        """Earliest start ≥ t0 whose ramp fits under the profile."""
        from numpy.lib.stride_tricks import sliding_window_view

        ramp = s + np.arange(1, o + 1)
        windows = sliding_window_view(self.load[t0 + 1 :], o)
        ok = np.all(windows + ramp <= self.C, axis=1)
        k = int(np.argmax(ok))
        if not ok[k]:
            raise RuntimeError("profile horizon too short")
        return t0 + k

    def add(self, t: int, s: int, o: int) -> None:
        self.load[t + 1 : t + o + 1] += s + np.arange(1, o + 1)


def chronological_schedule(workload: Workload, capacity: int, key: np.ndarray) -> np.ndarray:
    """MC-SF-style greedy with exact lengths: at each epoch admit waiting requests in
    ascending ``key`` while the future-memory check passes, stopping at the first that
    fails (key = o_i gives H-SF). Returns start epochs."""
    a, s, o = instance_arrays(workload)
    n = a.shape[0]
    prof = _Profile(serial_horizon(workload) + int(o.max()) + 1, capacity)
    starts = np.full(n, -1, dtype=np.int64)
    order = np.lexsort((np.arange(n), key))
    t = int(a.min())
    left = n
    while left:
        for i in order:
            if starts[i] >= 0 or a[i] > t:
                continue
            if not prof.fits(t, int(s[i]), int(o[i])):
                break
            prof.add(t, int(s[i]), int(o[i]))
            starts[i] = t
            left -= 1
        t += 1
    return starts


def insertion_schedule(workload: Workload, capacity: int, order: np.ndarray) -> np.ndarray:
    """Serial insertion: take requests in ``order`` and start each at the earliest epoch
    ≥ its arrival at which its ramp fits under the memory already placed."""
    a, s, o = instance_arrays(workload)
    prof = _Profile(serial_horizon(workload) + int(o.max()) + 1, capacity)
    starts = np.full(a.shape[0], -1, dtype=np.int64)
    for i in order:
        t = prof.earliest(int(a[i]), int(s[i]), int(o[i]))
        prof.add(t, int(s[i]), int(o[i]))
        starts[i] = t
    return starts


def heuristic_schedules(workload: Workload, capacity: int, *, executor: bool = True) -> dict[str, np.ndarray]:
    """Start epochs of every heuristic schedule we know, by name (all feasible).

    Internal greedies: ``greedy-o`` (= H-SF), ``greedy-volume``, ``greedy-peak`` and
    serial insertion in the same three orders (``insert-*``). With ``executor``, the
    executor's ``mc-sf``, ``h-sf``, ``svf`` and ``sorted-f`` runs (with exact lengths) when the
    executor and those policies exist.
    """
    a, s, o = instance_arrays(workload)
    n = a.shape[0]
    ids = np.arange(n)
    volume = o * s + o * (o + 1) // 2
    keys = {"o": o, "volume": volume, "peak": s + o}
    out: dict[str, np.ndarray] = {}
    for name, key in keys.items():
        out[f"greedy-{name}"] = chronological_schedule(workload, capacity, key)
        out[f"insert-{name}"] = insertion_schedule(workload, capacity, np.lexsort((ids, key)))
    if executor:
        out.update(executor_schedules(workload, capacity))
    return out


def executor_schedules(
    workload: Workload, capacity: int, policies: tuple[str, ...] = ("mc-sf", "h-sf", "svf", "sorted-f")
) -> dict[str, np.ndarray]:
    """Schedules of executor policies, as start epochs of each request's last run.

    Only eviction-free runs that finish every request are returned, and only when the
    executor and the policy exist (the executor is optional for the MIP). The last
    run of a request that was never paused is contiguous, so these are MIP-feasible.
    """
    out: dict[str, np.ndarray] = {}
    try:
        from fluidopt.deployment import unit_deployment
        from fluidopt.executor.engine import simulate
        from fluidopt.executor.policy import make_policy
    except ImportError:
        return out
    for name in policies:
        try:
            policy = make_policy(name)
            run = simulate(workload, unit_deployment(capacity), policy, capacity=capacity)
        except Exception:  # noqa: BLE001 — a policy that is missing or fails is just not used
            continue
        rec = run.records
        if not bool(np.all(rec["finished"])) or int(np.sum(rec["evictions"])) > 0:
            continue
        completion = rec.set_index("id").loc[workload.id, "completion"].to_numpy()
        starts = np.rint(completion).astype(np.int64) - np.asarray(workload.output, dtype=np.int64)
        if not schedule_problems(workload, capacity, starts):
            out[name] = starts
    return out


def best_heuristic(workload: Workload, capacity: int, *, executor: bool = True) -> tuple[str, np.ndarray, int]:
    """(name, start epochs, Σ c) of the best heuristic schedule."""
    _, _, o = instance_arrays(workload)
    scheds = heuristic_schedules(workload, capacity, executor=executor)
    scored = sorted((int(np.sum(st + o)), name) for name, st in scheds.items())
    tct, name = scored[0]
    return name, scheds[name], tct
