"""Lower bounds on the minimum total completion time Σ c_i (unit-time model, rounds).

One module per bound family, each with its proof: :mod:`fluidopt.bounds.volume`
(trivial and memory-volume bounds), :mod:`fluidopt.bounds.time_indexed` (the LP
relaxation, with the peak rows of :mod:`fluidopt.bounds.peaks`),
:mod:`fluidopt.bounds.mean_busy_time` and :mod:`fluidopt.bounds.lagrangian` (the two that
run at trace scale). This module gathers them for one instance (:func:`lower_bounds`) and
keeps the names importable from their former home.

Measured tightness (``benchmarks/kv_synthetic/README.md``).
"""

from __future__ import annotations

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


def lower_bounds(
    workload: Workload,
    capacity: int,
    *,
    lp: bool = True,
    lagrangian: bool = True,
    time_limit: float | None = None,
) -> dict[str, Any]:
    """Every bound family for one instance (rounds, on Σ c_i), plus the best of them.

    Parameters
    ----------
    lp
        Compute the LP relaxation with peak rows — only where the time-indexed program
        can be built (:func:`fluidopt.completion.at_scale.exact_size` within
        :data:`~fluidopt.completion.at_scale.EXACT_SIZE_LIMIT`; otherwise ``None``).
    lagrangian
        Compute the Lagrangian bound (its price search stops at ``time_limit``, 30 s
        when none is given).
    time_limit
        Seconds for the LP, and for the Lagrangian price search.
    """
    from fluidopt.bounds.lagrangian import lagrangian_bound
    from fluidopt.bounds.mean_busy_time import mean_busy_time_bound
    from fluidopt.completion.at_scale import EXACT_SIZE_LIMIT, exact_size
    from fluidopt.completion.instance import instance_arrays

    a, s, o = instance_arrays(workload)
    out: dict[str, Any] = {
        "trivial": trivial_bound(workload),
        "volume": volume_bound(workload, capacity),
        "mean_busy_time": mean_busy_time_bound(a, s, o, capacity)[0],
    }
    if lp:
        out["lp"] = (lp_bound(workload, capacity, time_limit=time_limit)["bound"]
                     if exact_size(workload) <= EXACT_SIZE_LIMIT else None)
    if lagrangian:
        out["lagrangian"] = lagrangian_bound(a, s, o, capacity, time_limit=30.0 if time_limit is None else time_limit)[0]
    out["best"] = max(v for v in out.values() if v is not None)
    return out
