"""Schedule checker: replay a unit-time schedule through the executor's accounting.

Every schedule the completion-time MIP returns is replayed with the ``fixed-schedule``
policy (``fluidopt.executor.policies.replay``) in the executor engine, which enforces
the KV capacity at the end of every round exactly as for online policies. The schedule
is accepted when the engine runs it without an eviction, finishes every request at
c_i = t_i + o_i, and reports the same Σ c_i. A second, independent check recomputes the
memory profile Σ_{i: t_i < r ≤ t_i + o_i} (s_i + r − t_i) of every round directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fluidopt.errors import FluidoptError, PolicyError

if TYPE_CHECKING:
    from fluidopt.workload import Workload


@dataclass
class CheckResult:
    """Outcome of :func:`check_schedule` (times in rounds).

    Attributes
    ----------
    accepted
        The executor ran the schedule unchanged, and the direct profile check agrees.
    tct_schedule
        Σ (t_i + o_i) claimed by the schedule.
    tct_executor
        Σ c_i reported by the executor (``None`` if the run failed).
    problems
        Human-readable reasons for a rejection.
    peak_kv
        Largest end-of-round KV use in the executor run, tokens.
    """

    accepted: bool
    tct_schedule: float
    tct_executor: float | None
    problems: list[str] = field(default_factory=list)
    peak_kv: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "tct_schedule": self.tct_schedule,
            "tct_executor": self.tct_executor,
            "problems": list(self.problems),
            "peak_kv": self.peak_kv,
        }


def check_schedule(workload: Workload, capacity: int, starts: np.ndarray | Mapping[int, int]) -> CheckResult:
    """Replay start epochs through the executor and compare Σ c_i.

    Parameters
    ----------
    workload
        The instance (unit-time model).
    capacity
        KV capacity C, tokens.
    starts
        Start epoch per workload position (array) or per request id (mapping).
    """
    from fluidopt.deployment import unit_deployment
    from fluidopt.executor.engine import simulate
    from fluidopt.executor.policies.replay import FixedSchedule
    from fluidopt.completion.instance import schedule_problems

    if isinstance(starts, Mapping):
        by_id = {int(k): int(v) for k, v in starts.items()}
        t = np.array([by_id.get(int(i), -1) for i in workload.id], dtype=np.int64)
    else:
        t = np.asarray(starts, dtype=np.int64)
        by_id = {int(i): int(v) for i, v in zip(workload.id, t)}
    o = np.asarray(workload.output, dtype=np.int64)
    claimed = float(np.sum(t + o))
    problems = schedule_problems(workload, capacity, t)
    try:
        run = simulate(workload, unit_deployment(capacity), FixedSchedule(by_id), capacity=capacity)
    except (PolicyError, FluidoptError) as exc:
        return CheckResult(False, claimed, None, [*problems, f"executor rejected the schedule: {exc}"])
    rec = run.records.set_index("id").loc[workload.id]
    if not bool(rec["finished"].all()):
        problems.append(f"{int((~rec['finished']).sum())} request(s) did not finish in the executor")
    if int(rec["evictions"].sum()):
        problems.append(f"the executor evicted {int(rec['evictions'].sum())} time(s)")
    completion = rec["completion"].to_numpy(dtype=np.float64)
    differ = np.flatnonzero(completion != t + o)
    if differ.size:
        i = int(differ[0])
        problems.append(
            f"request {workload.id[i]} completes at {completion[i]} in the executor, not {t[i] + o[i]}"
            f" ({differ.size} such request(s))"
        )
    tct = float(run.summary()["tct"])
    if tct != claimed:
        problems.append(f"executor Σ c = {tct}, schedule Σ c = {claimed}")
    return CheckResult(not problems, claimed, tct, problems, int(run.run["peak_kv"]))
