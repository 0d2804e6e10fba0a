"""`fluidopt solve` (total-completion-time MIP) and `fluidopt score` (policies against it)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

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


def _solve(workload: Any, capacity: int, time_limit: float | None, gap: float | None, **kw: Any) -> Any:
    from fluidopt.tct import solve_tct

    sol = solve_tct(workload, capacity, time_limit=time_limit, gap=gap, **kw)
    if sol.status == "infeasible":
        raise SolverError("the completion-time MIP is infeasible")
    if sol.status == "error" or sol.starts is None:
        raise SolverError(f"the MIP solve failed ({sol.info.get('solver_status')}) and no schedule is known")
    return sol


def _common(f: Any) -> Any:
    f = click.option("--backend", type=click.Choice(["cpsat", "highs"]), default="cpsat", show_default=True,
                     help="Solver: the cumulative model in OR-Tools CP-SAT (run in a worker process; closes "
                          "small instances several times faster) or the time-indexed MIP in HiGHS (tighter "
                          "bounds on mid-size instances it cannot close).")(f)
    f = click.option("--requests", "-n", "requests", type=int, help="Use only the first K requests.")(f)
    f = click.option("--seed", type=int, default=None, help="Seed of generated workloads.")(f)
    f = click.option("--gap", type=float, default=None, help="Relative MIP gap at which to stop (default 1e-4).")(f)
    f = click.option("--time-limit", type=POSITIVE_SECONDS, default=None,
                     help="MIP solve time limit, s (default: none).")(f)
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

        A time-limited solve reports the best schedule found, the best lower bound and the
        gap (status time_limit); Ctrl-C stops the solver and reports the same. The schedule
        is replayed through the executor, which must accept it with the same Σ c_i.
        """
        from fluidopt.bounds.checker import check_schedule

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
            export=None if export is None else str(export),
        )
        check = check_schedule(workload, cap, sol.starts)
        data = {"workload": workload.name, "capacity": cap, **sol.to_dict(workload), "check": check.to_dict()}
        if schedule_out is not None:
            from fluidopt.io import atomic_path

            frame = workload.to_frame()[["id", "arrival", "prompt", "output"]]
            frame["start"] = sol.starts
            frame["completion"] = sol.starts + workload.output
            with atomic_path(schedule_out) as tmp:
                frame.to_csv(tmp, index=False)

        def render(d: dict[str, Any]) -> None:
            print_mapping({k: v for k, v in d.items() if k not in ("starts", "check")}, title="total completion time MIP")
            print(f"executor replay: {'accepted' if check.accepted else 'REJECTED'} (Σ c = {check.tct_executor})")

        emit(data, as_json, render)
        if not check.accepted:
            print("fluidopt: the executor rejected the MIP schedule: " + "; ".join(check.problems), file=sys.stderr)
            return 1
        return 0

    @app.command("bounds")
    @click.option("--workload", "-w", "workload_name", required=True, help="Trace or spec name, or a workload file.")
    @click.option("--capacity", "-C", type=int, help="KV capacity C, tokens (default: the workload's own).")
    @click.option("--seed", type=int, default=None, help="Seed of generated workloads.")
    @click.option("--requests", "-n", "requests", type=int, help="Use only the first K requests.")
    @click.option("--no-lp", is_flag=True, help="Skip the LP relaxation (the slowest of the three).")
    @click.option("--time-limit", type=POSITIVE_SECONDS, default=None,
                  help="LP relaxation time limit, s (default: none).")
    @json_option
    def bounds_cmd(workload_name: str, capacity: int | None, seed: int | None, requests: int | None, no_lp: bool,
                   time_limit: float | None, as_json: bool) -> None:
        """Lower bounds on the minimum total completion time Σ c_i (rounds) that scale
        past the MIP: trivial Σ(a_i + o_i), the memory-volume bound and the LP relaxation.

        Each is a bound on every schedule, hence on every policy run in the executor.
        """
        from fluidopt.bounds.tct import lower_bounds

        workload, cap = _instance(workload_name, capacity, seed, requests)
        data = {"workload": workload.name, "capacity": cap, "n_requests": len(workload),
                **lower_bounds(workload, cap, lp=not no_lp, time_limit=time_limit)}
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
        time_limit: float | None,
        gap: float | None,
        seed: int | None,
        requests: int | None,
        backend: str,
        policies: str,
        interval_alpha: float,
        as_json: bool,
    ) -> None:
        """Each policy's total completion time and its ratio to the MIP optimum (to the
        best lower bound when the optimum is not proven within --time-limit).

        Unit-time model. Amax and Amin need prediction intervals: when the workload has
        none, intervals of accuracy --interval-alpha are drawn with --seed (default 0);
        the other policies do not see them.
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
        sol = _solve(workload, cap, time_limit, gap, backend=backend)
        proven = sol.status == "optimal"
        reference = sol.objective_tct if proven else sol.best_bound
        rows: dict[str, dict[str, Any]] = {}
        for name, policy in policy_objs.items():
            try:
                run = simulate(workload, unit_deployment(cap), policy)
            except InputError as exc:
                rows[name] = {"tct": None, "ratio": None, "error": str(exc)}
                continue
            summ = run.summary()
            unfinished = int((~run.records["finished"]).sum())
            tct = float(summ["tct"]) if unfinished == 0 else None
            rows[name] = {
                "tct": tct,
                "ratio": None if tct is None or not reference else tct / reference,
                "evictions": int(run.records["evictions"].sum()),
                "wasted_tokens": int(run.records["wasted_tokens"].sum()),
                "unfinished": unfinished,
            }
        data = {
            "workload": workload.name,
            "capacity": cap,
            "n_requests": len(workload),
            "status": sol.status,
            "objective_tct": sol.objective_tct,
            "best_bound": sol.best_bound,
            "gap": sol.gap,
            "reference": reference,
            "reference_kind": "optimum" if proven else "bound",
            "seconds": sol.seconds,
            "intervals_added": intervals,
            "policies": rows,
        }

        def render(d: dict[str, Any]) -> None:
            kind = d["reference_kind"]
            table = [("MIP" + ("" if kind == "optimum" else f" ({d['status']}, gap {d['gap']:.3%})"), d["objective_tct"],
                      d["objective_tct"] / d["reference"] if d["reference"] else None, None, None)]
            for name, r in d["policies"].items():
                note = r.get("error") or (f"{r['unfinished']} unfinished" if r.get("unfinished") else "")
                table.append((name, r["tct"], r["ratio"], r.get("evictions"), note))
            print_table(table, ["schedule", "tct (rounds)", f"ratio to {kind}", "evictions", "note"],
                        title=f"{d['workload']}: {d['n_requests']} requests, C = {d['capacity']}")

        emit(data, as_json, render)
