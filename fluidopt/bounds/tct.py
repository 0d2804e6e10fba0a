"""Lower bounds on the minimum total completion time Σ c_i (unit-time model, rounds).

One module per bound family, each with its proof: :mod:`fluidopt.bounds.volume`
(trivial and memory-volume bounds), :mod:`fluidopt.bounds.time_indexed` (the LP
relaxation). This module gathers them for one instance (:func:`lower_bounds`) and keeps
the names importable from their former home.

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
