"""``fixed-schedule``: start every request at a given epoch and run it to completion.

Used to replay a schedule computed offline (e.g. by the completion-time MIP) through the
executor's accounting (``fluidopt.bounds.checker``). Unit-time model only.

Rule: at decision epoch t, every resident runs (contiguous runs, never paused), and
every waiting request whose scheduled start is ≤ t is admitted (a start in the past can
only happen if the request was not available at its epoch; the checker then sees a
different completion time and rejects the schedule). With nothing to run, the policy
idles until the next scheduled start. It declares itself overflow-free, so a schedule
that would exceed the KV capacity makes the engine raise instead of evicting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from fluidopt.errors import InputError
from fluidopt.executor.policy import Decision, Policy, StateView, register

if TYPE_CHECKING:
    from fluidopt.deployment import Deployment
    from fluidopt.workload import Workload


@register
class FixedSchedule(Policy):
    """Start request ``id`` at epoch ``starts[id]`` (rounds) and never pause it.

    Parameters
    ----------
    starts
        Request id → start epoch (integer rounds). Every request of the workload needs
        one, at or after its arrival.
    """

    name = "fixed-schedule"
    sees_output = False
    overflow_free = True

    def __init__(self, starts: Mapping[int, int] | None = None) -> None:
        self.starts = {int(k): int(v) for k, v in (starts or {}).items()}
        self._start = np.empty(0, dtype=np.int64)
        self._admitted = np.empty(0, dtype=bool)

    def reset(self, workload: Workload, deployment: Deployment) -> None:
        if not deployment.time.is_unit:
            raise InputError("fixed-schedule replays unit-time schedules (use --deployment unit)")
        missing = [int(i) for i in workload.id if int(i) not in self.starts]
        if missing:
            raise InputError(
                f"fixed-schedule has no start epoch for {len(missing)} request(s), e.g. id {missing[0]}"
            )
        self._start = np.array([self.starts[int(i)] for i in workload.id], dtype=np.int64)
        early = np.flatnonzero(self._start < np.ceil(np.asarray(workload.arrival, dtype=np.float64)))
        if early.size:
            i = int(early[0])
            raise InputError(
                f"request {workload.id[i]} is scheduled at epoch {self._start[i]}, before its arrival "
                f"{workload.arrival[i]}"
            )
        self._admitted = np.zeros(len(workload), dtype=bool)

    def decide(self, state: StateView) -> Decision:
        waiting = np.asarray(state.waiting)
        due = waiting[self._start[waiting] <= state.clock]
        self._admitted[due] = True
        run = np.concatenate([np.asarray(state.resident, dtype=np.int64), due.astype(np.int64)])
        if run.size:
            return Decision(run=run)
        later = self._start[~self._admitted]
        later = later[later > state.clock]
        return Decision(run=run, wake_at=float(later.min()) if later.size else None)

    def params(self) -> dict[str, Any]:
        return {"n_starts": len(self.starts), "last_start": max(self.starts.values(), default=math.nan)}
