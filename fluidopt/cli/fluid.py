"""`fluidopt` subcommands: fluid, fluid-lp, calibrate, plan.

Thin over ``fluidopt.bounds.fluid``, ``fluidopt.calibrate`` and ``fluidopt.models``;
heavy imports happen inside the commands so ``fluidopt --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

import click

from fluidopt.cli.output import emit, json_option, print_mapping, print_table
from fluidopt.cli.units import with_unit
from fluidopt.errors import FluidoptError, InputError


def _types_and_deployment(
    workload: str | None,
    types: str | None,
    deployment: str | None,
    d0: float | None,
    d1: float | None,
    capacity: int | None,
    output_bins: int | None,
    seed: int | None,
) -> tuple[list[Any], Any, dict[str, Any]]:
    """Resolve (--workload | --types) and (--deployment, --d0/--d1/--capacity)."""
    from fluidopt.bounds.fluid import parse_types
    from fluidopt.calibrate import resolve_deployment

    dep = resolve_deployment(deployment, d0=d0, d1=d1, capacity=capacity)
    if (workload is None) == (types is None):
        raise InputError("give exactly one of --workload W or --types RATE:PROMPT:OUTPUT[,...]")
    info: dict[str, Any] = {"deployment": dep.name, "capacity": dep.capacity}
    if types is not None:
        return parse_types(types), dep, {**info, "types_from": "command line"}
    from fluidopt.traces import load_workload

    from fluidopt.calibrate import arrays_from_workload

    w = load_workload(workload, seed=seed)
    # per-request means of V and u (not V at the mean lengths), rates count / span
    arrays = arrays_from_workload(w, dep, n_output_bins=output_bins).arrays
    return arrays, dep, {**info, "workload": w.name, "workload_digest": w.digest(), "types_from": "binning"}


def demand_of(types: Any) -> list[float]:
    """Rates of a list of FluidType or of FluidArrays (1/s)."""
    return [float(x) for x in types.rate] if hasattr(types, "rate") and not isinstance(types, list) else [t.rate for t in types]


def _common(f: Any) -> Any:
    opts = [
        click.option("--workload", "-w", help="Workload name or file; binned into types by output length."),
        click.option("--types", "types_spec", help="Explicit types RATE:PROMPT:OUTPUT[,...] (1/s, tokens, tokens)."),
        click.option("--deployment", "-d", help="Deployment name or YAML file (e.g. llama2-7b-a100)."),
        click.option("--d0", type=float, help="linear-kv fixed iteration cost, s (overrides the deployment)."),
        click.option("--d1", type=float, help="linear-kv cost per cached KV token, s (overrides)."),
        click.option("--capacity", "-C", type=int, help="KV capacity C, tokens (overrides)."),
        click.option("--output-bins", type=int, default=None, help="Output-length bins when binning a workload."),
        click.option("--seed", type=int, default=None, help="Seed for generated workloads."),
        json_option,
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _render_fluid(d: dict[str, Any]) -> None:
    print_mapping(d, title="fluid benchmark", skip=("c0",))
    print_table(
        [
            (t["label"], t["rate"], t["prompt"], t["output"], t["n_per_stage"], t["n_in_service"], t["latency"])
            for t in d["types"]
        ],
        ["type", "rate 1/s", "prompt", "output", "n per stage", "N in service", "latency s"],
    )


def _floats(spec: str | None, name: str) -> list[float | None] | float | None:
    """'3' → 3.0; '3,-,5' → [3.0, None, 5.0]."""
    if spec is None:
        return None
    parts = [p.strip() for p in spec.split(",")]
    try:
        vals = [None if p in ("-", "") else float(p) for p in parts]
    except ValueError:
        raise InputError(f"expected numbers separated by commas (got {spec!r})", field=name) from None
    return vals[0] if len(vals) == 1 else vals


def register(app: click.Group) -> None:
    """Add fluid, fluid-lp, calibrate and plan to ``app``."""

    @app.command("fluid")
    @_common
    def fluid_cmd(workload, types_spec, deployment, d0, d1, capacity, output_bins, seed, as_json) -> None:
        """Fluid benchmark: ΔT*, n*_j, M*, Thr* and the stable-region test.

        Times in seconds, rates per second, memory in KV tokens.
        """
        from fluidopt.bounds.fluid import FluidArrays, fluid_benchmark, fluid_from_arrays

        types, dep, info = _types_and_deployment(workload, types_spec, deployment, d0, d1, capacity, output_bins, seed)
        bench = fluid_from_arrays(types) if isinstance(types, FluidArrays) else fluid_benchmark(types, dep)
        out = {**bench.to_dict(), "inputs": info}
        emit(out, as_json, _render_fluid)

    @app.command("fluid-lp")
    @_common
    @click.option("--latency-target", help="End-to-end latency target L_j, s: one value or one per type ('-' = none).")
    @click.option("--ttft-target", type=float, help="TTFT target (bound on ΔT), s.")
    @click.option("--fairness", help="Admit at least φ_j·λ_j: one value or one per type.")
    @click.option("--values", "values_spec", help="Value per output token, one per type (default 1).")
    @click.option("--interface", type=click.Choice(["pyomo", "cvxpy"]), default="pyomo", show_default=True,
                  help="Modelling layer of the LP (both solve with HiGHS and give the same answer).")
    def fluid_lp_cmd(
        workload, types_spec, deployment, d0, d1, capacity, output_bins, seed, as_json,
        latency_target, ttft_target, fairness, values_spec, interface,
    ) -> None:
        """Fluid LP: the admitted rates that maximise throughput under capacity and targets."""
        from fluidopt.bounds.fluid import fluid_lp

        types, dep, info = _types_and_deployment(workload, types_spec, deployment, d0, d1, capacity, output_bins, seed)
        vals = _floats(values_spec, "values")
        res = fluid_lp(
            types,
            dep,
            latency_targets=_floats(latency_target, "latency-target"),
            ttft_target=ttft_target,
            fairness=_floats(fairness, "fairness"),
            values=[vals] * len(demand_of(types)) if isinstance(vals, float) else vals,
            interface=interface,
        )
        demand = demand_of(types)
        out = {**res.to_dict(), "demand_rates": demand, "inputs": info}

        def render(d: dict[str, Any]) -> None:
            print_mapping(d, title="fluid LP", skip=("labels",))
            if d["admitted_rates"] is not None:
                print_table(
                    [
                        (lab, lam, x, lam - x)
                        for lab, lam, x in zip(d["labels"], d["demand_rates"], d["admitted_rates"])
                    ],
                    ["type", "demand 1/s", "admitted 1/s", "shed 1/s"],
                )
                print_table(sorted(d["duals"].items()), ["row", "shadow price"])

        emit(out, as_json, render)

    @app.command("calibrate")
    @click.option("--workload", "-w", required=True, help="Workload name or file (a trace).")
    @click.option("--deployment", "-d", required=True, help="Deployment name or YAML file.")
    @click.option("--policy", "-p", type=click.Choice(["wait", "nested-wait"]), default="wait", show_default=True,
                  help="Policy whose thresholds are calibrated.")
    @click.option("--objective", type=click.Choice(["memory", "latency"]), default="latency", show_default=True,
                  help="WAIT: minimum pipeline memory or the queue-bound latency proxy.")
    @click.option("--epsilon", type=float, default=0.05, show_default=True, help="Threshold slack ε.")
    @click.option("--rule", "wait_rule", type=click.Choice(["paper", "advance"]), default="paper", show_default=True,
                  help="WAIT rule the latency proxy models: paper (non-eligible types pause) or advance "
                       "(the authors' simulator: resident stages always advance).")
    @click.option("--memory-rule", type=click.Choice(["auto", "pipeline", "chance"]), default="auto",
                  show_default=True, help="WAIT memory row: full pipeline Σ V n ≤ C, or the normal approximation.")
    @click.option("--output-bins", type=int, default=None, help="Output-length bins (WAIT types).")
    @click.option("--window", type=float, default=300.0, show_default=True, help="Rate-estimation window, s.")
    @click.option("--delta", type=float, default=0.01, show_default=True,
                  help="Overflow probability δ (Nested WAIT safety buffer, admission reserve).")
    @click.option("--reserve", "reserve", default="estimate", show_default=True,
                  help="Admission reserve written to the file: estimate (from the output lengths), simulate "
                       "(the estimate confirmed by simulation on the workload), a number of KV tokens, or none.")
    @click.option("--horizon", type=float, default=3600.0, show_default=True, help="Nested WAIT horizon T, s.")
    @click.option("--capacity", "-C", type=int, help="KV capacity C, tokens (overrides).")
    @click.option("--polish", type=int, default=0, show_default=True,
                  help="WAIT: rounds of ±1 moves confirmed by simulation on the workload (0 = none).")
    @click.option("--seed", type=int, default=None, help="Seed of generated workloads.")
    @click.option("-o", "--output", "output_path", required=True, type=click.Path(dir_okay=False),
                  help="Thresholds file to write (JSON, schema fluidopt.thresholds/1).")
    @json_option
    def calibrate_cmd(
        workload, deployment, policy, objective, epsilon, wait_rule, memory_rule, output_bins, window, delta, horizon,
        capacity, polish, reserve, seed, output_path, as_json,
    ) -> None:
        """Calibrate WAIT / Nested WAIT thresholds from a trace and write a thresholds file."""
        from fluidopt.calibrate import calibrate
        from fluidopt.io import check_output_path
        from fluidopt.traces import load_workload

        check_output_path(output_path)
        w = load_workload(workload, seed=seed)
        dep = _resolve(deployment, capacity)
        if reserve == "none":
            reserve = None
        elif reserve not in ("estimate", "simulate"):
            try:
                reserve = int(reserve)
            except ValueError:
                raise click.BadParameter("estimate, simulate, none or an integer", param_hint="--reserve") from None
        report = calibrate(
            w, dep, policy=policy, objective=objective, epsilon=epsilon, n_output_bins=output_bins,
            rule=wait_rule, memory_rule=memory_rule, window=window, delta=delta, horizon=horizon, polish=polish,
            reserve=reserve, path=output_path,
        )

        def render(d: dict[str, Any]) -> None:
            print_mapping(d, title=f"calibrated {policy} thresholds → {output_path}")
            print_mapping(d.get("solution", {}), title="solution")
            rows = d.get("thresholds", [])
            if rows:
                print_table([list(r.values()) for r in rows], [with_unit(k) for k in rows[0]])

        emit(report, as_json, render)

    @app.command("plan")
    @click.option("--workload", "-w", help="Workload name or file (binned into types).")
    @click.option("--types", "types_spec", help="Explicit types RATE:PROMPT:OUTPUT[,...].")
    @click.option("--gpus", required=True,
                  help="GPU kinds DEPLOYMENT:COST_PER_HOUR[:MAX_COUNT][,...], e.g. llama2-7b-a100:2.0.")
    @click.option("--latency-target", type=float, help="End-to-end fluid latency target for every type, s.")
    @click.option("--headroom", type=float, default=0.0, show_default=True,
                  help="Keep this fraction of every GPU's capacity free.")
    @click.option("--output-bins", type=int, default=None, help="Output-length bins when binning a workload.")
    @click.option("--seed", type=int, default=None, help="Seed of generated workloads.")
    @click.option("--capacities", "capacity_files", metavar="FILE[,FILE...]",
                  help="Plan with simulated capacities: `fluidopt capacity -o FILE.json` results on the same "
                       "workload and SLO, one per GPU kind, instead of the fluid limits.")
    @click.option("--capacity-policy", default=None,
                  help="With --capacities: the policy whose capacity is used (default: the best per kind).")
    @json_option
    def plan_cmd(workload, types_spec, gpus, latency_target, headroom, output_bins, seed, capacity_files,
                 capacity_policy, as_json) -> None:
        """Capacity planning: the cheapest GPU mix keeping every GPU inside its stable region,
        or (--capacities) within the share of it that a policy sustains under an SLO."""
        from fluidopt.bounds.fluid import parse_types
        from fluidopt.calibrate import types_from_workload
        from fluidopt.fleet import parse_gpus, plan

        if (workload is None) == (types_spec is None):
            raise InputError("give exactly one of --workload W or --types RATE:PROMPT:OUTPUT[,...]")
        kinds = parse_gpus(gpus)
        volume = work = derate = None
        used: list[dict[str, Any]] = []
        if capacity_files is not None:
            from fluidopt.capacity.planning import simulated_derates

            if workload is None:
                raise InputError("--capacities needs --workload: simulated capacities are for a workload's mix")
            files = [f.strip() for f in capacity_files.split(",") if f.strip()]
            derate, used = simulated_derates(files, kinds, workload, policy=capacity_policy)
        elif capacity_policy is not None:
            raise InputError("--capacity-policy needs --capacities")
        if types_spec is not None:
            types = parse_types(types_spec)
        else:
            import numpy as np

            from fluidopt.calibrate import arrays_from_workload
            from fluidopt.traces import load_workload

            w = load_workload(workload, seed=seed)
            types, _ = types_from_workload(w, n_output_bins=output_bins)
            # per-request means of V and of u on every kind
            per_kind = [arrays_from_workload(w, k.deployment, n_output_bins=output_bins).arrays for k in kinds]
            volume = per_kind[0].volume
            work = np.column_stack([a.work for a in per_kind])
        res = plan(types, kinds, latency_target=latency_target, headroom=headroom, volume=volume, work=work,
                   derate=derate)
        if res.status == "infeasible":
            raise FluidoptError(
                "no plan: the demand cannot be served within the GPU count limits"
                + (" and the latency target" if latency_target is not None else "")
            )
        out = {**res.to_dict(), "capacity_source": "simulated" if used else "fluid", "simulated_capacities": used}

        def render(d: dict[str, Any]) -> None:
            print_mapping(d, title="capacity plan")
            if d["simulated_capacities"]:
                print_table([(u["kind"], u["policy"], u["slo"], u["derate"], u["replications"], u["file"])
                             for u in d["simulated_capacities"]],
                            ["kind", "policy", "SLO", "share of fluid limit", "replications", "capacity search"],
                            title="per-GPU capacity: simulated under the SLO")
            else:
                print("per-GPU capacity: the fluid stable region (no SLO; --capacities plans with simulated ones)")
            for rows in (d["gpus"], d["routing"]):
                if rows:
                    print_table([list(r.values()) for r in rows], [with_unit(k) for k in rows[0]])

        emit(out, as_json, render)


def _resolve(deployment: str, capacity: int | None) -> Any:
    from fluidopt.deployment import load_deployment

    return load_deployment(deployment, capacity=capacity)
