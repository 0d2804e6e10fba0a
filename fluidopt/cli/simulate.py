"""`fluidopt simulate`: run a policy on a workload and a deployment with the executor."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from fluidopt.cli.output import emit, json_option, print_mapping, print_table
from fluidopt.cli.progress import StatusLine
from fluidopt.errors import InputError

#: Runs with at least this many requests show a progress bar (when stderr is a terminal).
PROGRESS_MIN_REQUESTS = 20_000


def parse_param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` → (key, value); numbers, booleans, ``none`` and JSON lists or
    mappings (``segments=[[8,2],[19,2]]``) are parsed.

    Dashes in the key become underscores (``--param token-budget=256``).
    """
    if "=" not in text:
        raise InputError(f"--param expects KEY=VALUE (got {text!r})")
    key, raw = text.split("=", 1)
    key = key.strip().replace("-", "_")
    if not key:
        raise InputError(f"--param expects KEY=VALUE (got {text!r})")
    low = raw.strip().lower()
    value: Any
    if low[:1] in ("[", "{"):
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise InputError(f"--param {key}: not a valid JSON list or mapping ({exc})") from None
    elif low in ("true", "false"):
        value = low == "true"
    elif low in ("none", "null"):
        value = None
    else:
        try:
            value = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                value = raw
    return key, value


def print_slo_terms(d: dict[str, Any]) -> None:
    """The SLO's terms with their values on this run, and the verdict."""
    verdict = "holds" if d["slo_met"] else "violated"
    if d.get("slo_window_unfinished"):
        verdict += f" ({d['slo_window_unfinished']} request(s) of the window unfinished)"
    print_table(
        [(t["term"], t["value"], t["ok"]) for t in d["slo_terms"]],
        ["SLO term", "value", "ok"],
        title=f"SLO {d['slo']}: {verdict}",
    )


#: Endings of the record and event files.
FRAME_SUFFIXES = (".parquet", ".csv")


def write_frames(frames: dict[Path, Any]) -> None:
    """Write DataFrames as Parquet or CSV (by extension): all of them or none."""
    from fluidopt.io import atomic_paths

    paths = list(frames)
    with atomic_paths(*paths) as temps:
        for path, tmp in zip(paths, temps):
            if path.suffix.lower() == ".parquet":
                frames[path].to_parquet(tmp, engine="pyarrow", index=False)
            else:
                frames[path].to_csv(tmp, index=False)


def register(app: click.Group) -> None:
    """Add this module's commands to ``app``."""

    @app.command("simulate")
    @click.option("--workload", "-w", "workload_name", required=True, help="Trace or spec name, or a workload file.")
    @click.option("--deployment", "-d", "deployment_name", required=True, help="Deployment name or YAML; 'unit' for unit time.")
    @click.option("--policy", "-p", "policy_name", required=True, help="Registered policy name.")
    @click.option("--thresholds", type=click.Path(dir_okay=False, path_type=Path), help="Thresholds file (wait, nested-wait).")
    @click.option("--capacity", "-C", type=int,
                  help="KV capacity C in tokens (overrides the deployment's; required for unit).")
    @click.option("--seed", type=int, default=None, help="Seed of generated workloads and arrival processes.")
    @click.option("--requests", "-n", "requests", type=int, help="Use only the first K requests.")
    @click.option("--rate", type=click.FloatRange(min=0, min_open=True),
                  help="Arrival rate (requests/s) passed to the workload loader.")
    @click.option("--interval-alpha", type=float, help="Add prediction intervals of accuracy α = lo/hi (Amax, Amin).")
    @click.option("--point-eps", type=float, help="Add point predictions õ ~ U[(1−ε)o, (1+ε)o] (MC-SF, SF).")
    @click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Policy parameter (repeatable).")
    @click.option("--warmup", type=float, default=0.0, show_default=True, help="Fraction of requests dropped at the start of the summary window.")
    @click.option("--cooldown", type=float, default=0.0, show_default=True, help="Fraction of requests dropped at the end of the summary window.")
    @click.option("--max-iterations", type=int, help="Stop after this many iterations (rest reported unfinished).")
    @click.option("--slo", "slo_text", metavar="TERMS",
                  help="SLO, e.g. 'p99_ttft<=2.0,p99_tpot<=0.12' (s): adds the verdict, SLO attainment and goodput.")
    @click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path), help="Per-request records (.parquet or .csv).")
    @click.option("--events", "events_path", type=click.Path(dir_okay=False, path_type=Path), help="Per-iteration event log (.parquet or .csv).")
    @json_option
    def simulate_cmd(
        workload_name: str,
        deployment_name: str,
        policy_name: str,
        thresholds: Path | None,
        capacity: int | None,
        seed: int | None,
        requests: int | None,
        rate: float | None,
        interval_alpha: float | None,
        point_eps: float | None,
        params: tuple[str, ...],
        warmup: float,
        cooldown: float,
        max_iterations: int | None,
        slo_text: str | None,
        output: Path | None,
        events_path: Path | None,
        as_json: bool,
    ) -> None:
        """Run POLICY on a workload served by a deployment and report the metrics.

        Times are in seconds (rounds for --deployment unit, where tct = Σ c_i with
        c_i = start epoch + o_i for uninterrupted runs). With --slo, every upper bound on
        ttft/tpot/latency is also a per-request deadline: the summary adds slo_met,
        slo_attainment and goodput (requests/s, tokens/s of requests within their
        deadlines), and the records file a meets_slo column. Without --capacity, a
        deployment without its own capacity (unit) uses the workload's capacity when
        its generator recorded one (e.g. the [KV] synthetic specs). Predictions added
        with --interval-alpha / --point-eps are seeded with --seed (default 0).
        """
        from fluidopt.deployment import load_deployment
        from fluidopt.executor.diagnostics import thrash_warning
        from fluidopt.executor.engine import simulate
        from fluidopt.executor.policy import make_policy
        from fluidopt.executor.slo import as_slo

        slo = as_slo(slo_text)  # parsed first: a bad SLO fails before the run
        from fluidopt.io import check_output_path

        for path in (output, events_path):
            if path is not None:
                check_output_path(path, FRAME_SUFFIXES)
        if requests is not None and requests < 1:
            raise InputError(f"--requests must be ≥ 1 (got {requests})")
        workload = _load_workload(workload_name, seed=seed, requests=requests, rate=rate)
        pseed = seed if seed is not None else 0
        if interval_alpha is not None or point_eps is not None:
            from fluidopt.generators import with_point_prediction, with_prediction_interval

            if interval_alpha is not None:
                workload = with_prediction_interval(workload, interval_alpha, pseed)
            if point_eps is not None:
                workload = with_point_prediction(workload, point_eps, pseed)
        deployment = load_deployment(deployment_name, capacity=capacity)
        if deployment.capacity is None and isinstance(workload.meta.get("capacity"), int):
            deployment = deployment.with_capacity(workload.meta["capacity"])
        elif deployment.capacity is not None:  # an error blames the option or the deployment, not the workload
            workload.check_capacity(
                deployment.capacity,
                origin="--capacity" if capacity is not None else f"the capacity of deployment {deployment.name}",
            )
        kwargs = dict(parse_param(p) for p in params)
        key = "segments" if policy_name == "nested-wait" else "thresholds"
        if thresholds is not None:
            from fluidopt.threshold_file import load_thresholds

            kwargs[key] = load_thresholds(thresholds)
        elif policy_name in ("wait", "nested-wait") and key not in kwargs:
            raise InputError(
                f"-p {policy_name} needs --thresholds FILE (write one with: fluidopt calibrate -w WORKLOAD "
                f"-d DEPLOYMENT --policy {policy_name} -o FILE)"
            )
        policy = make_policy(policy_name, **kwargs)
        # a bar on a terminal for big runs; elsewhere (and for small runs that turn out
        # slow) rate-limited status lines
        progress = (sys.stderr.isatty() and len(workload) >= PROGRESS_MIN_REQUESTS) or StatusLine(
            "simulate", "requests"
        )
        result = simulate(
            workload,
            deployment,
            policy,
            event_log=events_path is not None,
            progress=progress,
            max_iterations=max_iterations,
        )
        frames = {}
        if output is not None:
            frames[output] = result.to_frame(slo=slo)
        if events_path is not None and result.events is not None:
            frames[events_path] = result.events
        write_frames(frames)
        data = result.to_dict(warmup=warmup, cooldown=cooldown, slo=slo)
        data["seed"] = seed if seed is not None else workload.meta.get("seed")
        data["thresholds"] = str(thresholds) if thresholds is not None else None
        data["records_file"] = str(output) if output is not None else None
        data["warnings"] = [w for w in (thrash_warning(result),) if w]
        for warning in data["warnings"]:
            print(f"fluidopt: warning: {warning}", file=sys.stderr)

        def render(d: dict[str, Any]) -> None:
            print_mapping(
                d,
                title=f"{d['policy']} on {d['workload']} · {d['deployment']} (C = {d['capacity']:,} tokens)",
                skip=("workload_meta", "params", "run", "warmup", "cooldown"),
                time_unit="rounds" if d["time_model"] == "unit" else "s",
            )
            if d.get("slo_terms"):
                print_slo_terms(d)

        emit(data, as_json, render)


def _load_workload(name: str, *, seed: int | None, requests: int | None, rate: float | None) -> Any:
    """A workload by trace/spec name or path, through ``fluidopt.traces`` when present."""
    try:
        from fluidopt.traces import load_workload
    except ModuleNotFoundError:  # loader not installed: our own file schema only
        import pandas as pd

        from fluidopt.workload import Workload

        path = Path(name)
        if not path.exists():
            raise InputError(f"no such workload file {name!r}") from None
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        w = Workload.from_frame(frame, name=path.stem, source=str(path))
        return w.head(requests) if requests else w
    kwargs: dict[str, Any] = {"seed": seed, "requests": requests}
    if rate is not None:
        kwargs["rate"] = rate
    return load_workload(name, **kwargs)
