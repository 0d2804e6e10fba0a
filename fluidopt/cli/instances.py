"""`fluidopt instances`: list, inspect and generate workloads.

- ``instances list`` — the registered traces and the shipped workload specs.
- ``instances show NAME_OR_PATH`` — summary statistics of one workload, optionally
  checked against a KV capacity and binned into types.
- ``instances generate SPEC -o FILE`` — write a workload in our schema (CSV, gzip CSV or
  Parquet, by extension), atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from fluidopt.cli.output import emit, json_option, print_mapping, print_table
from fluidopt.errors import InputError

_OUTPUT_SUFFIXES = (".csv", ".csv.gz", ".parquet")


def _int_list(text: str | None, what: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"expected comma-separated integers (got {text!r})", field=what) from None


def _workload_name(positional: str | None, option: str | None) -> str:
    """The workload, given as the argument or as ``-w/--workload`` (as in the other commands)."""
    if (positional is None) == (option is None):
        raise click.UsageError("give the workload once: as an argument or as -w/--workload")
    return positional or option  # type: ignore[return-value]


def _workload_options(f: Any) -> Any:
    """Options shared by ``show`` and ``generate`` (applied bottom-up)."""
    for opt in reversed(
        [
            click.option("--workload", "-w", "workload_option", default=None,
                         help="The workload (trace or spec name, or a file), instead of the argument."),
            click.option("--seed", type=int, default=None, help="Seed of generated specs and of generated arrivals."),
            click.option(
                "--rate", type=click.FloatRange(min=0, min_open=True), default=None,
                help="Requests/s: spec total rate, arrival rate of length-statistics traces (default 1), "
                "or time rescaling of a timestamped trace.",
            ),
            click.option("--requests", "-n", type=int, default=None,
                         help="The first K requests; a spec generates K even above its own n."),
            click.option(
                "--capacity", "-C", type=int, default=None,
                help="KV capacity C (tokens): fail if some request needs prompt + output > C.",
            ),
            click.option(
                "--max-total-tokens", type=int, default=None,
                help="Drop (or with --overlong clip, clip) requests with prompt + output above this; logged.",
            ),
            click.option("--overlong", type=click.Choice(["filter", "clip"]), default="filter", show_default=True,
                         help="With --max-total-tokens: drop the longer requests, or clip them to it."),
        ]
    ):
        f = opt(f)
    return f


def _load(name: str, seed: int | None, rate: float | None, requests: int | None, capacity: int | None,
          max_total_tokens: int | None, overlong: str) -> Any:
    from fluidopt.traces import load_workload

    w = load_workload(
        name, seed=seed, rate=rate, requests=requests, max_total_tokens=max_total_tokens, overlong=overlong
    )
    cap = capacity if capacity is not None else w.meta.get("capacity")
    if cap is not None:
        if cap < 2:
            raise InputError(f"capacity must be ≥ 2 tokens (got {cap})", field="capacity")
        w.check_capacity(int(cap), origin="--capacity" if capacity is not None else None)
    return w, cap


def register(app: click.Group) -> None:
    """Add this module's commands to ``app``."""

    @app.group("instances")
    def instances() -> None:
        """Workloads: registered traces, shipped specs, files in our schema."""

    @instances.command("list")
    @json_option
    def list_cmd(as_json: bool) -> None:
        """List the registered traces and the shipped workload specs."""
        from fluidopt.generators import read_spec
        from fluidopt.traces import TRACES, spec_dir, spec_names

        rows: list[dict[str, Any]] = []
        for t in TRACES.values():
            rows.append(
                {
                    "name": t.name, "kind": "trace", "n_requests": t.n_requests, "timestamps": t.timestamps,
                    "licence": t.licence, "description": t.description,
                }
            )
        for s in spec_names():
            spec = read_spec(spec_dir() / f"{s}.yaml")
            params = spec.get("params") or {}
            rows.append(
                {
                    "name": s, "kind": "spec", "n_requests": params.get("n"), "generator": spec.get("generator"),
                    "seed": spec.get("seed", 0), "description": " ".join(str(spec.get("description", "")).split()),
                }
            )

        def render(data: dict[str, Any]) -> None:
            print_table(
                [
                    (r["name"], r["kind"], r["n_requests"], r.get("licence") or r.get("generator"),
                     _short(r["description"], 48))
                    for r in data["instances"]
                ],
                ["name", "kind", "requests", "licence / generator", "description"],
                title="Workloads (fluidopt instances show NAME)",
            )

        emit({"instances": rows}, as_json, render)

    @instances.command("show")
    @click.argument("name_or_path", required=False)
    @_workload_options
    @click.option("--output-bins", type=int, default=None, help="Also bin into N quantile types by output length.")
    @click.option("--output-edges", default=None, help="Also bin by output length: inclusive upper bounds, e.g. 20,50.")
    @click.option("--prompt-edges", default=None, help="With a binning option: prompt upper bounds, e.g. 1024.")
    @json_option
    def show_cmd(
        name_or_path: str | None, workload_option: str | None, seed: int | None, rate: float | None,
        requests: int | None, capacity: int | None,
        max_total_tokens: int | None, overlong: str, output_bins: int | None, output_edges: str | None,
        prompt_edges: str | None, as_json: bool,
    ) -> None:
        """Summary statistics of a trace, spec or file (NAME_OR_PATH, or -w NAME_OR_PATH)."""
        from fluidopt.traces import check_workload_name

        name_or_path = _workload_name(name_or_path, workload_option)
        w, cap = _load(name_or_path, seed, rate, requests, capacity, max_total_tokens, overlong)
        data = {"kind": check_workload_name(name_or_path), **w.stats(), "capacity": cap}
        if cap is not None:
            data["fits_capacity"] = True  # check_capacity raised otherwise
        oe, pe = _int_list(output_edges, "output_edges"), _int_list(prompt_edges, "prompt_edges")
        if output_bins is not None or oe is not None or pe is not None:
            from fluidopt.binning import bin_types

            table = bin_types(w, output_edges=oe, n_output_bins=output_bins, prompt_edges=pe)
            data["types"] = table.to_dict()["types"]

        def render(d: dict[str, Any]) -> None:
            print_mapping(d, title=f"{w.name} ({d['kind']})", skip=("digest", "source"))
            if "types" in d:
                print_table(
                    [
                        (t["label"], _rng(t["output_range"]), _rng(t["prompt_range"]), t["count"], t["rate"],
                         t["prompt_mean"], t["output_mean"])
                        for t in d["types"]
                    ],
                    ["type", "output", "prompt", "count", "rate/s", "prompt mean", "output mean"],
                    title="Types",
                )

        emit(data, as_json, render)

    @instances.command("generate")
    @click.argument("spec", required=False)
    @click.option("-o", "--output", "out", required=True, help="Output file: .csv, .csv.gz or .parquet.")
    @_workload_options
    @json_option
    def generate_cmd(
        spec: str | None, out: str, workload_option: str | None, seed: int | None, rate: float | None,
        requests: int | None, capacity: int | None,
        max_total_tokens: int | None, overlong: str, as_json: bool,
    ) -> None:
        """Write the workload SPEC (spec name, YAML path, trace or file; or -w SPEC) to FILE in our schema."""
        from fluidopt.io import atomic_path, check_output_path

        spec = _workload_name(spec, workload_option)
        target = check_output_path(out, _OUTPUT_SUFFIXES)
        suffix = next(s for s in _OUTPUT_SUFFIXES if target.name.lower().endswith(s))
        w, cap = _load(spec, seed, rate, requests, capacity, max_total_tokens, overlong)
        frame = w.to_frame()
        with atomic_path(target) as tmp:
            if suffix == ".parquet":
                from fluidopt.traces import write_parquet

                write_parquet(w, tmp)
            else:
                frame.to_csv(tmp, index=False, compression="gzip" if suffix == ".csv.gz" else None)
        data = {
            "path": str(target), "name": w.name, "n_requests": len(w), "digest": w.digest(),
            "seed": w.meta.get("seed"), "capacity": cap, "columns": list(frame.columns),
        }
        emit(data, as_json, lambda d: print_mapping(d, title=f"wrote {target}"))


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _rng(r: Any) -> str:
    return "–" if r is None else (f"{r[0]}" if r[0] == r[1] else f"{r[0]}–{r[1]}")
