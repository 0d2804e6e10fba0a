"""The solve driver of the total-completion-time program (unit-time model, rounds).

Minimise Σ c_i over the unit-time schedules of a workload with KV capacity C (spec
``completion-time.md`` §1) with HiGHS (the time-indexed MIP of
``fluidopt.models.tct_mip``) or OR-Tools CP-SAT (``fluidopt.models.tct_cpsat``, in a
worker process), after the data preparation of :mod:`fluidopt.completion.windows`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fluidopt.bounds.time_indexed import lp_relaxation
from fluidopt.bounds.volume import volume_bound
from fluidopt.completion.instance import instance_arrays
from fluidopt.completion.windows import prepare
from fluidopt.errors import InputError
from fluidopt.models.tct_mip import TctData, build, build_arrays, solution_starts, start_vector

if TYPE_CHECKING:
    from fluidopt.workload import Workload


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
