"""The one place that talks to HiGHS.

Formulations (``fluidopt.models``) build a Pyomo ``ConcreteModel``, a CVXPY ``Problem``,
a matrix model (arrays ``c, A, row_lo, row_hi, col_lo, col_hi, integrality``, e.g.
``fluidopt.models.tct_mip.MipArrays``; :func:`highs_model` passes it to HiGHS) or a
``highspy.Highs`` instance and nothing solver-specific; :func:`solve` runs any of them
with canonical options and returns a :class:`SolveResult`. A highspy solve can take a
MIP start (``Highs.setSolution``). HiGHS fixes its thread pool once per process, so the
first solve's thread count holds for the whole process (:func:`process_threads`).

A solve stopped by its time limit or by Ctrl-C is not an error: it returns the incumbent
(if any), the best bound and the gap with status ``time_limit`` or ``interrupted``.
Only a model that cannot be run at all raises :class:`~fluidopt.errors.SolverError`.

A second backend, OR-Tools CP-SAT, runs in a worker process of its own
(:func:`solve_cpsat`, ``python -m fluidopt.cpsat_worker``): the OR-Tools wheel bundles
its own HiGHS and cannot share a process with highspy. It takes a
:class:`fluidopt.models.tct_cpsat.CpsatInstance` and returns the same
:class:`SolveResult` (``solution`` is then the start epoch of every request).
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fluidopt import interrupts
from fluidopt.errors import SolverError

log = logging.getLogger(__name__)

#: Status values of :class:`SolveResult`.
STATUSES = ("optimal", "time_limit", "interrupted", "infeasible", "unbounded", "error")


@dataclass(frozen=True)
class SolveOptions:
    """Canonical solver options, translated per interface.

    Attributes
    ----------
    time_limit
        Wall-clock limit, s (``None``: none).
    mip_gap
        Relative MIP gap at which to stop (HiGHS default 1e-4 when ``None``).
    threads
        Solver threads. HiGHS fixes its thread pool once per process, so the first
        solve's value holds for the rest of the process.
    verbose
        Let the solver print its log.
    """

    time_limit: float | None = None
    mip_gap: float | None = None
    threads: int = 1
    verbose: bool = False


@dataclass
class SolveResult:
    """Outcome of one solve.

    Attributes
    ----------
    status
        One of :data:`STATUSES`.
    objective
        Objective of the best solution found (``None`` if there is none), model units.
    bound
        Best proven bound on the optimum (dual bound; equals ``objective`` when optimal).
    gap
        |objective − bound| / max(|objective|, 1e-9); 0 when optimal, ``None`` without
        an incumbent.
    seconds
        Wall-clock solve time, s (model build excluded).
    solution
        Primal values: for Pyomo models they are loaded into the model and this is
        ``None``; for highspy and CVXPY problems, an array in column order.
    duals
        Constraint duals of an LP (name → value), when the interface gives them.
    solver
        Interface used, e.g. ``"highs/pyomo"``.
    info
        Interface-specific extras (e.g. the CP-SAT worker's build time and model size).
    """

    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    seconds: float
    solution: Any = None
    duals: dict[str, float] = field(default_factory=dict)
    solver: str = ""
    message: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def has_solution(self) -> bool:
        return self.objective is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (no primal values)."""
        return {
            "status": self.status,
            "objective": self.objective,
            "bound": self.bound,
            "gap": self.gap,
            "seconds": self.seconds,
            "solver": self.solver,
            "message": self.message,
            "duals": dict(self.duals),
        }

    def to_frame(self) -> Any:
        import pandas as pd

        row = self.to_dict()
        row.pop("duals")
        return pd.DataFrame([row])


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """|objective − bound| / max(|objective|, 1e-9), or ``None`` if either is missing."""
    if objective is None or bound is None or not math.isfinite(bound):
        return None
    return abs(objective - bound) / max(abs(objective), 1e-9)


def solve(
    model: Any,
    options: SolveOptions | None = None,
    *,
    start: np.ndarray | None = None,
    progress: Callable[[float | None, float | None], None] | None = None,
) -> SolveResult:
    """Solve a Pyomo model, a CVXPY problem or a ``highspy.Highs`` instance with HiGHS.

    Parameters
    ----------
    model
        The model; a :class:`MatrixModel` (arrays) is turned into a ``highspy.Highs``.
    options
        Canonical options (time limit, gap, threads, verbosity).
    start
        MIP start for a highspy model: a full primal vector in column order (passed
        with ``Highs.setSolution``; HiGHS checks it and keeps it as the first incumbent
        if it is feasible). Ignored by the other interfaces.
    progress
        highspy MIPs: called (from HiGHS's thread) with (incumbent objective, dual bound)
        as the branch-and-bound advances; ``None`` where there is none yet.
    """
    options = options or SolveOptions()
    silence_highs_banner()
    if _is_matrix_model(model):
        model = highs_model(model)
    kind = type(model).__module__
    if kind.startswith("highspy"):
        return _solve_highspy(model, options, start, progress)
    if kind.startswith("cvxpy"):
        return _solve_cvxpy(model, options)
    if kind.startswith("pyomo"):
        return _solve_pyomo(model, options)
    raise SolverError(f"cannot solve a {type(model).__name__}: expected Pyomo, CVXPY or highspy")


# ---------------------------------------------------------------------------- highspy
_BANNER_SILENCED = False


def silence_highs_banner() -> None:
    """Keep the HiGHS banner off stdout.

    HiGHS 1.16 writes a two-line banner to file descriptor 1 when a process makes its
    first ``Highs`` instance, whatever ``output_flag`` says (and Pyomo and CVXPY make
    their own instances), which would corrupt ``--json`` output. The first instance is
    therefore made here with descriptor 1 pointed at ``/dev/null``; later ones print
    nothing.
    """
    global _BANNER_SILENCED
    if _BANNER_SILENCED:
        return
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _BANNER_SILENCED = True


_HIGHS_STATUS = {
    "kOptimal": "optimal",
    "kTimeLimit": "time_limit",
    "kInterrupt": "interrupted",
    "kInfeasible": "infeasible",
    "kUnbounded": "unbounded",
    "kUnboundedOrInfeasible": "infeasible",
    "kObjectiveBound": "optimal",
    "kObjectiveTarget": "optimal",
    "kSolutionLimit": "time_limit",
    "kIterationLimit": "time_limit",
}


#: Thread count of the first HiGHS solve in this process (HiGHS builds its thread pool
#: once; asking for another count later fails inside HiGHS, so later solves reuse it).
_PROCESS_THREADS: int | None = None


def process_threads(requested: int) -> int:
    """The HiGHS thread count for this process: the first request wins."""
    global _PROCESS_THREADS
    if _PROCESS_THREADS is None:
        _PROCESS_THREADS = max(1, int(requested))
    return _PROCESS_THREADS


def set_run_time_limit(h: Any, seconds: float) -> None:
    """Give the next ``run`` of ``h`` ``seconds`` of wall clock. HiGHS compares its
    ``time_limit`` with the run time accumulated over all runs of the object, so a model
    solved again (warm starts, rows added) would otherwise stop as soon as its earlier
    runs add up to the limit."""
    h.setOptionValue("time_limit", float(h.getRunTime()) + float(seconds))


def apply_highs_options(h: Any, options: SolveOptions) -> None:
    """Set the canonical options on a ``highspy.Highs`` (its thread count is the
    process's; the time limit counts from now, :func:`set_run_time_limit`)."""
    h.setOptionValue("output_flag", bool(options.verbose))
    h.setOptionValue("threads", process_threads(options.threads))
    if options.time_limit is not None:
        set_run_time_limit(h, options.time_limit)
    if options.mip_gap is not None:
        h.setOptionValue("mip_rel_gap", float(options.mip_gap))


#: HiGHS solves left running by a second Ctrl-C. While one runs, the process must end
#: with ``os._exit``: a normal interpreter exit aborts inside HiGHS (see
#: :func:`abandoned_solve_running`).
_ABANDONED: list[Any] = []


def abandoned_solve_running() -> bool:
    """Whether a HiGHS solve abandoned by a second Ctrl-C is still running."""
    return any(h.is_solver_running() for h in _ABANDONED)


def _run_interruptible(h: Any) -> bool:
    """Run ``h`` so that Ctrl-C stops it cleanly; return whether it was interrupted.

    ``Highs.run`` blocks in C++ and Python only delivers SIGINT between bytecodes, so a
    handler installed around ``run`` would fire only after the solve. Instead the solve
    runs in highspy's solver thread (``startSolve``) while this (main) thread waits in
    short, interruptible slices; a KeyboardInterrupt there calls ``cancelSolve`` and
    HiGHS returns its incumbent and bound with status ``kInterrupt``. HiGHS reads that
    request only in the simplex, the interior-point method and branch and bound, so the
    time limit is cut to zero too, which presolve checks. Two passes of presolve check
    neither (clique extraction and dominated columns): on a 40-request completion-time
    MIP on our 2-core machine under load 5, a Ctrl-C that arrived there took 22 s to act
    (elsewhere under 0.7 s, against 19–41 s before the time-limit cut). During those
    passes a second Ctrl-C gives up on HiGHS's answer and raises KeyboardInterrupt,
    leaving the solver thread behind (:func:`abandoned_solve_running`). Off the main thread (no SIGINT can arrive)
    ``run`` is called directly.
    """
    if threading.current_thread() is not threading.main_thread():
        h.run()
        return False
    hit = False
    h.HandleUserInterrupt = True  # cancelSolve only acts through the interrupt callbacks
    time_limit = h.getOptionValue("time_limit")[1]
    h.startSolve()
    while True:
        try:
            done, _ = h.wait(0.05)
        except KeyboardInterrupt:
            if hit:
                _ABANDONED.append(h)
                raise
            hit = True
            interrupts.note()
            h.cancelSolve()
            h.setOptionValue("time_limit", 0.0)
            log.warning("Ctrl-C: stopping HiGHS with its best answer so far (press Ctrl-C again to quit without it)")
            continue
        if done:
            h.HandleUserInterrupt = False
            h.setOptionValue("time_limit", time_limit)
            return hit


def _watch_mip(h: Any, progress: Callable[[float | None, float | None], None]) -> None:
    """Report HiGHS's incumbent and dual bound from its MIP interrupt callback."""
    last = {"at": 0.0, "seen": (None, None)}

    def on_event(event: Any) -> None:
        out = event.data_out
        primal = float(out.mip_primal_bound) if math.isfinite(out.mip_primal_bound) else None
        dual = float(out.mip_dual_bound) if math.isfinite(out.mip_dual_bound) else None
        now = time.perf_counter()
        if (primal, dual) != last["seen"] and now - last["at"] >= 0.2:
            last.update(at=now, seen=(primal, dual))
            progress(primal, dual)

    h.cbMipInterrupt.subscribe(on_event)


def _solve_highspy(
    h: Any, options: SolveOptions, start: np.ndarray | None = None,
    progress: Callable[[float | None, float | None], None] | None = None,
) -> SolveResult:
    apply_highs_options(h, options)
    if progress is not None:
        _watch_mip(h, progress)
    message = ""
    if start is not None:
        x = np.asarray(start, dtype=np.float64)
        if x.shape != (h.getNumCol(),):
            raise SolverError(f"MIP start has {x.shape} values for {h.getNumCol()} columns")
        sol = highspy_solution(x)
        status_set = h.setSolution(sol)
        message = f"MIP start: {status_set.name}"
    started = time.perf_counter()
    hit = _run_interruptible(h)
    seconds = time.perf_counter() - started
    status = _HIGHS_STATUS.get(h.getModelStatus().name, "error")
    if hit:
        status = "interrupted"
    info = h.getInfo()
    has_sol = info.primal_solution_status >= 2  # kSolutionStatusFeasible
    objective = float(info.objective_function_value) if has_sol else None
    integrality = h.getLp().integrality_
    is_mip = bool(integrality) and any(int(v) != 0 for v in integrality)
    if is_mip:
        bound = float(info.mip_dual_bound) if math.isfinite(info.mip_dual_bound) else None
    else:
        bound = objective if status == "optimal" else None
    if status == "optimal" and objective is not None:
        bound = objective if bound is None else bound
    solution = np.asarray(h.getSolution().col_value) if has_sol else None
    duals: dict[str, float] = {}
    if not is_mip and status == "optimal":
        sol = h.getSolution()
        lp = h.getLp()
        names = list(lp.row_names_) if lp.row_names_ else [f"r{i}" for i in range(lp.num_row_)]
        duals = {n: float(v) for n, v in zip(names, sol.row_dual)}
    gap = 0.0 if status == "optimal" else relative_gap(objective, bound)
    return SolveResult(status, objective, bound, gap, seconds, solution, duals, "highs/highspy", message)


def highspy_solution(x: np.ndarray) -> Any:
    """A ``highspy.HighsSolution`` holding primal values ``x`` (column order)."""
    import highspy

    sol = highspy.HighsSolution()
    sol.col_value = list(map(float, x))
    sol.value_valid = True
    return sol


# ---------------------------------------------------------------------------- arrays
def _is_matrix_model(model: Any) -> bool:
    return all(hasattr(model, a) for a in ("c", "A", "row_lo", "row_hi", "col_lo", "col_hi", "integrality"))


def highs_model(model: Any, *, relax: bool = False) -> Any:
    """A ``highspy.Highs`` holding a matrix model (``min c·x, row_lo ≤ A x ≤ row_hi``).

    Parameters
    ----------
    model
        Any object with arrays ``c, A (scipy sparse), row_lo, row_hi, col_lo, col_hi,
        integrality`` and optional ``col_names``/``row_names`` (e.g.
        ``fluidopt.models.tct_mip.MipArrays``).
    relax
        Drop integrality (the LP relaxation).
    """
    import highspy
    import scipy.sparse as sp

    A = sp.csc_matrix(model.A)
    A.sort_indices()
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_ = int(A.shape[1])
    lp.num_row_ = int(A.shape[0])
    lp.col_cost_ = np.asarray(model.c, dtype=np.float64)
    lp.col_lower_ = np.nan_to_num(np.asarray(model.col_lo, dtype=np.float64), neginf=-inf, posinf=inf)
    lp.col_upper_ = np.nan_to_num(np.asarray(model.col_hi, dtype=np.float64), neginf=-inf, posinf=inf)
    lp.row_lower_ = np.nan_to_num(np.asarray(model.row_lo, dtype=np.float64), neginf=-inf, posinf=inf)
    lp.row_upper_ = np.nan_to_num(np.asarray(model.row_hi, dtype=np.float64), neginf=-inf, posinf=inf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(np.float64)
    if not relax and np.any(np.asarray(model.integrality) != 0):
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if v else highspy.HighsVarType.kContinuous for v in model.integrality
        ]
    names_c, names_r = getattr(model, "col_names", None), getattr(model, "row_names", None)
    if names_c:
        lp.col_names_ = list(names_c)
    if names_r:
        lp.row_names_ = list(names_r)
    silence_highs_banner()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    status = h.passModel(lp)
    if status.name == "kError":
        raise SolverError("HiGHS rejected the model (passModel failed)")
    return h


# ---------------------------------------------------------------------------- Pyomo
def _solve_pyomo(model: Any, options: SolveOptions) -> SolveResult:
    import pyomo.environ  # noqa: F401  (registers the solvers)
    from pyomo.contrib.solver.common.factory import SolverFactory
    from pyomo.contrib.solver.common.results import TerminationCondition as TC

    solver = SolverFactory("highs")
    if not solver.available():
        raise SolverError("HiGHS is not available to Pyomo (is highspy installed?)")
    kwargs: dict[str, Any] = {
        "load_solutions": False,
        "raise_exception_on_nonoptimal_result": False,
        "tee": options.verbose,
        "threads": process_threads(options.threads),
    }
    if options.time_limit is not None:
        kwargs["time_limit"] = options.time_limit
    if options.mip_gap is not None:
        kwargs["rel_gap"] = options.mip_gap
    start = time.perf_counter()
    try:
        results = solver.solve(model, **kwargs)
    except KeyboardInterrupt:
        interrupts.note()
        return SolveResult("interrupted", None, None, None, time.perf_counter() - start, solver="highs/pyomo")
    seconds = time.perf_counter() - start
    tc = results.termination_condition
    status = {
        TC.convergenceCriteriaSatisfied: "optimal",
        TC.maxTimeLimit: "time_limit",
        TC.interrupted: "interrupted",
        TC.provenInfeasible: "infeasible",
        TC.locallyInfeasible: "infeasible",
        TC.infeasibleOrUnbounded: "infeasible",
        TC.unbounded: "unbounded",
        TC.iterationLimit: "time_limit",
    }.get(tc, "error")
    objective = results.incumbent_objective
    bound = results.objective_bound
    duals: dict[str, float] = {}
    if objective is not None:
        results.solution_loader.load_vars()
        if status == "optimal":
            try:
                duals = {c.name: float(v) for c, v in results.solution_loader.get_duals().items()}
            except Exception:  # duals do not exist for MIPs
                duals = {}
    bound = float(bound) if bound is not None and math.isfinite(bound) else None
    if status == "optimal" and bound is None:
        bound = objective
    gap = 0.0 if status == "optimal" else relative_gap(objective, bound)
    return SolveResult(
        status,
        None if objective is None else float(objective),
        bound,
        gap,
        seconds,
        None,
        duals,
        "highs/pyomo",
        str(tc),
    )


# ---------------------------------------------------------------------------- CVXPY
def _solve_cvxpy(problem: Any, options: SolveOptions) -> SolveResult:
    import cvxpy as cp

    if "HIGHS" not in cp.installed_solvers():
        raise SolverError("CVXPY cannot find HiGHS (is highspy installed?)")
    highs_options: dict[str, Any] = {"threads": process_threads(options.threads)}
    if options.time_limit is not None:
        highs_options["time_limit"] = float(options.time_limit)
    if options.mip_gap is not None:
        highs_options["mip_rel_gap"] = float(options.mip_gap)
    start = time.perf_counter()
    try:
        problem.solve(solver=cp.HIGHS, verbose=options.verbose, **highs_options)
    except cp.error.SolverError as exc:
        raise SolverError(f"CVXPY/HiGHS failed: {exc}") from None
    seconds = time.perf_counter() - start
    status = {
        cp.OPTIMAL: "optimal",
        cp.OPTIMAL_INACCURATE: "optimal",
        cp.INFEASIBLE: "infeasible",
        cp.INFEASIBLE_INACCURATE: "infeasible",
        cp.UNBOUNDED: "unbounded",
        cp.UNBOUNDED_INACCURATE: "unbounded",
        cp.USER_LIMIT: "time_limit",
    }.get(problem.status, "error")
    objective = float(problem.value) if status in ("optimal", "time_limit") and problem.value is not None else None
    if objective is not None and not math.isfinite(objective):
        objective = None
    duals = {
        (getattr(c, "fluidopt_name", None) or c.name()): float(np.sum(c.dual_value))
        for c in problem.constraints
        if c.dual_value is not None and np.size(c.dual_value) == 1
    }
    bound = objective if status == "optimal" else None
    gap = 0.0 if status == "optimal" else relative_gap(objective, bound)
    return SolveResult(status, objective, bound, gap, seconds, None, duals, "highs/cvxpy", str(problem.status))


# ---------------------------------------------------------------------------- CP-SAT
#: Extra seconds the worker may take beyond its time limit (start-up, model build,
#: CP-SAT's own clock granularity) before it is killed.
CPSAT_GRACE_SECONDS = 60.0


def solve_cpsat(
    instance: Any,
    options: SolveOptions | None = None,
    *,
    linearization_level: int | None = 2,
    symmetry: bool = True,
    seed: int = 0,
    core_phase: float | None = None,
    extra: dict[str, Any] | None = None,
    lns_seconds: float | None = None,
    lns_only: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> SolveResult:
    """Solve a :class:`~fluidopt.models.tct_cpsat.CpsatInstance` with CP-SAT in a worker.

    Parameters
    ----------
    instance
        The instance (anything with ``to_json()``, or its JSON dict).
    options
        ``time_limit`` (CP-SAT's ``max_time_in_seconds``), ``mip_gap``
        (``relative_gap_limit``), ``threads`` (``num_workers``, 1 by default),
        ``verbose`` (the search log on stderr).
    linearization_level, symmetry, seed, extra
        CP-SAT's LP relaxation level (2: the cumulative's energy rows too), the symmetry
        chains of :mod:`fluidopt.models.tct_cpsat`, the random seed, and further
        ``SatParameters`` fields by name.
    core_phase
        With a time limit: spend this fraction of it, after the default search, on
        CP-SAT's core-based (lower-bound driven) search started from the best schedule
        found, with Σ c ≤ its value and ≥ the bound reached (``None``: one phase).
    lns_seconds
        After a search that did not prove optimality, improve the best schedule by
        large-neighbourhood search (``fluidopt.completion.lns``) for this long, s.
    lns_only
        Skip the search: improve the instance's hint for ``lns_seconds`` (the result's
        bound is then ``None``).
    progress
        Called (in a reader thread) with ``{"stage", "objective", "bound"}`` whenever the
        worker reports a better schedule or bound.

    Returns
    -------
    SolveResult
        ``solution``: start epoch per request (``None`` without a schedule). A time
        limit or Ctrl-C gives status ``time_limit``/``interrupted`` with the best
        schedule and bound found. Ctrl-C at the terminal reaches the worker directly
        (same process group); an interrupt of this process alone is forwarded to it.

    Raises
    ------
    SolverError
        The worker cannot be started or gives no answer (e.g. OR-Tools is missing).
    """
    options = options or SolveOptions()
    payload = instance.to_json() if hasattr(instance, "to_json") else dict(instance)
    request = {
        "instance": payload,
        "params": {
            "time_limit": options.time_limit,
            "gap": options.mip_gap,
            "workers": max(1, int(options.threads)),
            "verbose": bool(options.verbose),
            "linearization_level": linearization_level,
            "symmetry": bool(symmetry),
            "seed": int(seed),
            "core_phase": None if core_phase is None else float(core_phase),
            "extra": dict(extra or {}),
            "lns_seconds": None if lns_seconds is None else float(lns_seconds),
            "lns_only": bool(lns_only),
            "progress": progress is not None,
        },
    }
    from fluidopt.cpsat_worker import READY_LINE

    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fluidopt.cpsat_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    except OSError as exc:
        raise SolverError(f"cannot start the CP-SAT worker: {exc}") from None
    budget = (options.time_limit or 0.0) + (lns_seconds or 0.0)
    deadline = None if options.time_limit is None and lns_seconds is None else budget + CPSAT_GRACE_SECONDS
    interrupted = threading.Event()
    ready = threading.Event()  # the worker's own SIGINT handler is installed
    streams: dict[str, Any] = {"out": [], "err": []}

    def stop_worker() -> None:
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGINT)
            except OSError:
                pass

    def read_stdout() -> None:
        streams["out"].append(proc.stdout.read())

    def read_stderr() -> None:
        # progress lines become callbacks; anything else is the solver log or an error
        for line in proc.stderr:
            if line == READY_LINE:
                ready.set()
                if interrupted.is_set():  # a Ctrl-C that came before the worker could take it
                    stop_worker()
            elif line.startswith("@progress "):
                if progress is not None:
                    try:
                        progress(json.loads(line[len("@progress "):]))
                    except (ValueError, TypeError):
                        pass
            elif options.verbose:
                sys.stderr.write(line)
            else:
                streams["err"].append(line)

    def forward(signum: int, frame: Any) -> None:
        # Ctrl-C: let the worker stop its search and answer with what it found; before
        # its handler is installed a SIGINT would kill it, so the reader sends it then
        interrupted.set()
        if ready.is_set():
            stop_worker()

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, forward)
    readers = [threading.Thread(target=f, daemon=True) for f in (read_stdout, read_stderr)]
    try:
        for t in readers:
            t.start()
        try:
            proc.stdin.write(json.dumps(request))
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # the worker died early; its stderr says why
        while proc.poll() is None:
            time.sleep(0.05)
            if deadline is not None and time.perf_counter() - started > deadline:
                proc.kill()
                proc.wait()
                raise SolverError(f"the CP-SAT worker did not stop within {deadline:g} s") from None
        for t in readers:
            t.join(timeout=5.0)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if proc.poll() is None:
            proc.kill()
    out = "".join(streams["out"])
    err = "".join(streams["err"])
    seconds = time.perf_counter() - started
    try:
        answer = json.loads(out)
    except (json.JSONDecodeError, TypeError):
        tail = (err or "").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        raise SolverError(f"the CP-SAT worker gave no answer: {tail[0]}") from None
    status = answer.get("status", "error")
    if interrupted.is_set():
        interrupts.note()
        if status == "time_limit":
            status = "interrupted"
    if status not in STATUSES:
        status = "error"
    objective = answer.get("objective")
    bound = answer.get("bound")
    starts = answer.get("starts")
    gap = 0.0 if status == "optimal" else relative_gap(objective, bound)
    result = SolveResult(
        status,
        None if objective is None else float(objective),
        None if bound is None else float(bound),
        gap,
        float(answer.get("seconds") or seconds),
        None if starts is None else np.asarray(starts, dtype=np.int64),
        {},
        "cpsat/worker",
        str(answer.get("message", "")),
        {k: answer.get(k) for k in ("build_seconds", "n_intervals", "n_symmetry_rows", "lns", "fixing") if k in answer},
    )
    result.info["wall_seconds"] = seconds
    return result
