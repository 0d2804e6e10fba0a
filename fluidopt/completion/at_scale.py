"""Certified gaps where the exact programs cannot be built: real traces in unit time.

The time-indexed program has one column per request and start epoch, each with o_i
memory entries; on a trace (thousands of requests, outputs of hundreds of tokens, C in
the hundred thousands) that is billions of non-zeros, and the heuristics that set its
windows scan the whole serial horizon. This route never builds it. Its stages mirror the
exact driver's (:mod:`fluidopt.completion.solve`):

1. **prepare** — integer arrival epochs, and the executor's MC-SF, H-SF, SVF and Sorted-F runs
   as incumbents (every policy run is a schedule; only eviction-free ones are kept as
   start vectors, since their last runs are contiguous);
2. **bound** — the memory-volume bound, the mean-busy-time bound and the Lagrangian
   relaxation of the memory rows (:mod:`fluidopt.bounds.lagrangian`, which reaches the
   time-indexed LP's value without building it), in a share of the time;
3. **improve** — list schedules in orders drawn from the Lagrangian prices, improved by
   local search for the time left (:mod:`fluidopt.search.lagrangian_heuristic`);
4. **certify** — best schedule, best bound, gap; then **replay** through the executor.

Measured (``benchmarks/trace_bounds/README.md``): azure-conv, 2,000 requests,
C = 118,784, 10 minutes: certified gaps 0.8% (all at 0) and 2.5% (arrivals scaled to keep
the memory busy) on total latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fluidopt.completion.solve import TctSolution
    from fluidopt.workload import Workload

#: Executor policies whose runs seed the schedule side.
INCUMBENT_POLICIES = ("mc-sf", "h-sf", "svf", "sorted-f")

#: Largest n · Σ o_i · mean(o_i) (an upper estimate of the time-indexed program's memory
#: non-zeros under the serial horizon) for which ``solve_tct(method="auto")`` builds the
#: exact programs; above it, this route. [KV] instances (n ≤ 60, C ≤ 50) are ≤ ~2·10⁶;
#: 200 requests of a real trace are ~3·10⁹.
EXACT_SIZE_LIMIT = 2.0e7


def exact_size(workload: Workload) -> float:
    """n · Σ o_i · mean(o_i): how large the time-indexed program would be (non-zeros,
    an upper estimate)."""
    o = np.asarray(workload.output, dtype=np.float64)
    return float(o.shape[0] * o.sum() * (o.mean() if o.shape[0] else 0.0))


def policy_incumbents(workload: Workload, capacity: int) -> dict[str, dict[str, Any]]:
    """Σ c of each incumbent policy run and, when it evicted nothing, its start epochs."""
    from fluidopt.deployment import unit_deployment
    from fluidopt.executor.engine import simulate
    from fluidopt.executor.policy import make_policy

    out: dict[str, dict[str, Any]] = {}
    for name in INCUMBENT_POLICIES:
        run = simulate(workload, unit_deployment(capacity), make_policy(name), capacity=capacity)
        rec = run.records.set_index("id").loc[workload.id]
        if not bool(rec["finished"].all()):
            continue
        evictions = int(rec["evictions"].sum())
        starts = np.rint(rec["completion"].to_numpy()).astype(np.int64) - np.asarray(workload.output, dtype=np.int64)
        out[name] = {"tct": float(run.summary()["tct"]), "evictions": evictions,
                     "starts": starts if evictions == 0 else None}
    return out


def solve_at_scale(
    workload: Workload,
    capacity: int,
    *,
    time_limit: float = 60.0,
    bound_share: float = 0.5,
    seed: int = 0,
    progress: Callable[[str, float, float | None, float | None], None] | None = None,
    check: bool = True,
) -> TctSolution:
    """Best schedule, best bound and gap of a large unit-time instance (rounds).

    Parameters
    ----------
    workload, capacity
        The instance; arrivals are read as rounds (rounded up to epochs); C in tokens.
    time_limit
        Wall-clock budget of the bound and improve stages, s.
    bound_share
        Share of the budget for the Lagrangian price search; the schedules get the rest.
    seed
        Seed of the local search.
    progress
        Called with (stage, elapsed s, best Σ c, best bound) as they improve.
    check
        Replay the schedule through the executor (``info["check"]``).

    Returns
    -------
    TctSolution
        As :func:`fluidopt.completion.solve.solve_tct`; ``info["method"]`` is
        ``"lagrangian"`` and ``info["bounds"]`` holds every bound computed. Ctrl-C in
        the price search or the local search ends that stage with what it has (status
        ``interrupted``, the bracket still certified).
    """
    from fluidopt.bounds.lagrangian import lagrangian_bound
    from fluidopt.bounds.mean_busy_time import mean_busy_time_bound
    from fluidopt.bounds.volume import volume_bound_arrays
    from fluidopt.completion.instance import instance_arrays
    from fluidopt.completion.solve import TctSolution, _Tracker, replay
    from fluidopt.search.lagrangian_heuristic import lagrangian_schedule

    started = time.perf_counter()
    tracker = _Tracker(progress, started)
    workload.check_capacity(int(capacity))
    a, s, o = instance_arrays(workload)
    incumbents = policy_incumbents(workload, capacity)
    best_policy = min(incumbents.items(), key=lambda kv: kv[1]["tct"], default=(None, None))
    tracker("prepare", None if best_policy[1] is None else best_policy[1]["tct"])
    budget_from = time.perf_counter()
    bounds = {"trivial": float(np.sum(a + o)), "volume": volume_bound_arrays(a, s, o, capacity)}
    bounds["mean_busy_time"], _ = mean_busy_time_bound(a, s, o, capacity)
    tracker("bound", bound=max(bounds.values()))
    value, lag = lagrangian_bound(a, s, o, capacity, time_limit=max(0.0, bound_share * time_limit))
    bounds["lagrangian"] = value
    tracker(bound=value)
    # after Ctrl-C only the orders at hand are scheduled, without the local search
    bound_interrupted = lag["stopped"] == "interrupted"
    left = 0.0 if bound_interrupted else time_limit - (time.perf_counter() - budget_from)
    tracker("improve")
    seeds = {name: r["starts"] for name, r in incumbents.items() if r["starts"] is not None}
    starts, sched = lagrangian_schedule(a, s, o, capacity, lag["prices"], time_limit=max(0.0, left),
                                        incumbents=seeds, seed=seed)
    interrupted = bound_interrupted or bool((sched.get("search") or {}).get("interrupted"))
    objective = float(np.sum(starts + o))
    source = sched["source"]
    # a policy run that evicted has no contiguous start vector here, but it still bounds OPT
    for name, r in incumbents.items():
        if r["starts"] is None and r["tct"] < objective:
            source = f"{source} (below: {name} with evictions, Σ c {r['tct']:g})"
    bound_source = max(bounds, key=lambda k: bounds[k])
    bound = min(float(bounds[bound_source]), objective)
    status = "optimal" if bound >= objective - 0.5 else ("interrupted" if interrupted else "time_limit")
    gap = 0.0 if status == "optimal" else (objective - bound) / objective
    info = {
        "method": "lagrangian",
        "backend": "lagrangian",
        "bounds": bounds,
        "bound_source": bound_source,
        "solution_source": source,
        "incumbent_tct": None if best_policy[1] is None else best_policy[1]["tct"],
        "incumbent_source": best_policy[0],
        "policy_tct": {k: v["tct"] for k, v in incumbents.items()},
        "lagrangian_seconds": lag["seconds"],
        "lagrangian_stopped": lag["stopped"],
        "improve": {"seconds": sched["seconds"], **{k: v for k, v in (sched.get("search") or {}).items()
                                                    if isinstance(v, (int, float, str))}},
        "volume_bound": bounds["volume"],
        "lp_bound": None,
        "solver_status": "none",
    }
    solution = TctSolution(status, objective, float(np.ceil(bound - 1e-6)), gap, starts,
                           time.perf_counter() - started, len(workload), info)
    tracker("done", objective, solution.best_bound)
    if check:
        result = replay(workload, capacity, solution)
        solution.info["check"] = None if result is None else result.to_dict()
    return solution
