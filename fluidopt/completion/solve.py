"""The solve driver of the total-completion-time program (unit-time model, rounds).

Minimise Σ c_i over the unit-time schedules of a workload with KV capacity C (spec
``completion-time.md`` §1). :func:`solve_tct` runs five stages, each a function here:

1. **prepare** — heuristic incumbent, start windows, grouping, peak intervals
   (:func:`fluidopt.completion.windows.prepare`);
2. **bound** — the memory-volume bound and, for CP-SAT, the LP relaxation of the
   time-indexed program with its peak clique rows and the path relaxation's bound
   started from its duals (:func:`bound_stage`);
3. **improve** — at most a share of the time: first a search over priority orders of
   serial list schedules (:func:`list_search_stage`), then large-neighbourhood search
   with CP-SAT (:mod:`fluidopt.completion.lns`; :func:`improve_stage`; with CP-SAT it runs
   inside the search's worker, just before it); both stop early once they have settled
   and leave the rest to the search;
4. **search** — the exact search from the improved schedule: the time-indexed MIP in
   HiGHS or the cumulative model in OR-Tools CP-SAT (in a worker process)
   (:func:`search_stage`);
5. **certify** — the best schedule, the best valid bound and the gap (:func:`certify`);
   then **replay**: the schedule runs through the executor's accounting, which must
   accept it with the same Σ c_i (:func:`replay`).

Every bound that reaches the result is valid: the volume bound, the LP relaxation over
windows that cut off no optimal schedule, the path relaxation's Lagrangian values over
the same windows, and the solvers' proven bounds on the same program (see
:mod:`fluidopt.bounds`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fluidopt import interrupts
from fluidopt.bounds.time_indexed import lp_relaxation, lp_solution
from fluidopt.bounds.volume import volume_bound
from fluidopt.completion.instance import instance_arrays
from fluidopt.completion.windows import Prepared, prepare
from fluidopt.errors import InputError
from fluidopt.models.tct_mip import TctData, build, build_arrays, solution_starts, start_vector

if TYPE_CHECKING:
    from fluidopt.bounds.checker import CheckResult
    from fluidopt.solver import SolveOptions, SolveResult
    from fluidopt.workload import Workload

#: Solvers of the search stage.
BACKENDS = ("highs", "cpsat")

#: Routes of :func:`solve_tct`.
METHODS = ("auto", "exact", "lagrangian")

#: Progress callback: (stage, elapsed s, best Σ c so far, best bound so far).
ProgressFn = Callable[[str, float, "float | None", "float | None"], None]


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


class _Tracker:
    """Best schedule value and best bound seen so far, reported to a progress callback."""

    def __init__(self, progress: ProgressFn | None, started: float) -> None:
        self.progress = progress
        self.started = started
        self.stage = "prepare"
        self.objective: float | None = None
        self.bound: float | None = None

    def __call__(self, stage: str | None = None, objective: float | None = None, bound: float | None = None) -> None:
        if stage is not None:
            self.stage = stage
        if objective is not None and (self.objective is None or objective < self.objective):
            self.objective = float(objective)
        if bound is not None and (self.bound is None or bound > self.bound):
            self.bound = float(bound)
        if self.progress is not None:
            self.progress(self.stage, time.perf_counter() - self.started, self.objective, self.bound)

    def from_worker(self, event: dict[str, Any]) -> None:
        self(event.get("stage"), event.get("objective"), event.get("bound"))


@dataclass
class Bounds:
    """Lower bounds of the bound stage, rounds.

    Attributes
    ----------
    volume
        Memory-volume bound (:mod:`fluidopt.bounds.volume`).
    lp
        LP relaxation of the time-indexed program with its peak rows (``None``: not
        computed or not finished).
    lp_seconds, lp_status
        Its time, s, and its status: ``optimal``, ``base_only`` (the LP without the peak
        rows finished, the one with them did not), a solver status when neither finished,
        or ``skipped``.
    paths
        The path relaxation's bound (:mod:`fluidopt.bounds.paths`; ``None``: not
        computed or none reached).
    paths_seconds, paths_status
        Its time, s, and how it ended (``skipped`` when not computed).
    start_bounds
        Per request and start epoch of its window, a lower bound on Σ c of the schedules
        that start it there (:func:`fluidopt.bounds.path_fixing.start_bounds`; ``None``:
        not computed). The exact search removes the starts whose bound exceeds its best
        schedule.
    """

    volume: float
    lp: float | None = None
    lp_seconds: float = 0.0
    lp_status: str = "skipped"
    paths: float | None = None
    paths_seconds: float = 0.0
    paths_status: str = "skipped"
    start_bounds: list[list[int]] | None = field(default=None, repr=False)

    @property
    def best(self) -> float:
        return max(b for b in (self.volume, self.lp, self.paths) if b is not None)

    @property
    def interrupted(self) -> bool:
        """Whether Ctrl-C stopped the bound stage."""
        return "interrupted" in (self.lp_status, self.paths_status)


#: Default share of the time limit for the bound stage (LP and path bound). Three
#: quarters certify a little tighter at 40–60 [KV] requests with slightly worse
#: schedules (``docs/bounds.md``); ``solve`` is first a way to get a schedule.
BOUND_SHARE = 0.5


def _remaining(time_limit: float | None, since: float) -> float | None:
    return None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - since))


def bound_stage(
    workload: Workload, capacity: int, prep: Prepared, *, lp: bool, time_limit: float | None, tracker: _Tracker,
    paths: bool = False, share: float = BOUND_SHARE, fixing: bool = True,
) -> Bounds:
    """The volume bound, (``lp``) the LP relaxation of ``prep``'s program and (``paths``)
    the path relaxation's bound started from the LP's duals, together in at most
    ``share`` of ``time_limit`` (at n = 60 the LP alone can take tens of seconds); with
    ``fixing``, the path relaxation's lower bound per request and start epoch at its best
    multipliers, for the exact search (:mod:`fluidopt.bounds.path_fixing`)."""
    bounds = Bounds(volume_bound(workload, capacity))
    tracker("bound", prep.upper_bound, bounds.volume)
    started = time.perf_counter()
    limit = None if time_limit is None else share * time_limit
    if lp or paths:
        arrays = build_arrays(prep.data)  # one build for the LP and the path relaxation
        solution = lp_solution(prep.data, limit, arrays)
        bounds.lp, bounds.lp_seconds, bounds.lp_status = solution.value, solution.seconds, solution.status
        tracker(bound=bounds.lp)
        if paths and solution.status != "interrupted":
            from fluidopt.bounds.path_fixing import start_bounds
            from fluidopt.bounds.paths import path_bound

            result = path_bound(prep.data, time_limit=_remaining(limit, started), lp=solution,
                                schedules=[] if prep.incumbent is None else [prep.incumbent],
                                upper_bound=prep.upper_bound, progress=lambda b: tracker(bound=b), arrays=arrays)
            bounds.paths, bounds.paths_seconds, bounds.paths_status = result.bound, result.seconds, result.status
            if fixing and result.relaxation is not None and result.multipliers is not None \
                    and result.status != "interrupted":
                try:
                    bounds.start_bounds = start_bounds(result.relaxation, result.multipliers)
                except KeyboardInterrupt:  # stop like the bound itself: the driver reports what it has
                    interrupts.note()
                    bounds.paths_status = "interrupted"
    return bounds


@dataclass
class SearchOutcome:
    """What the search (and improve) stages produced.

    Attributes
    ----------
    result
        The solver's :class:`~fluidopt.solver.SolveResult` (bound on the same program).
    starts
        Start epoch per workload position of the solver's best schedule (``None``: none).
    start_used
        Whether the solver was given the incumbent (MIP start or CP-SAT hint).
    build_seconds
        Model build time, s.
    improve
        Statistics of the large-neighbourhood search (``None``: it did not run).
    """

    result: SolveResult
    starts: np.ndarray | None
    start_used: bool
    build_seconds: float
    improve: dict[str, Any] | None = None


def search_stage(
    prep: Prepared,
    bounds: Bounds,
    options: SolveOptions,
    *,
    backend: str,
    builder: str,
    mip_start: bool,
    improve_seconds: float | None,
    cpsat: dict[str, Any] | None,
    tracker: _Tracker,
) -> SearchOutcome:
    """Run the exact search with ``options`` (its time limit is the search's own). With
    CP-SAT, at most ``improve_seconds`` of large-neighbourhood search come first in the
    same worker (the improve stage)."""
    from fluidopt.solver import SolveResult, highs_model, solve, solve_cpsat

    tracker("search")
    started = time.perf_counter()
    use_start = mip_start and prep.incumbent is not None
    if backend == "cpsat":
        from fluidopt.models.tct_cpsat import from_tct_data

        inst = from_tct_data(
            prep.data,
            hint=prep.incumbent if use_start else None,
            lower_bound=bounds.best,
            upper_bound=prep.upper_bound if use_start else None,
            start_bounds=bounds.start_bounds,
        )
        build_seconds = time.perf_counter() - started
        if interrupted(prep, bounds):  # Ctrl-C before the search: stop here with the incumbent
            res = SolveResult("interrupted", None, None, None, 0.0, solver="cpsat/worker", message="interrupted")
        else:
            res = solve_cpsat(inst, options, lns_seconds=improve_seconds, progress=tracker.from_worker,
                              **(cpsat or {}))
        res.seconds = float(res.info.get("wall_seconds", res.seconds))
        starts = None if res.solution is None else np.asarray(res.solution, dtype=np.int64)
        return SearchOutcome(res, starts, inst.hint is not None, build_seconds, res.info.get("lns"))
    if interrupted(prep, bounds):
        res = SolveResult("interrupted", None, None, None, 0.0, solver="highs", message="interrupted")
        return SearchOutcome(res, None, False, 0.0)
    start_x = start_vector(prep.data, prep.incumbent) if use_start else None
    if builder == "pyomo":
        model = build(prep.data)
        build_seconds = time.perf_counter() - started
        res = solve(model, options)
        values = None
        if res.has_solution:
            values = np.array([model.y[g, t].value or 0.0 for g, t in zip(*prep.data.column_epochs())])
    else:
        arrays = build_arrays(prep.data)
        h = highs_model(arrays)
        build_seconds = time.perf_counter() - started
        res = solve(h, options, start=start_x, progress=lambda obj, bnd: tracker(objective=obj, bound=bnd))
        values = res.solution
        if values is not None and res.objective is not None and abs(float(arrays.c @ values) - res.objective) > 0.5:
            _distrust(res, float(arrays.c @ values))
    starts = solution_starts(prep.data, values) if values is not None else None
    return SearchOutcome(res, starts, start_x is not None, build_seconds)


def interrupted(prep: Prepared, bounds: Bounds) -> bool:
    """Whether Ctrl-C stopped a stage before the search (the bound stage or the list search)."""
    return bounds.interrupted or bool((prep.info.get("list_search") or {}).get("interrupted"))


def _distrust(res: SolveResult, recomputed: float) -> None:
    """A solver whose reported objective is not the value of its own solution has no
    bound we can trust: HiGHS 1.16 with a MIP start and presolve was seen to report
    13 (and a dual bound of 13, with status optimal) for a solution worth 18."""
    res.info["inconsistent"] = {"reported_objective": res.objective, "solution_value": recomputed,
                                "reported_bound": res.bound}
    res.objective, res.bound = recomputed, None
    if res.status == "optimal":
        res.status = "time_limit"


#: Steps in a row without a better list schedule after which the order search stops.
LIST_SEARCH_PATIENCE = 2000


def list_search_stage(prep: Prepared, workload: Workload, seconds: float, *, seed: int, tracker: _Tracker) -> float:
    """Search over priority orders of serial list schedules (:mod:`fluidopt.search.perturbation`,
    in this process) from the incumbent's order for at most ``seconds``; a better schedule
    becomes the incumbent. Returns the time used, s.

    On [KV] instances this finds better schedules per second than the CP-SAT
    neighbourhood search (n = 50: 9,017 → 8,611 in 30 s, against 8,668 in 60 s), which
    then starts from its result. A list schedule better than the incumbent keeps every
    deadline of the windows (they hold for every schedule at least as good)."""
    from fluidopt.bounds.ramp import ramp_instance
    from fluidopt.search.perturbation import perturbation_search

    if seconds <= 0 or prep.incumbent is None:
        return 0.0
    tracker("improve")
    a, s, o = instance_arrays(workload)
    starts, info = perturbation_search(ramp_instance(a, s, o, prep.data.capacity),
                                       np.asarray(prep.incumbent, dtype=np.float64), time_limit=seconds, seed=seed,
                                       patience=LIST_SEARCH_PATIENCE)
    prep.info["list_search"] = {k: info[k] for k in ("start_tct", "tct", "steps", "improvements", "seconds",
                                                     "interrupted")}
    if info["tct"] < _tct(prep, np.asarray(prep.incumbent)):
        prep.incumbent, prep.incumbent_source = np.asarray(starts, dtype=np.int64), "list-search"
        tracker(objective=info["tct"])
    return float(info["seconds"])


def improve_stage(prep: Prepared, seconds: float, *, seed: int, tracker: _Tracker) -> Prepared:
    """Large-neighbourhood search for at most ``seconds`` from the incumbent (HiGHS path;
    CP-SAT runs it inside its worker, before its search). The better schedule becomes the
    incumbent the search starts from; the windows stay those of the first incumbent, which
    hold for every schedule at least as good."""
    from fluidopt.models.tct_cpsat import from_tct_data
    from fluidopt.solver import SolveOptions, solve_cpsat

    if seconds <= 0 or prep.incumbent is None:
        return prep
    tracker("improve")
    inst = from_tct_data(prep.data, hint=prep.incumbent)
    res = solve_cpsat(inst, SolveOptions(), lns_seconds=seconds, lns_only=True, seed=seed,
                      progress=tracker.from_worker)
    prep.info["improve"] = res.info.get("lns")
    if res.solution is not None:
        better = np.asarray(res.solution, dtype=np.int64)
        if _tct(prep, better) < _tct(prep, np.asarray(prep.incumbent)):
            prep.incumbent, prep.incumbent_source = better, "lns"
    return prep


def _tct(prep: Prepared, starts: np.ndarray) -> float:
    out = np.zeros(starts.shape[0], dtype=np.int64)
    for g, members in enumerate(prep.data.members):
        out[np.asarray(members)] = prep.data.output[g]
    return float(np.sum(starts + out))


def _best_schedule(prep: Prepared, starts: np.ndarray | None) -> tuple[np.ndarray, float, str] | None:
    """(starts, Σ c, source) of the better of a solver schedule and the incumbent."""
    options = []
    if starts is not None:
        options.append((_tct(prep, starts), 0, starts, "search"))
    if prep.incumbent is not None:
        options.append((_tct(prep, np.asarray(prep.incumbent)), 1, np.asarray(prep.incumbent),
                        prep.incumbent_source or "incumbent"))
    if not options:
        return None
    value, _, best, source = min(options, key=lambda x: (x[0], x[1]))
    return best, value, source


def certify(
    workload: Workload, prep: Prepared, bounds: Bounds, outcome: SearchOutcome, *, started: float, backend: str,
    builder: str,
) -> TctSolution:
    """The best schedule, the best valid bound and the gap of one solve."""
    res = outcome.result
    best = _best_schedule(prep, outcome.starts)
    objective, starts, source = (None, None, None) if best is None else (best[1], best[0], best[2])
    if source == "search":
        source = "mip" if backend == "highs" else backend
    status = res.status
    if status == "infeasible" and starts is not None:
        # with a valid horizon the program is feasible whenever every request fits; an
        # infeasible answer with an incumbent in hand would be a numerical failure
        status = "error"
    solver_bound = res.bound if res.status not in ("infeasible", "error") else None
    if res.info.get("inconsistent") and bounds.lp is None:
        # the solver's bound was dropped: the LP relaxation replaces it
        bounds.lp, bounds.lp_seconds, bounds.lp_status = lp_relaxation(prep.data)
    valid = [b for b in (bounds.volume, bounds.lp, bounds.paths, solver_bound) if b is not None]
    if status == "optimal" and objective is not None and max(valid) < objective - 0.5:
        status = "gap_limit"  # HiGHS (CP-SAT) calls a solve "optimal" once the gap is under --gap
    bound = float(np.ceil(max(valid) - 1e-6))  # Σ c_i is an integer
    if objective is not None:
        bound = min(bound, objective)
        if bound >= objective - 0.5 and status in ("time_limit", "interrupted", "gap_limit", "optimal"):
            status = "optimal"
    gap_value = None if objective is None else (0.0 if status == "optimal" else (objective - bound) / max(objective, 1e-9))
    info = {
        "method": "exact",
        "horizon_rule": prep.horizon_rule,
        "horizon": prep.horizon,
        "n_groups": prep.data.n_groups,
        "n_cols": prep.data.n_cols,
        "n_rows": int(prep.data.n_groups + prep.data.rounds.shape[0]),
        "n_peak_groups": prep.info.get("n_peak_groups", 0),
        "incumbent_tct": prep.upper_bound,
        "incumbent_source": prep.incumbent_source,
        "solution_source": source,
        "mip_start": outcome.start_used,
        "builder": builder if backend == "highs" else "cpsat",
        "backend": backend,
        "prepare_seconds": prep.seconds,
        "build_seconds": outcome.build_seconds,
        "solve_seconds": res.seconds,
        "solver_status": res.status,
        "solver_message": res.message,
        "solver_bound": res.bound,
        "solver_inconsistent": res.info.get("inconsistent"),
        "volume_bound": bounds.volume,
        "lp_bound": bounds.lp,
        "lp_seconds": bounds.lp_seconds,
        "lp_status": bounds.lp_status,
        "path_bound": bounds.paths,
        "path_bound_seconds": bounds.paths_seconds,
        "path_bound_status": bounds.paths_status,
        "path_fixing": bounds.start_bounds is not None,
        "bound_source": _bound_source(bound, bounds, solver_bound),
        "improve": outcome.improve or prep.info.get("improve"),
        "list_search": prep.info.get("list_search"),
    }
    info.update({f"cpsat_{k}": v for k, v in res.info.items() if backend == "cpsat" and k != "lns"})
    return TctSolution(status, objective, bound, gap_value, starts, time.perf_counter() - started, len(workload), info)


def _bound_source(bound: float, bounds: Bounds, solver_bound: float | None) -> str:
    """Which bound family gave the reported bound (ties go to the cheaper one)."""
    for name, value in (("volume", bounds.volume), ("lp", bounds.lp), ("paths", bounds.paths), ("solver", solver_bound)):
        if value is not None and np.ceil(value - 1e-6) >= bound:
            return name
    return "solver"


def replay(workload: Workload, capacity: int, solution: TctSolution) -> CheckResult | None:
    """Run the solution's schedule through the executor (``None`` without a schedule)."""
    from fluidopt.bounds.checker import check_schedule

    return None if solution.starts is None else check_schedule(workload, capacity, solution.starts)


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
    peaks: bool = True,
    improve: float = 0.5,
    progress: ProgressFn | None = None,
    check: bool = True,
    method: str = "auto",
    path_bound: bool | None = None,
    bound_share: float = BOUND_SHARE,
    path_fixing: bool = True,
) -> TctSolution:
    """Minimise Σ c_i over the unit-time schedules of ``workload`` with KV capacity C.

    Parameters
    ----------
    workload, capacity
        The instance; C in KV tokens.
    time_limit
        Wall-clock budget of the bound, search and improve stages, s (preparation and
        model build excluded).
    gap
        Relative MIP gap at which to stop.
    threads
        HiGHS threads (fixed by the first solve of the process) or CP-SAT workers.
    horizon, aggregate
        Data preparation (see :func:`~fluidopt.completion.windows.prepare`);
        ``horizon="serial"``, ``aggregate=False``, ``mip_start=False``,
        ``drop_slack_rows=False``, ``peaks=False`` is the textbook formulation.
    drop_slack_rows
        Leave out memory rows that can never bind.
    peaks
        Add the peak clique rows (HiGHS, and the LP bound given to CP-SAT) and the peak
        ``NoOverlap`` (CP-SAT) of :mod:`fluidopt.bounds.peaks`.
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
        CP-SAT only: solve the LP relaxation of the time-indexed program over the same
        windows first (HiGHS, in this process, within ``bound_share`` of the time limit) and give
        max(LP, memory-volume bound) to CP-SAT as an objective lower bound.
    path_bound
        Also compute the path relaxation's bound (:mod:`fluidopt.bounds.paths`) from the
        LP's duals, within the bound stage's share of the time limit, and use the best of
        LP, path and volume bounds (as CP-SAT's objective lower bound and in the
        result). Default: with CP-SAT when ``lp_lower_bound``.
    bound_share
        Largest share of the time limit for the bound stage (LP and path bound), in
        (0, 1).
    path_fixing
        With the path bound: give CP-SAT's exact search the path relaxation's lower bound
        per request and start epoch, so that it drops the starts that cannot beat its best
        schedule (:mod:`fluidopt.bounds.path_fixing`).
    improve
        Largest share of the time left after the bound stage that goes to large-
        neighbourhood search before the exact search (needs a time limit; 0: off). The
        search gets what the improvement leaves once it has settled.
    cpsat
        CP-SAT only: keyword arguments of :func:`fluidopt.solver.solve_cpsat`
        (``linearization_level``, ``symmetry``, ``seed``, ``extra``, ``core_phase``).
    export
        Write the model to this path (``.mps`` or ``.lp``; via Pyomo) atomically.
    progress
        Called with (stage, elapsed s, best Σ c, best bound) whenever one improves.
    check
        Replay the schedule through the executor (``info["check"]``).
    method
        ``"exact"`` (the stages above), ``"lagrangian"`` (the route of
        :mod:`fluidopt.completion.at_scale` for instances too large for the exact
        programs: Lagrangian bound and price-guided schedules; ``backend`` and the
        formulation options do not apply; 60 s when no time limit is given) or ``"auto"``
        (exact when :func:`~fluidopt.completion.at_scale.exact_size` is at most
        :data:`~fluidopt.completion.at_scale.EXACT_SIZE_LIMIT`).

    Returns
    -------
    TctSolution
        Never raises because the time limit was hit: a stopped solve returns the best
        schedule (the heuristic incumbent if nothing better was found) and the best bound.
    """
    from fluidopt.solver import SolveOptions

    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r} ({', '.join(BACKENDS)})")
    if builder not in ("arrays", "pyomo"):
        raise InputError(f"unknown builder {builder!r} (arrays, pyomo)")
    if not 0.0 <= improve < 1.0:
        raise InputError(f"improve must be in [0, 1) (got {improve})", field="improve")
    if not 0.0 < bound_share < 1.0:
        raise InputError(f"bound_share must be in (0, 1) (got {bound_share})", field="bound_share")
    if method not in METHODS:
        raise InputError(f"unknown method {method!r} ({', '.join(METHODS)})", field="method")
    if method == "auto":
        from fluidopt.completion.at_scale import EXACT_SIZE_LIMIT, exact_size

        method = "exact" if exact_size(workload) <= EXACT_SIZE_LIMIT else "lagrangian"
    if method == "lagrangian":
        from fluidopt.completion.at_scale import solve_at_scale

        return solve_at_scale(workload, capacity, time_limit=60.0 if time_limit is None else time_limit,
                              seed=int((cpsat or {}).get("seed", 0)), progress=progress, check=check)
    started = time.perf_counter()
    tracker = _Tracker(progress, started)
    prep = prepare(workload, capacity, horizon=horizon, aggregate=aggregate, drop_slack_rows=drop_slack_rows,
                   executor=executor, peaks=peaks)
    tracker("prepare", prep.upper_bound)
    if export is not None:
        export_model(prep.data, export)
    budget_from = time.perf_counter()
    use_lp = backend == "cpsat" and lp_lower_bound
    bounds = bound_stage(workload, capacity, prep, lp=use_lp, time_limit=time_limit, tracker=tracker,
                         paths=use_lp if path_bound is None else path_bound, share=bound_share,
                         fixing=path_fixing and backend == "cpsat")
    left = _remaining(time_limit, budget_from)
    improve_seconds = None if left is None or improve <= 0 else improve * left
    if improve_seconds:
        # half of it, at most, on list-schedule orders here; the rest to CP-SAT neighbourhoods
        used = list_search_stage(prep, workload, 0.5 * improve_seconds, seed=int((cpsat or {}).get("seed", 0)),
                                 tracker=tracker)
        left = _remaining(time_limit, budget_from)
        improve_seconds = max(0.0, improve_seconds - used)
    search_limit = None if left is None else max(1.0, left - (improve_seconds or 0.0))
    options = SolveOptions(time_limit=search_limit, mip_gap=gap, threads=threads, verbose=verbose)
    if backend == "highs" and improve_seconds and not interrupted(prep, bounds):
        prep = improve_stage(prep, improve_seconds, seed=int((cpsat or {}).get("seed", 0)), tracker=tracker)
        improve_seconds = None
        left = _remaining(time_limit, budget_from)
        options = SolveOptions(time_limit=None if left is None else max(1.0, left), mip_gap=gap, threads=threads,
                               verbose=verbose)
    outcome = search_stage(prep, bounds, options, backend=backend, builder=builder, mip_start=mip_start,
                           improve_seconds=improve_seconds, cpsat=cpsat, tracker=tracker)
    solution = certify(workload, prep, bounds, outcome, started=started, backend=backend, builder=builder)
    tracker("done", solution.objective_tct, solution.best_bound)
    if check:
        result = replay(workload, capacity, solution)
        solution.info["check"] = None if result is None else result.to_dict()
    return solution


def export_model(data: TctData, path: str) -> None:
    """Write the Pyomo reference model to ``path`` (``.mps`` or ``.lp``), atomically."""
    from fluidopt.io import atomic_path

    suffix = str(path).rsplit(".", 1)[-1].lower()
    if suffix not in ("mps", "lp"):
        raise InputError(f"export format must be .mps or .lp (got {path})")
    model = build(data)
    with atomic_path(path) as tmp:
        model.write(str(tmp), format=suffix, io_options={"symbolic_solver_labels": True})
