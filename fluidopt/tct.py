"""Data preparation and the solve driver for the total-completion-time MIP.

Unit-time model (spec ``system-model.md``, model 1; ``completion-time.md`` §1): a request
started at integer epoch t ≥ a_i holds s_i + j KV tokens at the end of round t + j and
completes at c_i = t + o_i. All times here are rounds, all memory KV tokens.

The formulation itself (``fluidopt.models.tct_mip``) only builds; this module decides
what goes into it:

- **start windows** — earliest start ⌈a_i⌉; latest start from a deadline rule:

  * ``"serial"`` (the textbook rule): one global horizon T = max_i ⌈a_i⌉ + Σ_i o_i.
    Valid: in an optimal schedule no round after the last arrival is idle (if round r
    were idle, every request started at ≥ r could start one epoch earlier: all have
    arrived, the ones started before r are gone, and their mutual overlaps do not
    change — a strict improvement), so every round in (max a, makespan] is covered by
    some request's run and the makespan is ≤ max a + Σ o.
  * ``"incumbent"`` (default): per request, c_i ≤ UB − LB(N∖{i}) where UB is the Σ c of
    a feasible schedule and LB(N∖{i}) the memory-volume bound of the instance without
    i (``fluidopt.bounds.tct``): any schedule at least as good as the incumbent has
    Σ_{k≠i} c_k ≥ LB(N∖{i}), and removing i only frees memory. Intersected with the
    serial horizon. The incumbent itself stays feasible, so it is a valid MIP start.

- **aggregation** — identical requests (same arrival epoch, prompt and output) become one
  group with an integer count, which removes their permutation symmetry.
- **rounds** — memory rows only where the largest possible load exceeds C (rows that
  can never bind are left out).
- **incumbent** — the best of several greedy schedules computed here (MC-SF/H-SF-style
  chronological admission and serial insertion under a few priority rules) and, when
  the executor is available, the executor's ``mc-sf``, ``h-sf`` and ``sorted-f`` runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fluidopt.errors import InputError
from fluidopt.models.tct_mip import TctData, build, build_arrays, solution_starts, start_vector

if TYPE_CHECKING:
    from fluidopt.workload import Workload

HORIZON_RULES = ("serial", "incumbent")


# ---------------------------------------------------------------------------- schedules
def instance_arrays(workload: Workload) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(earliest start epoch ⌈a_i⌉, s_i, o_i) as int64 arrays."""
    a = np.ceil(np.asarray(workload.arrival, dtype=np.float64)).astype(np.int64)
    return a, np.asarray(workload.prompt, dtype=np.int64), np.asarray(workload.output, dtype=np.int64)


def serial_horizon(workload: Workload) -> int:
    """max ⌈a_i⌉ + Σ o_i: no optimal schedule ends later (rounds; see module docstring)."""
    a, _, o = instance_arrays(workload)
    return int(a.max() + o.sum())


def memory_profile(workload: Workload, starts: np.ndarray) -> np.ndarray:
    """KV tokens held at the end of every round 0 … max c_i under contiguous runs.

    Entry r is Σ over requests with t_i < r ≤ t_i + o_i of s_i + r − t_i (tokens).
    """
    a, s, o = instance_arrays(workload)
    t = np.asarray(starts, dtype=np.int64)
    load = np.zeros(int((t + o).max()) + 2, dtype=np.int64)
    for ti, si, oi in zip(t.tolist(), s.tolist(), o.tolist()):
        load[ti + 1 : ti + oi + 1] += si + np.arange(1, oi + 1)
    return load


def schedule_problems(workload: Workload, capacity: int, starts: np.ndarray) -> list[str]:
    """What is wrong with a schedule of contiguous runs (empty list: it is feasible)."""
    a, s, o = instance_arrays(workload)
    t = np.asarray(starts, dtype=np.int64)
    problems = []
    if t.shape != a.shape:
        return [f"{t.shape[0]} start epochs for {a.shape[0]} requests"]
    early = np.flatnonzero(t < a)
    if early.size:
        i = int(early[0])
        problems.append(f"request {workload.id[i]} starts at {t[i]} before its arrival {workload.arrival[i]}")
    load = memory_profile(workload, t)
    over = np.flatnonzero(load > capacity)
    if over.size:
        r = int(over[0])
        problems.append(f"round {r} holds {load[r]} KV tokens, more than C = {capacity}")
    return problems


class _Profile:
    """A memory profile being filled by greedy heuristics (rounds 0 … H)."""

    def __init__(self, horizon: int, capacity: int) -> None:
        self.load = np.zeros(horizon + 2, dtype=np.int64)
        self.C = capacity

    def fits(self, t: int, s: int, o: int) -> bool:
        seg = self.load[t + 1 : t + o + 1]
        return bool(np.all(seg + s + np.arange(1, o + 1) <= self.C))

    def earliest(self, t0: int, s: int, o: int) -> int:
        """Earliest start ≥ t0 whose ramp fits under the profile."""
        from numpy.lib.stride_tricks import sliding_window_view

        ramp = s + np.arange(1, o + 1)
        windows = sliding_window_view(self.load[t0 + 1 :], o)
        ok = np.all(windows + ramp <= self.C, axis=1)
        k = int(np.argmax(ok))
        if not ok[k]:
            raise RuntimeError("profile horizon too short")
        return t0 + k

    def add(self, t: int, s: int, o: int) -> None:
        self.load[t + 1 : t + o + 1] += s + np.arange(1, o + 1)


def chronological_schedule(workload: Workload, capacity: int, key: np.ndarray) -> np.ndarray:
    """MC-SF-style greedy with exact lengths: at each epoch admit waiting requests in
    ascending ``key`` while the future-memory check passes, stopping at the first that
    fails (key = o_i gives H-SF). Returns start epochs."""
    a, s, o = instance_arrays(workload)
    n = a.shape[0]
    prof = _Profile(serial_horizon(workload) + int(o.max()) + 1, capacity)
    starts = np.full(n, -1, dtype=np.int64)
    order = np.lexsort((np.arange(n), key))
    t = int(a.min())
    left = n
    while left:
        for i in order:
            if starts[i] >= 0 or a[i] > t:
                continue
            if not prof.fits(t, int(s[i]), int(o[i])):
                break
            prof.add(t, int(s[i]), int(o[i]))
            starts[i] = t
            left -= 1
        t += 1
    return starts


def insertion_schedule(workload: Workload, capacity: int, order: np.ndarray) -> np.ndarray:
    """Serial insertion: take requests in ``order`` and start each at the earliest epoch
    ≥ its arrival at which its ramp fits under the memory already placed."""
    a, s, o = instance_arrays(workload)
    prof = _Profile(serial_horizon(workload) + int(o.max()) + 1, capacity)
    starts = np.full(a.shape[0], -1, dtype=np.int64)
    for i in order:
        t = prof.earliest(int(a[i]), int(s[i]), int(o[i]))
        prof.add(t, int(s[i]), int(o[i]))
        starts[i] = t
    return starts


def heuristic_schedules(workload: Workload, capacity: int, *, executor: bool = True) -> dict[str, np.ndarray]:
    """Start epochs of every heuristic schedule we know, by name (all feasible).

    Internal greedies: ``greedy-o`` (= H-SF), ``greedy-volume``, ``greedy-peak`` and
    serial insertion in the same three orders (``insert-*``). With ``executor``, the
    executor's ``mc-sf``, ``h-sf`` and ``sorted-f`` runs (with exact lengths) when the
    executor and those policies exist.
    """
    a, s, o = instance_arrays(workload)
    n = a.shape[0]
    ids = np.arange(n)
    volume = o * s + o * (o + 1) // 2
    keys = {"o": o, "volume": volume, "peak": s + o}
    out: dict[str, np.ndarray] = {}
    for name, key in keys.items():
        out[f"greedy-{name}"] = chronological_schedule(workload, capacity, key)
        out[f"insert-{name}"] = insertion_schedule(workload, capacity, np.lexsort((ids, key)))
    if executor:
        out.update(executor_schedules(workload, capacity))
    return out


def executor_schedules(
    workload: Workload, capacity: int, policies: tuple[str, ...] = ("mc-sf", "h-sf", "sorted-f")
) -> dict[str, np.ndarray]:
    """Schedules of executor policies, as start epochs of each request's last run.

    Only eviction-free runs that finish every request are returned, and only when the
    executor and the policy exist (the executor is optional for the MIP). The last
    run of a request that was never paused is contiguous, so these are MIP-feasible.
    """
    out: dict[str, np.ndarray] = {}
    try:
        from fluidopt.deployment import unit_deployment
        from fluidopt.executor.engine import simulate
        from fluidopt.executor.policy import make_policy
    except ImportError:
        return out
    for name in policies:
        try:
            policy = make_policy(name)
            run = simulate(workload, unit_deployment(capacity), policy, capacity=capacity)
        except Exception:  # noqa: BLE001 — a policy that is missing or fails is just not used
            continue
        rec = run.records
        if not bool(np.all(rec["finished"])) or int(np.sum(rec["evictions"])) > 0:
            continue
        completion = rec.set_index("id").loc[workload.id, "completion"].to_numpy()
        starts = np.rint(completion).astype(np.int64) - np.asarray(workload.output, dtype=np.int64)
        if not schedule_problems(workload, capacity, starts):
            out[name] = starts
    return out


def best_heuristic(workload: Workload, capacity: int, *, executor: bool = True) -> tuple[str, np.ndarray, int]:
    """(name, start epochs, Σ c) of the best heuristic schedule."""
    _, _, o = instance_arrays(workload)
    scheds = heuristic_schedules(workload, capacity, executor=executor)
    scored = sorted((int(np.sum(st + o)), name) for name, st in scheds.items())
    tct, name = scored[0]
    return name, scheds[name], tct


# ---------------------------------------------------------------------------- data prep
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
        from fluidopt.bounds.tct import volume_bound_without_each

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
    data = TctData(int(capacity), ga, gs, go, count, est, lst, rounds, members)
    return Prepared(
        data,
        horizon,
        last,
        None if upper_bound is None else float(upper_bound),
        incumbent,
        source,
        time.perf_counter() - started,
        {"n_groups": int(ga.shape[0]), "serial_horizon": T},
    )


# ---------------------------------------------------------------------------- solve
@dataclass
class TctSolution:
    """Outcome of :func:`solve_tct` (times in rounds unless said otherwise).

    Attributes
    ----------
    status
        ``optimal`` (proven), ``gap_limit`` (stopped within the requested relative
        gap), ``time_limit``, ``interrupted``, ``infeasible`` or ``error``.
    objective_tct
        Σ c_i of the best schedule found (MIP or heuristic incumbent).
    best_bound
        Best proven lower bound on the optimal Σ c_i.
    gap
        (objective − bound)/objective; 0 when optimal.
    starts
        Start epoch per workload position of the best schedule (``None`` without one).
    seconds
        Total wall-clock time, s (preparation + build + solve).
    """

    status: str
    objective_tct: float | None
    best_bound: float | None
    gap: float | None
    starts: np.ndarray | None
    seconds: float
    n_requests: int
    info: dict[str, Any] = field(default_factory=dict)

    def starts_by_id(self, workload: Workload) -> dict[int, int]:
        """Request id → start epoch."""
        if self.starts is None:
            return {}
        return {int(i): int(t) for i, t in zip(workload.id, self.starts)}

    def to_dict(self, workload: Workload) -> dict[str, Any]:
        return {
            "status": self.status,
            "objective_tct": self.objective_tct,
            "best_bound": self.best_bound,
            "gap": self.gap,
            "seconds": self.seconds,
            "n_requests": self.n_requests,
            **self.info,
            "starts": self.starts_by_id(workload),
        }


BACKENDS = ("highs", "cpsat")


def lp_relaxation(data: TctData, time_limit: float | None = None) -> tuple[float | None, float, str]:
    """(LP optimum of the time-indexed MIP over ``data``'s windows, seconds, status); the
    value is ``None`` if the LP did not finish. A valid lower bound on the optimum whenever
    the windows cut off no optimal schedule (true for both horizon rules of
    :func:`prepare`)."""
    from fluidopt.solver import SolveOptions, highs_model, solve

    started = time.perf_counter()
    res = solve(highs_model(build_arrays(data), relax=True), SolveOptions(time_limit=time_limit))
    value = res.objective if res.status == "optimal" else None
    return value, time.perf_counter() - started, res.status


def solve_tct(
    workload: Workload,
    capacity: int,
    *,
    time_limit: float | None = None,
    gap: float | None = None,
    threads: int = 1,
    horizon: str = "incumbent",
    aggregate: bool = True,
    mip_start: bool = True,
    builder: str = "arrays",
    backend: str = "highs",
    drop_slack_rows: bool = True,
    executor: bool = True,
    export: str | None = None,
    verbose: bool = False,
    lp_lower_bound: bool = True,
    cpsat: dict[str, Any] | None = None,
) -> TctSolution:
    """Minimise Σ c_i over the unit-time schedules of ``workload`` with KV capacity C.

    Parameters
    ----------
    workload, capacity
        The instance; C in KV tokens.
    time_limit
        Solver wall-clock limit, s (preparation and build excluded; for ``cpsat`` the
        LP bound's time counts against it).
    gap
        Relative MIP gap at which to stop.
    threads
        HiGHS threads (fixed by the first solve of the process) or CP-SAT workers.
    horizon, aggregate
        Data preparation (see :func:`prepare`); ``horizon="serial"``, ``aggregate=False``,
        ``mip_start=False``, ``drop_slack_rows=False`` is the textbook formulation.
    drop_slack_rows
        Leave out memory rows that can never bind (see :func:`prepare`).
    mip_start
        Give the best heuristic schedule to the solver as its first incumbent (HiGHS)
        or as a solution hint and objective upper bound (CP-SAT).
    builder
        ``"arrays"`` (numpy/scipy → highspy) or ``"pyomo"`` (the reference model);
        HiGHS only.
    backend
        ``"highs"`` (the time-indexed MIP in HiGHS) or ``"cpsat"`` (the cumulative model
        of :mod:`fluidopt.models.tct_cpsat` in OR-Tools CP-SAT, in a worker process).
    lp_lower_bound
        CP-SAT only: solve the LP relaxation of the time-indexed MIP over the same
        windows first (HiGHS, in this process, at most half the time limit) and give
        max(LP, memory-volume bound) to CP-SAT as an objective lower bound (otherwise, or
        if the LP does not finish, the volume bound alone).
    cpsat
        CP-SAT only: keyword arguments of :func:`fluidopt.solver.solve_cpsat`
        (``linearization_level``, ``symmetry``, ``seed``, ``extra``).
    export
        Write the model to this path (``.mps`` or ``.lp``; via Pyomo) atomically.

    Returns
    -------
    TctSolution
        Never raises because the time limit was hit: a stopped solve returns the best
        schedule (the heuristic incumbent if the solver found none) and the best bound.
    """
    from fluidopt.bounds.tct import volume_bound
    from fluidopt.solver import SolveOptions, highs_model, solve, solve_cpsat

    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r} ({', '.join(BACKENDS)})")
    if builder not in ("arrays", "pyomo"):
        raise InputError(f"unknown builder {builder!r} (arrays, pyomo)")
    t0 = time.perf_counter()
    prep = prepare(
        workload, capacity, horizon=horizon, aggregate=aggregate, drop_slack_rows=drop_slack_rows, executor=executor
    )
    _, _, o = instance_arrays(workload)
    vol = volume_bound(workload, capacity)
    t1 = time.perf_counter()
    if export is not None:
        export_model(prep.data, export)
    options = SolveOptions(time_limit=time_limit, mip_gap=gap, threads=threads, verbose=verbose)
    start_x = None
    extra_info: dict[str, Any] = {}
    if backend == "cpsat":
        from fluidopt.models.tct_cpsat import from_tct_data

        lp_value, lp_seconds, lp_status = (None, 0.0, "skipped")
        if lp_lower_bound:
            # capped at half the limit: at n = 60 the LP alone can take tens of seconds
            lp_limit = None if time_limit is None else 0.5 * time_limit
            lp_value, lp_seconds, lp_status = lp_relaxation(prep.data, lp_limit)
        lower = max(vol, lp_value) if lp_value is not None else vol
        use_start = mip_start and prep.incumbent is not None
        inst = from_tct_data(
            prep.data,
            hint=prep.incumbent if use_start else None,
            lower_bound=lower,
            upper_bound=prep.upper_bound if use_start else None,
        )
        t2 = time.perf_counter()
        if time_limit is not None:
            options = SolveOptions(time_limit=max(1.0, time_limit - lp_seconds), mip_gap=gap, threads=threads,
                                   verbose=verbose)
        if lp_status == "interrupted":  # Ctrl-C during the LP: stop here with the incumbent
            from fluidopt.solver import SolveResult

            res = SolveResult("interrupted", None, None, None, 0.0, solver="cpsat/worker", message="interrupted")
        else:
            res = solve_cpsat(inst, options, **(cpsat or {}))
        res.seconds = lp_seconds + float(res.info.get("wall_seconds", res.seconds))
        starts = None if res.solution is None else np.asarray(res.solution, dtype=np.int64)
        if res.bound is not None:
            res.bound = max(res.bound, lower)
        elif res.status in ("time_limit", "interrupted"):
            res.bound = lower
        extra_info = {"lp_bound": lp_value, "lp_seconds": lp_seconds, **{f"cpsat_{k}": v for k, v in res.info.items()}}
        start_x = inst.hint
    elif builder == "pyomo":
        start_x = start_vector(prep.data, prep.incumbent) if (mip_start and prep.incumbent is not None) else None
        model = build(prep.data)
        t2 = time.perf_counter()
        res = solve(model, options)
        values = None
        if res.has_solution:
            values = np.array([model.y[g, t].value or 0.0 for g, t in zip(*prep.data.column_epochs())])
        starts = solution_starts(prep.data, values) if values is not None else None
    else:
        start_x = start_vector(prep.data, prep.incumbent) if (mip_start and prep.incumbent is not None) else None
        arrays = build_arrays(prep.data)
        h = highs_model(arrays)
        t2 = time.perf_counter()
        res = solve(h, options, start=start_x)
        values = res.solution
        starts = solution_starts(prep.data, values) if values is not None else None
    objective = float(np.sum(starts + o)) if starts is not None else None
    source = backend if starts is not None else None
    if source == "highs":
        source = "mip"
    if prep.incumbent is not None and prep.upper_bound is not None and (objective is None or prep.upper_bound < objective):
        objective, starts, source = float(prep.upper_bound), np.asarray(prep.incumbent), prep.incumbent_source
    status = res.status
    bound = res.bound
    if status == "infeasible":
        # with a valid horizon the program is feasible whenever every request fits; an
        # infeasible answer with an incumbent in hand would be a numerical failure
        if starts is not None:
            status = "error"
    if status == "optimal" and objective is not None and bound is not None and max(bound, vol) < objective - 0.5:
        # HiGHS (CP-SAT) calls a solve "optimal" once the gap is under mip_rel_gap (--gap)
        status = "gap_limit"
    if status == "optimal" and objective is not None:
        bound = objective if bound is None else max(min(bound, objective), vol)
    else:
        bound = max(vol, bound) if bound is not None else vol
    if bound is not None:
        bound = float(np.ceil(bound - 1e-6))  # Σ c_i is an integer
    if objective is not None and bound is not None:
        bound = min(bound, objective)
        if bound >= objective - 0.5 and status in ("time_limit", "interrupted", "gap_limit"):
            status = "optimal"
    gap_value = None if objective is None else (0.0 if status == "optimal" else (objective - bound) / max(objective, 1e-9))
    info = {
        "horizon_rule": prep.horizon_rule,
        "horizon": prep.horizon,
        "n_groups": prep.data.n_groups,
        "n_cols": prep.data.n_cols,
        "n_rows": int(prep.data.n_groups + prep.data.rounds.shape[0]),
        "incumbent_tct": prep.upper_bound,
        "incumbent_source": prep.incumbent_source,
        "solution_source": source,
        "mip_start": start_x is not None,
        "builder": builder if backend == "highs" else "cpsat",
        "backend": backend,
        "prepare_seconds": t1 - t0,
        "build_seconds": t2 - t1,
        "solve_seconds": res.seconds,
        "solver_status": res.status,
        "solver_message": res.message,
        "solver_bound": res.bound,
        "volume_bound": vol,
    }
    info.update(extra_info)
    return TctSolution(status, objective, bound, gap_value, starts, time.perf_counter() - t0, len(workload), info)


def export_model(data: TctData, path: str) -> None:
    """Write the Pyomo reference model to ``path`` (``.mps`` or ``.lp``), atomically."""
    from fluidopt.io import atomic_path

    suffix = str(path).rsplit(".", 1)[-1].lower()
    if suffix not in ("mps", "lp"):
        raise InputError(f"export format must be .mps or .lp (got {path})")
    model = build(data)
    with atomic_path(path) as tmp:
        model.write(str(tmp), format=suffix, io_options={"symbolic_solver_labels": True})
