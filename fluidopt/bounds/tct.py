"""Lower bounds on the minimum total completion time Σ c_i (unit-time model, rounds).

One module per bound family, each with its proof: :mod:`fluidopt.bounds.volume`
(trivial and memory-volume bounds), :mod:`fluidopt.bounds.time_indexed` (the LP
relaxation), :mod:`fluidopt.bounds.paths` (the path relaxation). This module gathers them
for one instance (:func:`lower_bounds`) and keeps the names importable from their former
home.

Measured tightness (``benchmarks/kv_synthetic/README.md``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from fluidopt.bounds.time_indexed import lp_bound
from fluidopt.bounds.volume import (
    srpt_completions,
    trivial_bound,
    volume_bound,
    volume_bound_arrays,
    volume_bound_without_each,
)

if TYPE_CHECKING:
    from fluidopt.workload import Workload

__all__ = [
    "lower_bounds",
    "lp_bound",
    "srpt_completions",
    "trivial_bound",
    "volume_bound",
    "volume_bound_arrays",
    "volume_bound_without_each",
]


#: Budget of the path bound when no time limit is given, s.
PATHS_SECONDS = 60.0


def lower_bounds(
    workload: Workload, capacity: int, *, lp: bool = True, paths: bool = True, time_limit: float | None = None
) -> dict[str, Any]:
    """All bounds of this module for one instance (rounds), plus the best of them.

    Parameters
    ----------
    workload, capacity
        The instance; C in KV tokens.
    lp
        Solve the LP relaxation (over the windows of the best heuristic schedule).
    paths
        With ``lp``: also the path relaxation's bound, started from the LP's duals.
    time_limit
        Budget of the LP and the path bound together, s (default: the LP without a
        limit, then :data:`PATHS_SECONDS` for the path bound).
    """
    import time

    from fluidopt.bounds.paths import path_bound
    from fluidopt.bounds.time_indexed import lp_solution
    from fluidopt.completion.windows import prepare

    out: dict[str, Any] = {
        "trivial": trivial_bound(workload),
        "volume": volume_bound(workload, capacity),
    }
    if lp:
        started = time.perf_counter()
        prep = prepare(workload, capacity, horizon="incumbent")
        solution = lp_solution(prep.data, time_limit)
        out["lp"] = None if solution.value is None else float(math.ceil(solution.value - 1e-6))
        if paths:
            left = PATHS_SECONDS if time_limit is None else time_limit - (time.perf_counter() - started)
            result = path_bound(prep.data, time_limit=left, lp=solution, schedules=[prep.incumbent],
                                upper_bound=prep.upper_bound)
            out["paths"], out["paths_status"] = result.bound, result.status
    out["best"] = max(v for k, v in out.items() if v is not None and k != "paths_status")
    return out
