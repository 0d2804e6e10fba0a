"""Lower bounds on the minimum total completion time Σ c_i (unit-time model, rounds).

One module per bound family, each with its proof: :mod:`fluidopt.bounds.volume`
(trivial and memory-volume bounds), :mod:`fluidopt.bounds.time_indexed` (the LP
relaxation, with the peak rows of :mod:`fluidopt.bounds.peaks`),
:mod:`fluidopt.bounds.paths` (the path relaxation), :mod:`fluidopt.bounds.mean_busy_time`
and :mod:`fluidopt.bounds.lagrangian` (the two that run at trace scale). This module gathers them for one instance (:func:`lower_bounds`) and
keeps the names importable from their former home.

Measured tightness (``benchmarks/kv_synthetic/README.md``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
    workload: Workload,
    capacity: int,
    *,
    lp: bool = True,
    paths: bool = True,
    lagrangian: bool = True,
    time_limit: float | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> dict[str, Any]:
    """Every bound family for one instance (rounds, on Σ c_i), plus the best of them.

    Parameters
    ----------
    lp
        Compute the LP relaxation with peak rows over the windows of the best heuristic
        schedule — only where the time-indexed program can be built
        (:func:`fluidopt.completion.at_scale.exact_size` within
        :data:`~fluidopt.completion.at_scale.EXACT_SIZE_LIMIT`; otherwise ``None``).
    paths
        With ``lp``: also the path relaxation's bound, started from the LP's duals
        (``None`` where its pricing table would not fit; ``paths_status`` says why).
    lagrangian
        Compute the Lagrangian bound (its price search stops at ``time_limit``, 30 s
        when none is given).
    time_limit
        Seconds for the LP and the path bound together (default: the LP without a limit,
        then :data:`PATHS_SECONDS` for the path bound), and for the Lagrangian price search.
    progress
        Called with (the bound being computed, the best bound so far) as each starts and
        whenever the path bound improves.

    Ctrl-C ends the bound being computed with what it has (the LP with none) and skips
    the ones after it.
    """
    import time

    from fluidopt.bounds.lagrangian import lagrangian_bound
    from fluidopt.bounds.mean_busy_time import mean_busy_time_bound
    from fluidopt.bounds.paths import path_bound
    from fluidopt.bounds.time_indexed import lp_solution
    from fluidopt.completion.at_scale import EXACT_SIZE_LIMIT, exact_size
    from fluidopt.completion.instance import instance_arrays
    from fluidopt.completion.windows import prepare
    from fluidopt.models.tct_mip import build_arrays

    a, s, o = instance_arrays(workload)
    out: dict[str, Any] = {
        "trivial": trivial_bound(workload),
        "volume": volume_bound(workload, capacity),
        "mean_busy_time": mean_busy_time_bound(a, s, o, capacity)[0],
    }

    def best() -> float:
        return max(v for k, v in out.items() if v is not None and k != "paths_status")

    def stage(name: str, bound: float | None = None) -> None:
        if progress is not None:
            progress(name, best() if bound is None else max(bound, best()))

    stopped = False  # by Ctrl-C
    if lp and exact_size(workload) <= EXACT_SIZE_LIMIT:
        started = time.perf_counter()
        stage("lp")
        prep = prepare(workload, capacity, horizon="incumbent")
        arrays = build_arrays(prep.data)  # one build for the LP and the path relaxation
        solution = lp_solution(prep.data, time_limit, arrays)
        out["lp"] = None if solution.value is None else float(math.ceil(solution.value - 1e-6))
        stopped = solution.status == "interrupted"
        if paths and not stopped:
            stage("paths")
            left = PATHS_SECONDS if time_limit is None else time_limit - (time.perf_counter() - started)
            result = path_bound(prep.data, time_limit=left, lp=solution, schedules=[prep.incumbent],
                                upper_bound=prep.upper_bound, progress=lambda b: stage("paths", b),
                                arrays=arrays)
            out["paths"], out["paths_status"] = result.bound, result.status
            stopped = result.status == "interrupted"
    elif lp:
        out["lp"] = None
    if lagrangian and not stopped:
        stage("lagrangian")
        out["lagrangian"] = lagrangian_bound(a, s, o, capacity, time_limit=30.0 if time_limit is None else time_limit)[0]
    out["best"] = best()
    return out
