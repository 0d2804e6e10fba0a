"""CP-SAT worker process: ``python -m fluidopt.cpsat_worker`` reads one JSON request on
stdin and writes one JSON answer on stdout.

Why a process of its own: the OR-Tools wheel bundles its own HiGHS, and loading OR-Tools
into a process that has already loaded highspy (or the other way round) fails with an
undefined HiGHS symbol. This module therefore imports neither highspy nor any fluidopt
module that does (only numpy, OR-Tools and :mod:`fluidopt.models.tct_cpsat`).

Request::

    {"instance": CpsatInstance.to_json(),
     "params": {"time_limit": s | null, "workers": 1, "gap": rel | null,
                "linearization_level": 2, "symmetry": true, "seed": 0,
                "verbose": false, "extra": {SatParameters field: value}}}

Answer::

    {"status": optimal | time_limit | interrupted | infeasible | error,
     "objective": Σ c | null, "bound": lower bound | null, "starts": [...] | null,
     "seconds": solve wall time, "build_seconds": ..., "message": "...",
     "n_intervals": ..., "n_symmetry_rows": ...}

Optional ``params``: ``lns_seconds`` — before the search, improve the hint by
large-neighbourhood search (``fluidopt.completion.lns``) for at most that long (time it
leaves unused goes to the search, which then starts from the better schedule);
``lns_only`` — no search after it (the answer's ``bound`` is then ``null`` unless the
improvement proved optimality); ``progress`` — write
``@progress {"stage": …, "objective": …, "bound": …}`` lines on stderr as the search
finds schedules and bounds (the parent turns them into a live status line).

Ctrl-C (SIGINT) stops the search and the answer carries the best schedule found and the
bound with status ``interrupted``: the search runs in a helper thread while the main
thread waits in short slices, so that the Python SIGINT handler (installed by
:func:`main`, idempotent, no exception raised) runs promptly and calls ``StopSearch``.
CP-SAT's own SIGINT catching is switched off so that Python sees the signal. The first
line on stderr, ``@ready``, tells the parent that the handler is in place; the parent
holds back a Ctrl-C until then (before it, SIGINT would end this process).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from typing import Any

#: Set by the SIGINT handler; ``solver`` is the running CpSolver (if any).
STOP: dict[str, Any] = {"requested": False, "solver": None}

#: The worker's first line on stderr: its SIGINT handler is installed.
READY_LINE = "@ready\n"


def _on_sigint(signum: int, frame: Any) -> None:
    """Stop the search (idempotent: Ctrl-C at a terminal reaches this process directly
    and a second time through the parent, which forwards it)."""
    STOP["requested"] = True
    solver = STOP.get("solver")
    if solver is not None:
        solver.stop_search()


def _solver(cp_model: Any, params: dict[str, Any], limit: float | None, core: bool) -> Any:
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.num_workers = int(params.get("workers") or 1)
    p.catch_sigint_signal = False
    p.log_search_progress = bool(params.get("verbose", False))
    if limit is not None:
        p.max_time_in_seconds = max(0.1, float(limit))
    if params.get("gap") is not None:
        p.relative_gap_limit = float(params["gap"])
    if params.get("linearization_level") is not None:
        p.linearization_level = int(params["linearization_level"])
    p.random_seed = int(params.get("seed", 0))
    for key, value in (params.get("extra") or {}).items():
        setattr(p, key, value)
    if core:
        p.optimize_with_core = True
    return solver


class _Progress:
    """Writes ``@progress`` lines on stderr (at most one per 0.2 s, except the last)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.last = 0.0
        self.state: dict[str, Any] = {"stage": "search", "objective": None, "bound": None}

    def __call__(self, force: bool = False, **update: Any) -> None:
        self.state.update({k: v for k, v in update.items() if v is not None or k == "stage"})
        now = time.perf_counter()
        if self.enabled and (force or now - self.last >= 0.2):
            self.last = now
            sys.stderr.write("@progress " + json.dumps(self.state) + "\n")
            sys.stderr.flush()


def _callback(cp_model: Any, progress: _Progress) -> Any:
    """A CP-SAT solution callback that reports every improving schedule."""

    class OnSolution(cp_model.CpSolverSolutionCallback):  # type: ignore[misc, name-defined]
        def on_solution_callback(self) -> None:
            bound = self.best_objective_bound
            progress(objective=float(self.objective_value), bound=float(bound) if abs(bound) < 1e300 else None)

    return OnSolution()


def _run(solver: Any, model: Any, callback: Any = None) -> tuple[Any, str | None]:
    """Solve in a helper thread while the main thread stays responsive to SIGINT; returns
    (CP-SAT status or ``None`` if stopped before the search, error message)."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["status"] = solver.solve(model, callback)
        except BaseException as exc:  # noqa: BLE001 — reported in the answer
            box["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            done.set()

    STOP["solver"] = solver
    if STOP["requested"]:
        return None, None
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while not done.wait(0.05):
        if STOP["requested"]:  # again each slice: a stop sent before the search began is lost
            solver.stop_search()
    return box.get("status"), box.get("error")


def _answer(inst: Any, symmetry: bool, build_seconds: float, started: float) -> dict[str, Any]:
    from fluidopt.models.tct_cpsat import symmetry_chains

    return {
        "seconds": time.perf_counter() - started,
        "build_seconds": build_seconds,
        "n_intervals": int(sum(inst.output)),
        "n_symmetry_rows": sum(len(c) - 1 for c in symmetry_chains(inst)) if symmetry else 0,
        "objective": None,
        "bound": None,
        "starts": None,
        "message": "",
    }


def _fix_starts(model: Any, S: list[Any], inst: Any, cap: int, hint: list[int] | None,
                fixing: dict[str, Any] | None) -> dict[str, Any] | None:
    """Keep the starts whose ``start_bounds`` entry is ≤ ``cap`` (the search looks for
    Σ c ≤ cap); statistics for the answer. A hint (Σ c ≤ cap) outside them would
    contradict the bounds: then nothing is removed and the answer says so."""
    from fluidopt.models.tct_cpsat import allowed_starts, restrict_starts

    allowed = allowed_starts(inst, cap)
    if allowed is None:
        return fixing
    fixing = dict(fixing or {"removed": 0, "window": int(sum(len(b) for b in inst.start_bounds))})
    if hint is not None and any(int(t) not in set(keep.tolist()) for t, keep in zip(hint, allowed)):
        fixing["contradicted"] = True
        return fixing
    fixing["removed"] = max(fixing["removed"], restrict_starts(model, S, inst, allowed))
    fixing["cap"] = cap
    return fixing


def solve_request(request: dict[str, Any]) -> dict[str, Any]:
    """Build and solve one request (see module docstring); never raises for a time limit
    or an interrupt."""
    import numpy as np
    from ortools.sat.python import cp_model

    from fluidopt.models.tct_cpsat import CpsatInstance, build, canonical_starts

    params = dict(request.get("params") or {})
    inst = CpsatInstance.from_json(request["instance"])
    t0 = time.perf_counter()
    symmetry = bool(params.get("symmetry", True))
    model, S, objective = build(inst, symmetry=symmetry)
    build_seconds = time.perf_counter() - t0

    progress = _Progress(bool(params.get("progress")))
    time_limit = params.get("time_limit")
    core_phase = params.get("core_phase")
    phases: list[tuple[float | None, bool]] = [] if params.get("lns_only") else [(time_limit, False)]
    if core_phase and time_limit is not None:
        # first the default (LP-guided) search for the schedule, then the core-based search
        # for the bound, started from the best schedule with Σ c ≤ its value
        phases = [(float(time_limit) * (1.0 - float(core_phase)), False), (float(time_limit) * float(core_phase), True)]

    started = time.perf_counter()
    best: list[int] | None = None
    best_obj: float | None = None
    bound: float | None = None
    status_name = ""
    final = "time_limit"
    # improve first: the search then starts from the better schedule, with Σ c below it
    lns_stats = None
    fixing: dict[str, Any] | None = None
    lns_seconds = params.get("lns_seconds")
    if lns_seconds and inst.hint is not None and not STOP["requested"]:
        from fluidopt.completion.lns import improve

        best, best_obj = list(inst.hint), float(sum(inst.hint) + sum(inst.output))
        progress(force=True, stage="improve", objective=best_obj)
        best, lns_stats = improve(
            inst, best, time_limit=float(lns_seconds), seed=int(params.get("seed", 0)),
            should_stop=lambda: bool(STOP["requested"]),
            on_improvement=lambda tct, _starts: progress(objective=tct),
        )
        best_obj = lns_stats.best_tct
        status_name = "improvement only"
        if lns_stats.stopped == "optimal":
            final, bound, phases = "optimal", best_obj, []
        elif phases and phases[0][0] is not None:
            # a search that settled early leaves its time to the search
            phases[0] = (phases[0][0] + max(0.0, float(lns_seconds) - lns_stats.seconds), phases[0][1])
        progress(force=True, stage="search")
    for limit, core in phases:
        if STOP["requested"]:
            break
        if best is not None:
            model.clear_hints()
            hint = canonical_starts(inst, best) if symmetry else best
            for v, t in zip(S, hint):
                model.add_hint(v, int(t))
            model.add(objective <= int(round(best_obj)))
            if bound is not None:
                model.add(objective >= int(np.ceil(bound - 1e-6)))
            fixing = _fix_starts(model, S, inst, int(round(best_obj)), hint, fixing)
        elif inst.upper_bound is not None:  # the model's own cap (build) and hint
            hint = None if inst.hint is None else (canonical_starts(inst, inst.hint) if symmetry else inst.hint)
            fixing = _fix_starts(model, S, inst, int(np.floor(inst.upper_bound + 1e-6)), hint, fixing)
        solver = _solver(cp_model, params, limit, core)
        solver.best_bound_callback = lambda b: progress(bound=float(b))
        code, error = _run(solver, model, _callback(cp_model, progress))
        if error is not None:
            return {**_answer(inst, symmetry, build_seconds, started), "status": "error", "message": error}
        if code is None:  # interrupted before the search began
            break
        status_name = solver.status_name(code)
        if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            obj = float(solver.objective_value)
            if best_obj is None or obj <= best_obj:
                best, best_obj = [int(solver.value(v)) for v in S], obj
        if code == cp_model.OPTIMAL:
            # below the objective only when a relative/absolute gap limit stopped it
            b = float(solver.best_objective_bound)
            final, bound = "optimal", b if bound is None else max(bound, b)
            break
        if code == cp_model.INFEASIBLE:
            if best is None:
                final = "infeasible"
                break
            # nothing below the best schedule's value (the search starts from Σ c ≤ it): optimal
            final, bound = "optimal", best_obj
            break
        if code == cp_model.MODEL_INVALID:
            return {**_answer(inst, symmetry, build_seconds, started), "status": "error",
                    "message": f"MODEL_INVALID: {model.validate()}"}
        b = float(solver.best_objective_bound)
        if abs(b) < 1e300:
            bound = b if bound is None else max(bound, b)
    if params.get("lns_only") and best is None and inst.hint is not None:
        best, best_obj = list(inst.hint), float(sum(inst.hint) + sum(inst.output))
        status_name = "improvement only"
    progress(force=True, objective=best_obj, bound=bound)
    answer = _answer(inst, symmetry, build_seconds, started)
    if lns_stats is not None:
        answer["lns"] = lns_stats.to_dict()
    if fixing is not None:
        answer["fixing"] = fixing
    if final != "optimal" and final != "infeasible":
        final = "interrupted" if STOP["requested"] else "time_limit"
        if best_obj is not None and bound is not None and bound >= best_obj - 1e-6:
            final = "optimal"
    answer.update(status=final, objective=best_obj, bound=bound, starts=best,
                  message=status_name or "interrupted before the search", phases=len(phases))
    return answer


def main() -> int:
    signal.signal(signal.SIGINT, _on_sigint)
    sys.stderr.write(READY_LINE)  # the parent forwards Ctrl-C only from now on
    sys.stderr.flush()
    try:
        request = json.loads(sys.stdin.read())
    except json.JSONDecodeError as exc:
        print(json.dumps({"status": "error", "message": f"bad request: {exc}"}))
        return 2
    try:
        answer = solve_request(request)
    except Exception as exc:  # noqa: BLE001 — one JSON answer whatever happens
        answer = {"status": "error", "objective": None, "bound": None, "starts": None, "seconds": 0.0,
                  "message": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
