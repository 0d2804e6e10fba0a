"""`fluidopt capacity`: the highest arrival rate a deployment sustains under an SLO, per policy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from fluidopt.cli.output import emit, err_console, json_option, print_table
from fluidopt.cli.simulate import parse_param
from fluidopt.errors import InputError


def register(app: click.Group) -> None:
    """Add ``capacity`` to ``app``."""
    app.add_command(capacity)


@click.command()
@click.option("--workload", "-w", "workload", required=True, help="Trace or spec name, or a workload file.")
@click.option("--deployment", "-d", "deployment", required=True, help="Deployment name or YAML.")
@click.option("--policy", "-p", "policies", required=True, help="Policies to compare, e.g. wait,sarathi,vllm.")
@click.option("--slo", "slo_text", required=True, metavar="TERMS",
              help="SLO, e.g. 'p99_ttft<=2.0,p99_tpot<=0.12' (seconds); see docs/capacity.md.")
@click.option("--requests", "-n", "requests", type=int, help="Use only the first K requests (as simulate -n).")
@click.option("--seed", type=int, default=None, help="Seed of generated workloads (first replication).")
@click.option("--capacity", "-C", type=int, help="KV capacity C in tokens (overrides the deployment's).")
@click.option("--replications", type=int, default=None,
              help="Workload replications: seeds S, S+1, … of a generated workload, or consecutive windows "
                   "of -n requests of a trace [default: 3, fewer if a trace has fewer windows].")
@click.option("--precision", type=float, default=0.02, show_default=True,
              help="Stop bisecting when the bracket's relative width hi/lo − 1 is at most this.")
@click.option("--param", "params", multiple=True, metavar="POLICY.KEY=VALUE",
              help="Policy parameter (repeatable), e.g. wait.advance_resident=true.")
@click.option("--warmup", type=float, default=0.0, show_default=True, help="Fraction of requests dropped at the start of the summary window.")
@click.option("--cooldown", type=float, default=0.0, show_default=True, help="Fraction of requests dropped at the end of the summary window.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local worker processes (default: all cores; 1 runs in-process).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run the probes on an existing Dask distributed scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--save-thresholds", "save_thresholds", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the thresholds files calibrated at each calibrated policy's max rate.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the result: .json (what --json prints; the input of plan --capacities) or a table "
                   "with one row per policy (.csv, .parquet).")
@json_option
def capacity(
    workload: str,
    deployment: str,
    policies: str,
    slo_text: str,
    requests: int | None,
    seed: int | None,
    capacity: int | None,
    replications: int | None,
    precision: float,
    params: tuple[str, ...],
    warmup: float,
    cooldown: float,
    workers: int | None,
    scheduler: str | None,
    save_thresholds: Path | None,
    output: Path | None,
    as_json: bool,
) -> None:
    """The largest arrival rate (requests/s, the workload time-scaled as simulate --rate
    does) at which each policy meets the SLO.

    The fluid stability limit brackets the search from above; bisection by simulation
    narrows it to --precision on every replication. max_rate is the first
    replication's (the workload simulate runs with the same -n and --seed;
    check_command confirms it), all_replications_rate the largest rate verified on
    every replication. wait and nested-wait are recalibrated at every probed rate.
    Details: docs/capacity.md.
    """
    from fluidopt.capacity import parse_policies, search_capacity
    from fluidopt.executor.slo import Slo

    slo = Slo.parse(slo_text)  # a bad SLO fails before any simulation
    specs = parse_policies(policies, [parse_param(p) for p in params])
    if output is not None and output.suffix.lower() not in (".json", ".csv", ".parquet"):
        raise InputError("output must end in .json, .csv or .parquet", source=str(output))
    show = sys.stderr.isatty() and not as_json

    def progress(evaluations: int, brackets: dict[str, tuple[float | None, float | None]]) -> None:
        if show:
            text = ", ".join(f"{k} [{_num(lo)}, {_num(hi)}]" for k, (lo, hi) in brackets.items())
            err_console.print(f"{evaluations} simulations: {text}")

    result = search_capacity(
        workload, deployment, specs, slo, requests=requests, seed=seed, capacity=capacity,
        replications=replications, precision=precision, warmup=warmup, cooldown=cooldown,
        workers=workers, scheduler=scheduler, progress=progress,
    )
    paths: dict[str, str] = {}
    if save_thresholds is not None:
        paths = _save_thresholds(result, save_thresholds)
    data = result.to_dict(thresholds_paths=paths)
    if output is not None:
        _write_output(result, data, output)
    emit(data, as_json, _render)


def _write_output(result: Any, data: dict[str, Any], path: Path) -> None:
    """The JSON result or the per-policy table, by extension, atomically."""
    if path.suffix.lower() == ".json":
        import json

        from fluidopt.io import atomic_path

        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(data, indent=2) + "\n")
    else:
        from fluidopt.cli.simulate import write_frames

        write_frames({path: result.to_frame()})


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"


def _save_thresholds(result: Any, folder: Path) -> dict[str, str]:
    """Write each calibrated policy's thresholds file at its max rate (atomically)."""
    from fluidopt.io import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for pc in result.policies:
        text = result.thresholds_file(pc)
        if text is None:
            continue
        target = folder / f"{pc.policy.name}.json"
        with atomic_path(target) as tmp:
            Path(tmp).write_text(text)
        paths[pc.policy.label] = str(target)
    return paths


def _render(d: dict[str, Any]) -> None:
    from fluidopt.executor.slo import Slo

    metrics = [t.metric for t in Slo.parse(d["slo"]).terms]
    reps = f"{d['replications']} replications by {d['replication_mode']}" if d["replications"] > 1 else "1 run"
    size = "" if d["requests"] is None else f", {d['requests']:,} requests"
    rows = []
    for p in d["policies"]:
        m = p["metrics"] or {}
        spread = p["spread"]
        rows.append([
            p["policy"], p["max_rate"], p["fail_rate"], p["fraction_of_fluid_limit"], p["limited_by"],
            p["all_replications_rate"], None if spread["n"] < 2 else f"{_num(spread['min'])}–{_num(spread['max'])}",
            *[m.get(k) for k in metrics], m.get("slo_attainment"), m.get("goodput_requests_per_s"), p["evaluations"],
        ])
    print_table(
        rows,
        ["policy", "max rate 1/s", "fails at", "of fluid", "limited by", "all replications", "replications' range",
         *metrics, "attainment", "goodput 1/s", "simulations"],
        title=(f"capacity of {d['deployment']} (C = {d['capacity']:,}) on {d['workload']}{size}: SLO {d['slo']}; "
               f"fluid limit {d['fluid_limit']:.4g}/s; {reps}; precision {d['precision']:.0%}; "
               f"{d['evaluations']} simulations in {d['seconds']:.1f} s on {d['workers']} worker(s)"),
    )
    for p in d["policies"]:
        if p["reason"]:
            print(f"{p['policy']}: {p['reason']}")
        if p["check_command"]:
            print(f"check {p['policy']}: {p['check_command']}")
    for note in d["notes"]:
        print(f"note: {note}")
