"""Large-neighbourhood search (LNS) over start times: better schedules from a feasible one.

Unit-time model; times in rounds. Start from a feasible schedule (the best heuristic:
MC-SF, H-SF, Sorted-F, greedy insertion). Repeatedly free a *neighbourhood* of requests,
keep every other request at its start epoch, and let CP-SAT re-place the freed ones
optimally (or as well as it can within a short limit) in the cumulative model of
``fluidopt.models.tct_cpsat``; keep the result when Σ c_i went down. Every schedule the
search keeps is feasible for the full model (the other requests are fixed inside it), so
the best one is a valid upper bound; the solve driver still replays it through the
executor.

Neighbourhoods, taken in turn:

- **window**: the requests whose runs meet a random window of rounds — they are the
  ones that compete for the same memory;
- **sequence**: requests consecutive in completion order — where a different order
  pays off;
- **random**: a random subset — to leave local optima of the other two.

The neighbourhood size adapts: it grows after a sub-problem is solved to optimality
within its limit and shrinks after one that is not. The search stops early after
``patience`` sub-problems in a row without an improvement (it has settled; the exact
search gets the time left; by default max(10, n/2)), or when a neighbourhood that frees *every* request has no
schedule better than the best one: that proves the best one optimal.

This module runs inside the CP-SAT worker process (``fluidopt.cpsat_worker``), so it
imports OR-Tools and nothing that loads HiGHS.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Neighbourhood kinds, in the order they are tried.
NEIGHBOURHOODS = ("window", "sequence", "random")


@dataclass
class LnsStats:
    """What the search did.

    Attributes
    ----------
    iterations
        Sub-problems solved.
    improvements
        Sub-problems that lowered Σ c.
    start_tct, best_tct
        Σ c of the starting schedule and of the best one, rounds.
    by_kind
        Improvements per neighbourhood kind.
    seconds
        Wall-clock time spent, s.
    stopped
        Why the search ended: ``time``, ``settled`` (``patience`` sub-problems without an
        improvement), ``optimal`` (proven) or ``interrupted``.
    """

    iterations: int = 0
    improvements: int = 0
    start_tct: float = 0.0
    best_tct: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    stopped: str = "time"

    def to_dict(self) -> dict[str, Any]:
        return {
            "iterations": self.iterations,
            "improvements": self.improvements,
            "start_tct": self.start_tct,
            "best_tct": self.best_tct,
            "by_kind": dict(self.by_kind),
            "seconds": self.seconds,
            "stopped": self.stopped,
        }


def default_patience(n: int) -> int:
    """Sub-problems in a row without an improvement after which the search has settled:
    max(10, n/2) — small instances settle fast and leave their time to the exact search,
    which can prove them; large ones keep improving longer."""
    return max(10, n // 2)


def neighbourhood(kind: str, starts: np.ndarray, output: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of the requests freed by one neighbourhood of ``kind`` (at most ``size``).

    Parameters
    ----------
    kind
        One of :data:`NEIGHBOURHOODS`.
    starts, output
        Current start epochs and outputs o_i (rounds).
    size
        Largest number of requests to free.
    rng
        Random source.
    """
    n = starts.shape[0]
    size = max(1, min(int(size), n))
    completion = starts + output
    if kind == "random" or n <= size:
        return np.sort(rng.choice(n, size=size, replace=False))
    if kind == "sequence":
        order = np.lexsort((np.arange(n), completion))
        first = int(rng.integers(0, n - size + 1))
        return np.sort(order[first : first + size])
    if kind == "window":
        # grow a window of rounds around a random request's completion until it meets `size` runs
        centre = int(completion[int(rng.integers(0, n))])
        lo = hi = centre
        chosen = np.zeros(0, dtype=np.int64)
        span = int(completion.max()) + 1
        while True:
            meets = np.flatnonzero((starts < hi) & (completion >= lo))
            if meets.shape[0] > size:
                break
            chosen = meets
            if lo <= 0 and hi >= span:
                break
            lo, hi = lo - 1, hi + 1
        if chosen.shape[0] == 0:
            return np.sort(rng.choice(n, size=size, replace=False))
        return np.sort(chosen)
    raise ValueError(f"unknown neighbourhood kind {kind!r}")


def improve(
    inst: Any,
    starts: list[int] | np.ndarray,
    *,
    time_limit: float,
    seed: int = 0,
    size: int = 12,
    sub_limit: float = 1.0,
    patience: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_improvement: Callable[[float, list[int]], None] | None = None,
) -> tuple[list[int], LnsStats]:
    """Improve a feasible schedule of a :class:`~fluidopt.models.tct_cpsat.CpsatInstance`.

    Parameters
    ----------
    inst
        The instance (its windows ``est``/``lst`` are respected; its objective bounds
        and hint are not used).
    starts
        Start epochs of a feasible schedule within the windows.
    time_limit
        Wall-clock budget, s.
    seed
        Seed of the neighbourhood choice and of CP-SAT.
    size
        Initial neighbourhood size (requests).
    sub_limit
        Time limit of one sub-problem, s.
    patience
        Stop after this many sub-problems in a row without an improvement (default
        :func:`default_patience` of the number of requests).
    should_stop
        Polled between sub-problems (Ctrl-C).
    on_improvement
        Called with (Σ c, starts) after every improvement.

    Returns
    -------
    (list[int], LnsStats)
        The best schedule found (at least as good as ``starts``) and what happened.
    """
    from ortools.sat.python import cp_model

    from fluidopt.models.tct_cpsat import build

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    out = np.asarray(inst.output, dtype=np.int64)
    best = np.asarray(starts, dtype=np.int64).copy()
    best_tct = float(np.sum(best + out))
    stats = LnsStats(start_tct=best_tct, best_tct=best_tct, by_kind={k: 0 for k in NEIGHBOURHOODS})
    plain = type(inst)(**{**inst.to_json(), "hint": None, "lower_bound": None, "upper_bound": None})
    model, S, objective = build(plain, symmetry=False)
    n = len(S)
    size = max(2, min(size, n))
    patience = default_patience(n) if patience is None else int(patience)
    step = 0
    idle = 0
    while True:
        if should_stop and should_stop():
            stats.stopped = "interrupted"
            break
        if time.perf_counter() - started >= time_limit:
            stats.stopped = "time"
            break
        if idle >= patience:
            stats.stopped = "settled"
            break
        kind = NEIGHBOURHOODS[step % len(NEIGHBOURHOODS)]
        step += 1
        free = neighbourhood(kind, best, out, size, rng)
        fixed = np.ones(n, dtype=bool)
        fixed[free] = False
        sub = model.clone()
        sub.clear_hints()
        sub_vars = [sub.get_int_var_from_proto_index(v.index) for v in S]
        for i in range(n):
            if fixed[i]:
                sub.add(sub_vars[i] == int(best[i]))
            sub.add_hint(sub_vars[i], int(best[i]))
        sub.add(sum(sub_vars) + int(out.sum()) <= int(best_tct) - 1)  # strictly better, Σ c is integer
        solver = cp_model.CpSolver()
        left = time_limit - (time.perf_counter() - started)
        solver.parameters.max_time_in_seconds = max(0.05, min(sub_limit, left))
        solver.parameters.num_workers = 1
        solver.parameters.random_seed = int(seed + step)
        solver.parameters.catch_sigint_signal = False  # Ctrl-C is the caller's (should_stop)
        code = solver.solve(sub)
        stats.iterations += 1
        if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            cand = np.array([solver.value(v) for v in sub_vars], dtype=np.int64)
            tct = float(np.sum(cand + out))
            if tct < best_tct:
                best, best_tct = cand, tct
                stats.improvements += 1
                stats.by_kind[kind] += 1
                idle = -1
                if on_improvement is not None:
                    on_improvement(best_tct, best.tolist())
        idle += 1
        if code == cp_model.INFEASIBLE and free.shape[0] == n:
            stats.stopped = "optimal"  # nothing fixed and nothing better: the best is optimal
            break
        # grow when the neighbourhood was settled (optimal or proven no better), shrink otherwise
        if code in (cp_model.OPTIMAL, cp_model.INFEASIBLE):
            size = min(n, size + 1)
        elif code == cp_model.UNKNOWN:
            size = max(2, size - 2)
    del objective
    stats.best_tct = best_tct
    stats.seconds = time.perf_counter() - started
    return best.tolist(), stats
