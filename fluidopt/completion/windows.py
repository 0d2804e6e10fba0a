"""Data preparation for the completion-time programs: start windows, grouping of
identical requests and the rounds that need a memory row.

The formulations (``fluidopt.models.tct_mip``, ``fluidopt.models.tct_cpsat``) only build;
this module decides what goes into them:

- **start windows** — earliest start ⌈a_i⌉; latest start from a deadline rule:

  * ``"serial"`` (the textbook rule): one global horizon T = max_i ⌈a_i⌉ + Σ_i o_i.
    Valid: in an optimal schedule no round after the last arrival is idle (if round r
    were idle, every request started at ≥ r could start one epoch earlier: all have
    arrived, the ones started before r are gone, and their mutual overlaps do not
    change — a strict improvement), so every round in (max a, makespan] is covered by
    some request's run and the makespan is ≤ max a + Σ o.
  * ``"incumbent"`` (default): per request, c_i ≤ UB − LB(N∖{i}) where UB is the Σ c of
    a feasible schedule and LB(N∖{i}) the memory-volume bound of the instance without
    i (:mod:`fluidopt.bounds.volume`): any schedule at least as good as the incumbent has
    Σ_{k≠i} c_k ≥ LB(N∖{i}), and removing i only frees memory. Intersected with the
    serial horizon. The incumbent itself stays feasible, so it is a valid MIP start.

- **aggregation** — identical requests (same arrival epoch, prompt and output) become one
  group with an integer count, which removes their permutation symmetry.
- **rounds** — memory rows only where the largest possible load exceeds C (rows that
  can never bind are left out).
- **peak intervals** — the sides (L_g, R_g) of every group's peak interval
  (:mod:`fluidopt.bounds.peaks`), from which the time-indexed program writes its peak
  clique rows and the CP-SAT model a ``NoOverlap``.
- **incumbent** — the best heuristic schedule of :mod:`fluidopt.completion.heuristics`
  unless one is given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fluidopt.bounds.peaks import peak_intervals
from fluidopt.bounds.volume import volume_bound_without_each
from fluidopt.completion.heuristics import best_heuristic
from fluidopt.completion.instance import instance_arrays, serial_horizon
from fluidopt.errors import InputError
from fluidopt.models.tct_mip import TctData

if TYPE_CHECKING:
    from fluidopt.workload import Workload

HORIZON_RULES = ("serial", "incumbent")


@dataclass
class Prepared:
    """A :class:`TctData` and how it was made.

    Attributes
    ----------
    data
        The formulation input.
    horizon_rule
        ``"serial"`` or ``"incumbent"``.
    horizon
        Largest deadline (rounds).
    upper_bound
        Σ c of the incumbent used for deadlines (``None`` for the serial rule).
    incumbent
        Start epochs of that incumbent (``None`` if none was computed).
    incumbent_source
        Name of the heuristic that produced it.
    seconds
        Preparation time, s.
    """

    data: TctData
    horizon_rule: str
    horizon: int
    upper_bound: float | None
    incumbent: np.ndarray | None
    incumbent_source: str | None
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


def prepare(
    workload: Workload,
    capacity: int,
    *,
    horizon: str = "incumbent",
    aggregate: bool = True,
    upper_bound: float | None = None,
    incumbent: np.ndarray | None = None,
    drop_slack_rows: bool = True,
    executor: bool = True,
    peaks: bool = True,
) -> Prepared:
    """Start windows, grouping and constrained rounds for :mod:`fluidopt.models.tct_mip`.

    Parameters
    ----------
    workload
        The instance (unit-time: arrivals in rounds, rounded up to epochs).
    capacity
        KV capacity C, tokens.
    horizon
        Deadline rule, ``"serial"`` or ``"incumbent"`` (module docstring).
    aggregate
        Group identical requests.
    upper_bound, incumbent
        A known feasible Σ c (and its start epochs); by default the best heuristic.
    drop_slack_rows
        Leave out memory rows that can never bind.
    executor
        Let the incumbent search use executor policies.
    peaks
        Compute the peak intervals (the formulations then add their peak rows).

    Raises
    ------
    InputError
        A request that can never fit (s_i + o_i > C), or an unknown horizon rule.
    """
    started = time.perf_counter()
    if horizon not in HORIZON_RULES:
        raise InputError(f"unknown horizon rule {horizon!r} ({', '.join(HORIZON_RULES)})")
    workload.check_capacity(int(capacity))
    a, s, o = instance_arrays(workload)
    n = a.shape[0]
    T = serial_horizon(workload)
    deadline = np.full(n, T, dtype=np.int64)
    source = None
    if incumbent is None and (horizon == "incumbent" or upper_bound is None):
        source, incumbent, ub = best_heuristic(workload, capacity, executor=executor)
        upper_bound = ub if upper_bound is None else min(upper_bound, ub)
    elif incumbent is not None:
        ub = int(np.sum(np.asarray(incumbent) + o))
        upper_bound = ub if upper_bound is None else min(upper_bound, ub)
        source = "given"
    if horizon == "incumbent":
        others = volume_bound_without_each(a, s, o, capacity)
        deadline = np.minimum(deadline, np.floor(float(upper_bound) - others + 1e-9).astype(np.int64))
        deadline = np.maximum(deadline, a + o)  # a deadline below a + o would mean UB < LB: cannot happen
    # groups
    if aggregate:
        keys = np.stack([a, s, o, deadline], axis=1)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        members = tuple(np.flatnonzero(inverse == g) for g in range(uniq.shape[0]))
        ga, gs, go, gd = (uniq[:, k].astype(np.int64) for k in range(4))
        count = np.array([len(m) for m in members], dtype=np.int64)
    else:
        members = tuple(np.array([i]) for i in range(n))
        ga, gs, go, gd = a, s, o, deadline
        count = np.ones(n, dtype=np.int64)
    est, lst = ga.copy(), gd - go
    last = int((lst + go).max())
    rounds = np.arange(int(est.min()) + 1, last + 1, dtype=np.int64)
    if drop_slack_rows:
        # largest possible load at round r: every request that could be resident, at its peak
        peak = np.zeros(last + 2, dtype=np.int64)
        np.add.at(peak, est + 1, count * (gs + go))
        np.add.at(peak, lst + go + 1, -count * (gs + go))
        peak = np.cumsum(peak)
        rounds = rounds[peak[rounds] > capacity]
    peak_left = peak_right = None
    if peaks:
        peak_left, peak_right = peak_intervals(gs, go, int(capacity), count)
    data = TctData(int(capacity), ga, gs, go, count, est, lst, rounds, members, peak_left, peak_right)
    return Prepared(
        data,
        horizon,
        last,
        None if upper_bound is None else float(upper_bound),
        incumbent,
        source,
        time.perf_counter() - started,
        {"n_groups": int(ga.shape[0]), "serial_horizon": T,
         "n_peak_groups": 0 if peak_left is None else int(np.sum(peak_left + peak_right >= 1))},
    )
