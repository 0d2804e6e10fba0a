"""`fluidopt solve` (total-completion-time MIP) and `fluidopt score` (policies against it)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from fluidopt.cli.output import emit, json_option, print_mapping, print_table
from fluidopt.errors import InputError, SolverError

#: A time limit: seconds > 0.
POSITIVE_SECONDS = click.FloatRange(min=0, min_open=True)

#: Policies that need a prediction interval (columns pred_lo, pred_hi).
INTERVAL_POLICIES = ("amax", "amin")


def _instance(workload_name: str, capacity: int | None, seed: int | None, requests: int | None) -> tuple[Any, int]:
    """The workload and its capacity: ``--capacity``, else the generator's recorded C."""
    from fluidopt.cli.simulate import _load_workload

    if requests is not None and requests < 1:
        raise InputError(f"--requests must be ≥ 1 (got {requests})")
    workload = _load_workload(workload_name, seed=seed, requests=requests, rate=None)
    if capacity is None:
        capacity = workload.meta.get("capacity")
        if not isinstance(capacity, int):
            raise InputError(f"{workload_name}: no capacity recorded with this workload; give --capacity C")
    if capacity < 1:
        raise InputError(f"--capacity must be a positive integer (got {capacity})")
    workload.check_capacity(int(capacity))
    return workload, int(capacity)


#: Default wall-clock budget of `solve` and `score`, s.
DEFAULT_TIME_LIMIT = 60.0


def _solve(workload: Any, capacity: int, time_limit: float | None, gap: float | None, **kw: Any) -> Any:
    from fluidopt.cli.progress import LiveLine, solve_status
    from fluidopt.completion.solve import solve_tct

    with LiveLine("solve") as status:
        sol = solve_tct(workload, capacity, time_limit=time_limit, gap=gap,
                        progress=lambda *event: status.update(solve_status(*event)), **kw)
    if sol.status == "infeasible":
        raise SolverError("the completion-time MIP is infeasible")
    if sol.status == "error" or sol.starts is None:
        raise SolverError(f"the MIP solve failed ({sol.info.get('solver_status')}) and no schedule is known")
    return sol


def _latency(workload: Any, objective_tct: float | None, bound: float | None) -> dict[str, Any]:
    """The result on total latency Σ (c_i − a_i), rounds: the same schedule and bound
    less the constant Σ a_i, so that a gap with late arrivals does not look small."""
    arrivals = float(np.sum(workload.arrival))
    obj = None if objective_tct is None else objective_tct - arrivals
    low = None if bound is None else bound - arrivals
    gap = None if obj is None or low is None else (0.0 if obj <= 0 else max(0.0, (obj - low) / obj))
    return {"objective_latency": obj, "bound_latency": low, "gap_latency": gap}


def _common(f: Any) -> Any:
    f = click.option("--backend", type=click.Choice(["cpsat", "highs"]), default="cpsat", show_default=True,
                     help="Solver: the cumulative model in OR-Tools CP-SAT (run in a worker process; closes "
                          "small instances several times faster) or the time-indexed MIP in HiGHS (tighter "
                          "bounds on mid-size instances it cannot close).")(f)
    f = click.option("--requests", "-n", "requests", type=int, help="Use only the first K requests.")(f)
    f = click.option("--seed", type=int, default=None, help="Seed of generated workloads.")(f)
    f = click.option("--method", type=click.Choice(["auto", "exact", "lagrangian"]), default="auto", show_default=True,
                     help="exact: bounds, neighbourhood search and the exact search (--backend); lagrangian: for "
                          "instances too large for the exact programs (real traces): Lagrangian bound and "
                          "price-guided schedules; auto: by the size of the time-indexed program.")(f)
    f = click.option("--no-paths", is_flag=True,
                     help="Skip the path bound in the bound stage (its time goes to the search).")(f)
    f = click.option("--bound-share", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=0.5,
                     show_default=True,
                     help="Largest share of the time limit for the bound stage (LP and path bound); 0.75 "
                          "certifies a little tighter at 40–60 requests, with slightly worse schedules.")(f)
    f = click.option("--improve", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.5, show_default=True,
                     help="Largest share of the time limit given to large-neighbourhood search for better "
                          "schedules before the exact search, which gets what it leaves (0: off).")(f)
    f = click.option("--gap", type=POSITIVE_SECONDS, default=None,
                     help="Relative gap at which to stop (default 1e-4).")(f)
    f = click.option("--time-limit", type=POSITIVE_SECONDS, default=DEFAULT_TIME_LIMIT,
                     show_default=True,
                     help="Wall-clock budget of the bound, search and improvement stages, s. A stopped solve "
                          "reports its best schedule, best bound and gap; on a terminal a live line shows them.")(f)
    f = click.option("--capacity", "-C", type=int, help="KV capacity C, tokens (default: the workload's own).")(f)
    f = click.option("--workload", "-w", "workload_name", required=True, help="Trace or spec name, or a workload file.")(f)
    return f


def register(app: click.Group) -> None:
    """Add this module's commands to ``app``."""

    @app.command("solve")
    @_common
    @click.option("--horizon", type=click.Choice(["incumbent", "serial"]), default="incumbent", show_default=True,
                  help="Deadline rule: per-request deadlines from an incumbent, or the textbook serial horizon.")
    @click.option("--no-aggregate", is_flag=True, help="Do not group identical requests.")
    @click.option("--no-mip-start", is_flag=True,
                  help="Do not give the best heuristic schedule to the solver (MIP start / CP-SAT hint).")
    @click.option("--builder", type=click.Choice(["arrays", "pyomo"]), default=None,
                  help="HiGHS only: build the MIP with numpy/scipy arrays (default) or the Pyomo reference.")
    @click.option("--export", type=click.Path(dir_okay=False, path_type=Path), help="Write the model (.mps or .lp).")
    @click.option("--schedule", "schedule_out", type=click.Path(dir_okay=False, path_type=Path),
                  help="Write the schedule (id, arrival, prompt, output, start, completion) as CSV.")
    @json_option
    def solve_cmd(
        workload_name: str,
        capacity: int | None,
        time_limit: float | None,
        gap: float | None,
        seed: int | None,
        requests: int | None,
        backend: str,
        improve: float,
        bound_share: float,
        no_paths: bool,
        method: str,
        horizon: str,
        no_aggregate: bool,
        no_mip_start: bool,
        builder: str | None,
        export: Path | None,
        schedule_out: Path | None,
        as_json: bool,
    ) -> int:
        """Minimum total completion time Σ c_i (unit-time rounds) of a workload, by the
        cumulative model in OR-Tools CP-SAT (default) or the time-indexed MIP in HiGHS
        (--backend highs), one thread unless told otherwise.

        Unit-time model: arrivals are read as rounds (rounded up to the next epoch) and
        every iteration takes one round, whatever the workload's own time unit.

        Stages: heuristic schedules and start windows; lower bounds (memory volume, the
        LP relaxation with peak-separation rows and, with CP-SAT, the path bound;
        --no-paths skips it); large-neighbourhood search for
        better schedules (--improve); the exact search from the best schedule; the
        schedule replayed through the executor, which must accept it with the same Σ c_i. A time-limited solve reports the best schedule,
        the best lower bound and the gap (status time_limit), also on total latency
        Σ (c_i − a_i); Ctrl-C stops it and reports the same.
        """
        if export is not None and export.suffix.lower() not in (".mps", ".lp"):
            raise InputError("export format must be .mps or .lp", source=str(export))
        if schedule_out is not None and schedule_out.suffix.lower() != ".csv":
            raise InputError("the schedule file must end in .csv", source=str(schedule_out))
        if backend == "cpsat" and builder is not None:
            raise InputError("--builder applies to --backend highs only")
        workload, cap = _instance(workload_name, capacity, seed, requests)
        sol = _solve(
            workload,
            cap,
            time_limit,
            gap,
            horizon=horizon,
            aggregate=not no_aggregate,
            mip_start=not no_mip_start,
            builder=builder or "arrays",
            backend=backend,
            improve=improve,
            bound_share=bound_share,
            method=method,
            path_bound=False if no_paths else None,
            export=None if export is None else str(export),
        )
        check = sol.info["check"]
        data = {"workload": workload.name, "capacity": cap, **sol.to_dict(workload)}
        data.update(_latency(workload, sol.objective_tct, sol.best_bound))
        if schedule_out is not None:
            from fluidopt.io import atomic_path

            frame = workload.to_frame()[["id", "arrival", "prompt", "output"]]
            frame["start"] = sol.starts
            frame["completion"] = sol.starts + workload.output
            with atomic_path(schedule_out) as tmp:
                frame.to_csv(tmp, index=False)

        def render(d: dict[str, Any]) -> None:
            print_mapping({k: v for k, v in d.items() if k not in ("starts", "check", "improve")},
                          title="total completion time (rounds)")
            print(f"executor replay: {'accepted' if check['accepted'] else 'REJECTED'} (Σ c = {check['tct_executor']})")

        emit(data, as_json, render)
        if not check["accepted"]:
            print("fluidopt: the executor rejected the schedule: " + "; ".join(check["problems"]), file=sys.stderr)
            return 1
        return 0

    @app.command("bounds")
    @click.option("--workload", "-w", "workload_name", required=True, help="Trace or spec name, or a workload file.")
    @click.option("--capacity", "-C", type=int, help="KV capacity C, tokens (default: the workload's own).")
    @click.option("--seed", type=int, default=None, help="Seed of generated workloads.")
    @click.option("--requests", "-n", "requests", type=int, help="Use only the first K requests.")
    @click.option("--no-lp", is_flag=True, help="Skip the LP relaxation and the path bound.")
    @click.option("--no-paths", is_flag=True, help="Skip the path bound.")
    @click.option("--no-lagrangian", is_flag=True, help="Skip the Lagrangian bound.")
    @click.option("--time-limit", type=POSITIVE_SECONDS, default=None,
                  help="Budget of the LP relaxation and the path bound together (default: the LP without a "
                       "limit, then 60 for the path bound), and of the Lagrangian price search (default: 30), s.")
    @json_option
    def bounds_cmd(workload_name: str, capacity: int | None, seed: int | None, requests: int | None, no_lp: bool,
                   no_paths: bool, no_lagrangian: bool, time_limit: float | None, as_json: bool) -> None:
        """Lower bounds on the minimum total completion time Σ c_i (rounds) that scale
        past the MIP: trivial Σ(a_i + o_i), memory volume, mean busy time, the LP
        relaxation of the time-indexed program with its peak-separation rows and the
        path relaxation (column generation over pseudo-schedules that respect memory
        with their next two completions) where the program can be built, and the
        Lagrangian relaxation of its memory rows (which reaches the LP's value on traces
        of thousands of requests).

        Each is a bound on every schedule, hence on every policy run in the executor
        (proofs in docs/bounds.md).
        """
        import time

        from fluidopt.bounds.tct import lower_bounds
        from fluidopt.cli.progress import LiveLine

        workload, cap = _instance(workload_name, capacity, seed, requests)
        started = time.monotonic()
        with LiveLine("bounds") as status:
            found = lower_bounds(workload, cap, lp=not no_lp, paths=not no_paths, lagrangian=not no_lagrangian,
                                 time_limit=time_limit,
                                 progress=lambda name, best: status.update(
                                     f"{time.monotonic() - started:6.1f} s {name}, best bound {best:,.0f}"))
        data = {"workload": workload.name, "capacity": cap, "n_requests": len(workload), **found}
        emit(data, as_json, lambda d: print_mapping(d, title=f"Lower bounds on Σ c_i, {d['n_requests']} requests, "
                                                              f"C = {d['capacity']}"))

    @app.command("score")
    @_common
    @click.option("--policies", "-p", default="mc-sf,h-sf,sorted-f,amax,amin", show_default=True,
                  help="Comma-separated policy names.")
    @click.option("--interval-alpha", type=float, default=0.5, show_default=True,
                  help="Accuracy α = lo/hi of the prediction intervals added for amax/amin when the workload has none.")
    @json_option
    def score_cmd(
        workload_name: str,
        capacity: int | None,
        time_limit: float,
        gap: float | None,
        seed: int | None,
        requests: int | None,
        backend: str,
        improve: float,
        bound_share: float,
        no_paths: bool,
        method: str,
        policies: str,
        interval_alpha: float,
        as_json: bool,
    ) -> None:
        """Each policy's total latency Σ (c_i − a_i) (unit-time rounds) and its certified
        bracket against the hindsight optimum OPT: OPT lies between the best lower bound
        and the best schedule known (the solver's or any policy's), so the policy's ratio
        to OPT lies in [policy / best schedule, policy / best bound]. The two ends meet
        when the optimum is proven.

        Unit-time model. Amax and Amin need prediction intervals: when the workload has
        none, intervals of accuracy --interval-alpha are drawn with --seed (default 0);
        the other policies do not see them. Every policy run counts as a schedule: a
        run that pauses or evicts still has a contiguous schedule with the same
        completion times (the argument in ``docs/bounds.md``).
        """
        from fluidopt.deployment import unit_deployment
        from fluidopt.executor.engine import simulate
        from fluidopt.executor.policy import make_policy

        names = [p.strip() for p in policies.split(",") if p.strip()]
        if not names:
            raise InputError("--policies is empty")
        workload, cap = _instance(workload_name, capacity, seed, requests)
        intervals = None
        if workload.pred_lo is None and any(p in INTERVAL_POLICIES for p in names):
            from fluidopt.generators import with_prediction_interval

            workload = with_prediction_interval(workload, interval_alpha, seed if seed is not None else 0)
            intervals = {"alpha": interval_alpha, "seed": seed if seed is not None else 0}
        policy_objs = {name: make_policy(name) for name in names}  # unknown names fail before the solve
        sol = _solve(workload, cap, time_limit, gap, backend=backend, improve=improve, bound_share=bound_share,
                     method=method, path_bound=False if no_paths else None)
        runs: dict[str, dict[str, Any]] = {}
        for name, policy in policy_objs.items():
            try:
                run = simulate(workload, unit_deployment(cap), policy)
            except InputError as exc:
                runs[name] = {"tct": None, "error": str(exc)}
                continue
            unfinished = int((~run.records["finished"]).sum())
            runs[name] = {
                "tct": float(run.summary()["tct"]) if unfinished == 0 else None,
                "evictions": int(run.records["evictions"].sum()),
                "wasted_tokens": int(run.records["wasted_tokens"].sum()),
                "unfinished": unfinished,
            }
        data = score_table(workload, cap, sol, runs)
        data.update(intervals_added=intervals, time_limit=time_limit)

        def render(d: dict[str, Any]) -> None:
            proven = d["reference_kind"] == "optimum"
            title = (f"{d['workload']}: {d['n_requests']} requests, C = {d['capacity']:,}; total latency in rounds; "
                     + ("optimum proven" if proven else
                        f"OPT in [{d['bound_latency']:,.0f}, {d['best_latency']:,.0f}] ({d['status']}, "
                        f"gap {d['gap_latency']:.2%} on latency)"))
            table = [("best schedule" + f" ({d['best_source']})", d["best_latency"], None, None, None, "")]
            for name, r in d["policies"].items():
                note = r.get("error") or (f"{r['unfinished']} unfinished" if r.get("unfinished") else "")
                table.append((name, r.get("latency"), r.get("ratio_to_best"), r.get("ratio_to_bound"),
                              r.get("evictions"), note))
            print_table(table, ["schedule", "total latency", "× OPT ≥", "× OPT ≤", "evictions", "note"], title=title)

        emit(data, as_json, render)


def score_table(workload: Any, capacity: int, sol: Any, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Certified brackets of policy runs against a solve (rounds).

    OPT ≥ ``sol.best_bound`` and OPT ≤ every schedule known: the solver's and each
    finished policy run's. Each policy gets ``ratio_to_best`` ≤ policy/OPT ≤
    ``ratio_to_bound`` on total latency Σ (c_i − a_i), and ``ratio`` (on Σ c_i, to the
    optimum when proven, else to the bound).
    """
    arrivals = float(np.sum(workload.arrival))
    best, source = sol.objective_tct, "solver"
    for name, r in runs.items():
        if r.get("tct") is not None and (best is None or r["tct"] < best):
            best, source = r["tct"], name
    status = sol.status
    bound = sol.best_bound
    if best is not None and bound is not None and bound >= best - 0.5:
        status = "optimal"
    proven = status == "optimal"
    reference = best if proven else bound
    best_lat = None if best is None else best - arrivals
    low_lat = None if bound is None else bound - arrivals
    rows: dict[str, dict[str, Any]] = {}
    for name, r in runs.items():
        tct = r.get("tct")
        lat = None if tct is None else tct - arrivals
        rows[name] = {
            **r,
            "latency": lat,
            "ratio": None if tct is None or not reference else tct / reference,
            "ratio_to_best": None if lat is None or not best_lat else lat / best_lat,
            "ratio_to_bound": None if lat is None or not low_lat else lat / low_lat,
        }
    gap_latency = None if best_lat is None or low_lat is None or best_lat <= 0 else max(0.0, (best_lat - low_lat) / best_lat)
    return {
        "workload": workload.name,
        "capacity": capacity,
        "n_requests": len(workload),
        "status": status,
        "objective_tct": sol.objective_tct,
        "best_bound": bound,
        "gap": sol.gap,
        "best_tct": best,
        "best_source": source,
        "best_latency": best_lat,
        "bound_latency": low_lat,
        "gap_latency": 0.0 if proven else gap_latency,
        "reference": reference,
        "reference_kind": "optimum" if proven else "bound",
        "seconds": sol.seconds,
        "policies": rows,
    }
