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

Ctrl-C (SIGINT) stops the search and the answer carries the best schedule found and the
bound with status ``interrupted``: the search runs in a helper thread while the main
thread waits in short slices, so that the Python SIGINT handler (installed by
:func:`main`, idempotent, no exception raised) runs promptly and calls ``StopSearch``.
CP-SAT's own SIGINT catching is switched off so that Python sees the signal.
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


def _on_sigint(signum: int, frame: Any) -> None:
    """Stop the search (idempotent: Ctrl-C at a terminal reaches this process directly
    and a second time through the parent, which forwards it)."""
    STOP["requested"] = True
    solver = STOP.get("solver")
    if solver is not None:
        solver.stop_search()


def solve_request(request: dict[str, Any]) -> dict[str, Any]:
    """Build and solve one request (see module docstring); never raises for a time limit
    or an interrupt."""
    from ortools.sat.python import cp_model

    from fluidopt.models.tct_cpsat import CpsatInstance, build, symmetry_chains

    params = dict(request.get("params") or {})
    inst = CpsatInstance.from_json(request["instance"])
    t0 = time.perf_counter()
    symmetry = bool(params.get("symmetry", True))
    model, S, _ = build(inst, symmetry=symmetry)
    build_seconds = time.perf_counter() - t0

    solver = cp_model.CpSolver()
    p = solver.parameters
    p.num_workers = int(params.get("workers") or 1)
    p.catch_sigint_signal = False
    p.log_search_progress = bool(params.get("verbose", False))
    if params.get("time_limit") is not None:
        p.max_time_in_seconds = float(params["time_limit"])
    if params.get("gap") is not None:
        p.relative_gap_limit = float(params["gap"])
    if params.get("linearization_level") is not None:
        p.linearization_level = int(params["linearization_level"])
    p.random_seed = int(params.get("seed", 0))
    for key, value in (params.get("extra") or {}).items():
        setattr(p, key, value)

    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["status"] = solver.solve(model)
        except BaseException as exc:  # noqa: BLE001 — reported in the answer
            box["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            done.set()

    started = time.perf_counter()
    STOP["solver"] = solver
    if not STOP["requested"]:
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        while not done.wait(0.05):
            if STOP["requested"]:  # again each slice: a stop sent before the search began is lost
                solver.stop_search()
    interrupted = bool(STOP["requested"])
    seconds = time.perf_counter() - started
    answer: dict[str, Any] = {
        "seconds": seconds,
        "build_seconds": build_seconds,
        "n_intervals": int(sum(inst.output)),
        "n_symmetry_rows": sum(len(c) - 1 for c in symmetry_chains(inst)) if symmetry else 0,
        "objective": None,
        "bound": None,
        "starts": None,
        "message": "",
    }
    if interrupted and "status" not in box and "error" not in box:
        return {**answer, "status": "interrupted", "message": "interrupted before the search"}
    if "error" in box:
        return {**answer, "status": "error", "message": box["error"]}
    status = box["status"]
    name = solver.status_name(status)
    answer["message"] = name
    has_solution = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    if has_solution:
        answer["starts"] = [int(solver.value(v)) for v in S]
        answer["objective"] = float(solver.objective_value)
    if status == cp_model.OPTIMAL:
        answer["status"] = "optimal"
        answer["bound"] = answer["objective"]
    elif status == cp_model.INFEASIBLE:
        answer["status"] = "infeasible"
    elif status == cp_model.MODEL_INVALID:
        answer["status"] = "error"
        answer["message"] = f"MODEL_INVALID: {model.validate()}"
    else:  # FEASIBLE or UNKNOWN: stopped by the limit or by Ctrl-C
        answer["status"] = "interrupted" if interrupted else "time_limit"
        bound = float(solver.best_objective_bound)
        answer["bound"] = bound if abs(bound) < 1e300 else None
    return answer


def main() -> int:
    signal.signal(signal.SIGINT, _on_sigint)
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
