"""Total-completion-time program as a CP-SAT model (one integer start per request).

Same program as the time-indexed MIP of :mod:`fluidopt.models.tct_mip` (spec
``completion-time.md`` §1, unit-time model), written for a constraint-programming solver:

- variables: start epoch S_i ∈ [est_i, lst_i] (integer) for every request;
- memory: request i holds s_i + j KV tokens at the end of round S_i + j, j = 1 … o_i.
  That ramp is a sum of o_i fixed-length intervals on the round axis:
  demand s_i + 1 over rounds S_i + 1 … S_i + o_i (interval [S_i + 1, S_i + o_i + 1)),
  plus demand 1 over rounds S_i + 1 + k … S_i + o_i (interval [S_i + 1 + k, S_i + o_i + 1))
  for k = 1 … o_i − 1. At round S_i + j exactly the first interval and the j − 1
  intervals with k < j cover it: s_i + 1 + (j − 1) = s_i + j. All intervals of all
  requests go into one ``cumulative`` of capacity C, which is exactly "Σ ≤ C at the end
  of every round";
- objective: minimise Σ_i (S_i + o_i) = Σ c_i (rounds).

Added constraints, each shown to keep at least one optimal schedule:

- **Windows.** ``est``/``lst`` come from :func:`fluidopt.tct.prepare`: earliest start
  ⌈a_i⌉, latest start from the per-request deadline c_i ≤ UB − LB(N∖{i}), which holds in
  *every* schedule with Σ c ≤ UB (see ``fluidopt.tct``), in particular in every optimal
  one.
- **Objective range.** LB ≤ Σ c_i ≤ UB with LB a valid lower bound (memory-volume bound,
  LP relaxation) and UB the Σ c of a known feasible schedule: every optimal schedule
  satisfies both.
- **Start fixing.** With ``start_bounds`` (a lower bound on Σ c per request and start
  epoch, from the path relaxation: ``fluidopt.bounds.path_fixing``), a search for
  schedules with Σ c ≤ Z keeps only the starts whose bound is ≤ Z: implied by Σ c ≤ Z,
  so no such schedule is removed (the worker applies it with Z = its best schedule).
- **Symmetry between interchangeable requests.** Requests with the same prompt s and
  output o (arrivals may differ) are chained S_{i_1} ≤ S_{i_2} ≤ … in order of (arrival,
  position). Proof: take an optimal schedule and, within one (s, o) class, hand out the
  class's start epochs in ascending order to its requests in ascending (arrival,
  position) order. The multiset of (s, o, start) is unchanged, so the memory profile and
  Σ c_i are unchanged (the windows hold because they hold for every schedule with
  Σ c ≤ UB). Arrivals still hold: if the starts are t_(1) ≤ … ≤ t_(m), the k requests
  that had the k smallest starts arrived by t_(k), so at least k arrivals of the class
  are ≤ t_(k), i.e. the k-th smallest arrival a_(k) ≤ t_(k). Every class can be sorted
  independently, so an optimal schedule satisfies all chains at once. This also covers
  fully identical requests (same a, s, o), which the MIP aggregates.

- **Peak intervals.** For requests with a peak interval (``fluidopt.bounds.peaks``: L_i,
  R_i with R_i + L_j ≤ the least completion gap of i before j), the intervals
  [c_i − L_i, c_i + R_i) of size L_i + R_i go into one ``NoOverlap``. They are disjoint
  in every feasible schedule (proof in that module), so no schedule is cut off; they
  give CP-SAT the one-machine structure of the large requests, which the cumulative
  alone does not see.

No other dominance rule is used: swapping two requests with different s or o changes the
memory profile in some round upwards, so it is not valid in general.

The model is built only in the CP-SAT worker process (``fluidopt.cpsat_worker``):
the OR-Tools wheel ships its own HiGHS and cannot be loaded into a process that has
loaded highspy (or the other way round). This module imports OR-Tools lazily and
nothing of HiGHS.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass
class CpsatInstance:
    """Input of the CP-SAT model, per request (workload positions), rounds and tokens.

    Attributes
    ----------
    capacity
        KV capacity C, tokens.
    arrival, prompt, output
        ⌈a_i⌉ (epochs), s_i, o_i.
    est, lst
        Earliest and latest start epoch of every request (inclusive).
    hint
        Start epochs of a feasible schedule (solution hint), or ``None``.
    lower_bound, upper_bound
        Valid bounds on the optimal Σ c_i (``None``: none).
    peak_left, peak_right
        Sides L_i, R_i of every request's peak interval (rounds; L + R = 0: none), or
        ``None``.
    start_bounds
        Per request, for each start epoch est_i … lst_i, a lower bound on Σ c of every
        schedule that starts it there (``fluidopt.bounds.path_fixing``), or ``None``;
        :func:`restrict_starts` applies them to a search for Σ c ≤ a cap.
    """

    capacity: int
    arrival: list[int]
    prompt: list[int]
    output: list[int]
    est: list[int]
    lst: list[int]
    hint: list[int] | None = None
    lower_bound: float | None = None
    upper_bound: float | None = None
    peak_left: list[int] | None = None
    peak_right: list[int] | None = None
    start_bounds: list[list[int]] | None = None

    @property
    def n(self) -> int:
        return len(self.arrival)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CpsatInstance:
        fields = ("capacity", "arrival", "prompt", "output", "est", "lst", "hint", "lower_bound", "upper_bound",
                  "peak_left", "peak_right", "start_bounds")
        return cls(**{k: d.get(k) for k in fields})


def from_tct_data(
    data: Any,
    *,
    hint: np.ndarray | None = None,
    lower_bound: float | None = None,
    upper_bound: float | None = None,
    start_bounds: list[list[int]] | None = None,
) -> CpsatInstance:
    """Per-request instance from the grouped :class:`~fluidopt.models.tct_mip.TctData`
    (``start_bounds`` per workload position, over the group's window)."""
    n = int(sum(len(m) for m in data.members))
    per_group = {"arrival": data.arrival, "prompt": data.prompt, "output": data.output, "est": data.est,
                 "lst": data.lst}
    if data.peak_left is not None and data.peak_right is not None:
        per_group.update(peak_left=data.peak_left, peak_right=data.peak_right)
    arrays = {k: np.zeros(n, dtype=np.int64) for k in per_group}
    for g, members in enumerate(data.members):
        idx = np.asarray(members, dtype=np.int64)
        for k, v in per_group.items():
            arrays[k][idx] = v[g]
    peaks = {k: arrays[k].tolist() for k in ("peak_left", "peak_right") if k in arrays}
    return CpsatInstance(
        int(data.capacity),
        *(arrays[k].tolist() for k in ("arrival", "prompt", "output", "est", "lst")),
        hint=None if hint is None else [int(t) for t in np.asarray(hint)],
        lower_bound=None if lower_bound is None else float(lower_bound),
        upper_bound=None if upper_bound is None else float(upper_bound),
        start_bounds=start_bounds,
        **peaks,
    )


def allowed_starts(inst: CpsatInstance, cap: int) -> list[np.ndarray] | None:
    """Per request, the start epochs whose ``start_bounds`` entry is ≤ ``cap`` (``None``
    without start bounds). Every schedule with Σ c ≤ cap starts each request at one of
    them (``fluidopt.bounds.path_fixing``)."""
    if inst.start_bounds is None:
        return None
    return [int(inst.est[i]) + np.flatnonzero(np.asarray(b, dtype=np.int64) <= cap) for i, b in
            enumerate(inst.start_bounds)]


def restrict_starts(model: Any, S: list[Any], inst: CpsatInstance, allowed: list[np.ndarray]) -> int:
    """Restrict every start variable to its ``allowed`` epochs (:func:`allowed_starts`);
    return how many window epochs that removes. Redundant for the schedules with
    Σ c ≤ the cap they were computed for, so it removes none of them."""
    from ortools.sat.python import cp_model

    removed = 0
    for i, (v, keep) in enumerate(zip(S, allowed)):
        window = int(inst.lst[i]) - int(inst.est[i]) + 1
        if keep.shape[0] < window:
            removed += window - keep.shape[0]
            model.add_linear_expression_in_domain(v, cp_model.Domain.from_values(keep.tolist()))
    return removed


def symmetry_chains(inst: CpsatInstance) -> list[list[int]]:
    """Classes of interchangeable requests (same s and o, two or more), each in ascending
    (arrival, position) order: the order their starts are chained in."""
    classes: dict[tuple[int, int], list[int]] = {}
    for i in range(inst.n):
        classes.setdefault((inst.prompt[i], inst.output[i]), []).append(i)
    return [sorted(m, key=lambda i: (inst.arrival[i], i)) for m in classes.values() if len(m) > 1]


def canonical_starts(inst: CpsatInstance, starts: list[int] | np.ndarray) -> list[int]:
    """The same schedule with every symmetry class's starts handed out in chain order
    (same memory profile and Σ c; feasible for the chained model, see module docstring)."""
    out = [int(t) for t in starts]
    for chain in symmetry_chains(inst):
        for i, t in zip(chain, sorted(out[i] for i in chain)):
            out[i] = t
    return out


def build(inst: CpsatInstance, *, symmetry: bool = True) -> tuple[Any, list[Any], Any]:
    """The CP-SAT model.

    Returns
    -------
    (model, starts, objective)
        ``cp_model.CpModel``, the start variables (workload positions) and the objective
        expression Σ (S_i + o_i).
    """
    from ortools.sat.python import cp_model

    m = cp_model.CpModel()
    n = inst.n
    S = [m.new_int_var(int(inst.est[i]), int(inst.lst[i]), f"S{i}") for i in range(n)]
    intervals, demands = [], []
    for i in range(n):
        s, o = int(inst.prompt[i]), int(inst.output[i])
        for k in range(o):
            intervals.append(m.new_fixed_size_interval_var(S[i] + 1 + k, o - k, f"I{i}_{k}"))
            demands.append(s + 1 if k == 0 else 1)
    m.add_cumulative(intervals, demands, int(inst.capacity))
    if inst.peak_left is not None and inst.peak_right is not None:
        peak = []
        for i in range(n):
            L, R = int(inst.peak_left[i]), int(inst.peak_right[i])
            if L + R >= 1:  # interval [c_i − L_i, c_i + R_i) with c_i = S_i + o_i
                peak.append(m.new_fixed_size_interval_var(S[i] + int(inst.output[i]) - L, L + R, f"P{i}"))
        if len(peak) >= 2:
            m.add_no_overlap(peak)
    if symmetry:
        for chain in symmetry_chains(inst):
            for i, j in zip(chain, chain[1:]):
                m.add(S[i] <= S[j])
    objective = sum(S) + int(sum(inst.output))
    if inst.lower_bound is not None:
        m.add(objective >= int(np.ceil(inst.lower_bound - 1e-6)))
    if inst.upper_bound is not None:
        m.add(objective <= int(np.floor(inst.upper_bound + 1e-6)))
    m.minimize(objective)
    if inst.hint is not None:
        hint = canonical_starts(inst, inst.hint) if symmetry else list(inst.hint)
        for v, t in zip(S, hint):
            m.add_hint(v, int(t))
    return m, S, objective
