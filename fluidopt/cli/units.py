"""Units of the fields shown in tables, so that every number reads with its unit.

``{t}`` stands for the time unit (``s``, or ``rounds`` in the unit-time model) and
``{per}`` for its singular in rates (``s``, ``round``).
"""

from __future__ import annotations

import re

UNITS: dict[str, str] = {
    # workloads
    "n_requests": "requests",
    "duration_s": "s",
    "rate_per_s": "requests/s",
    "peak_footprint_max": "KV tokens",
    "n_types": "types",
    "capacity": "KV tokens",
    # executor summary
    "completed": "requests",
    "unfinished": "requests",
    "window_requests": "requests",
    "tct": "{t}, Σ over requests",
    "tel": "{t}, Σ over requests",
    "throughput_tokens_per_s": "output tokens/{per}",
    "requests_per_s": "requests/{per}",
    "evictions": "evictions",
    "wasted_tokens": "output tokens",
    "peak_kv": "KV tokens",
    "mean_kv_util": "fraction of C",
    "mean_waiting": "requests",
    "mean_in_system": "requests",
    "iterations": "iterations",
    "makespan": "{t}",
    "warmup": "fraction of requests",
    "cooldown": "fraction of requests",
    # fluid benchmark and LP
    "load": "fraction of the server's time (Σ λ·u)",
    "c0": "s per iteration (fixed part)",
    "delta_t": "s per iteration",
    "kv_in_use": "KV tokens",
    "throughput_requests_per_s": "requests/s",
    "max_stable_scale": "× the demand",
    "max_stable_rate": "requests/s",
    "objective": "value × output tokens/s",
    "capacity_token_price": "objective per KV token",
    "seconds": "s (wall clock)",
    # calibration and planning
    "pipeline_memory": "KV tokens",
    "latency_proxy": "s",
    "delta_t_cap": "s per iteration",
    "reserve": "KV tokens",
    "cost_per_hour": "cost/hour",
    "total_gpus": "GPUs",
    "count": "GPUs",
    "load_per_gpu": "fraction of the GPU's time",
    "kv_in_use_per_gpu": "KV tokens",
    "rate": "requests/s",
    "n_star": "requests per stage",
    "threshold": "requests per stage",
    "output_range": "tokens",
    # completion time (unit-time model: rounds)
    "trivial": "rounds, Σ over requests",
    "volume": "rounds, Σ over requests",
    "lp": "rounds, Σ over requests",
    "mean_busy_time": "rounds, Σ over requests",
    "paths": "rounds, Σ over requests",
    "lagrangian": "rounds, Σ over requests",
    "path_bound": "rounds, Σ over requests",
    "best": "rounds, Σ over requests",
    "objective_tct": "rounds, Σ over requests",
    "best_bound": "rounds, Σ over requests",
    "incumbent_tct": "rounds, Σ over requests",
    "volume_bound": "rounds, Σ over requests",
    "lp_bound": "rounds, Σ over requests",
    "solver_bound": "rounds, Σ over requests",
    "objective_latency": "rounds, Σ over requests",
    "bound_latency": "rounds, Σ over requests",
    "gap": "fraction of the best schedule",
    "gap_latency": "fraction of the best schedule's latency",
    "horizon": "rounds",
    "n_groups": "groups of identical requests",
    "n_peak_groups": "groups",
    "n_cols": "columns",
    "n_rows": "rows",
    "prepare_seconds": "s (wall clock)",
    "build_seconds": "s (wall clock)",
    "solve_seconds": "s (wall clock)",
    "lp_seconds": "s (wall clock)",
    "path_bound_seconds": "s (wall clock)",
    "cpsat_build_seconds": "s (wall clock)",
    "cpsat_wall_seconds": "s (wall clock)",
    "cpsat_n_intervals": "intervals",
    "cpsat_n_symmetry_rows": "constraints",
    # deployments
    "max_batch": "requests",
    "max_tokens": "tokens per iteration",
    "chunk_size": "tokens",
    "block_size": "tokens",
}

_PATTERNS = (
    (re.compile(r"(mean|p\d+)_(latency|ttft)"), "{t}"),
    (re.compile(r"(mean|p\d+)_tpot"), "{t} per output token"),
    (re.compile(r"(prompt|output)_(mean|median|p\d+|max)"), "tokens"),
)


def unit_of(field: str, time: str = "s") -> str:
    """The unit of ``field`` ("" if it has none), with ``time`` (``s`` or ``rounds``) as
    the time unit."""
    unit = UNITS.get(field)
    if unit is None:
        unit = next((u for pattern, u in _PATTERNS if pattern.fullmatch(field)), "")
    return unit.replace("{t}", time).replace("{per}", "round" if time == "rounds" else time)


def with_unit(field: str, time: str = "s") -> str:
    """A column header: ``delta_t (s per iteration)``."""
    unit = unit_of(field, time)
    return f"{field} ({unit})" if unit and unit != field else field
