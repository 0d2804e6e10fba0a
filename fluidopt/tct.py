"""The completion-time side under its former name: re-exports of :mod:`fluidopt.completion`.

New code imports from the modules of :mod:`fluidopt.completion` directly.
"""

from __future__ import annotations

from fluidopt.bounds.time_indexed import lp_relaxation
from fluidopt.completion.heuristics import (
    best_heuristic,
    chronological_schedule,
    executor_schedules,
    heuristic_schedules,
    insertion_schedule,
)
from fluidopt.completion.instance import instance_arrays, memory_profile, schedule_problems, serial_horizon
from fluidopt.completion.solve import BACKENDS, TctSolution, export_model, solve_tct
from fluidopt.completion.windows import HORIZON_RULES, Prepared, prepare

__all__ = [
    "BACKENDS",
    "HORIZON_RULES",
    "Prepared",
    "TctSolution",
    "best_heuristic",
    "chronological_schedule",
    "executor_schedules",
    "export_model",
    "heuristic_schedules",
    "insertion_schedule",
    "instance_arrays",
    "lp_relaxation",
    "memory_profile",
    "prepare",
    "schedule_problems",
    "serial_horizon",
    "solve_tct",
]
