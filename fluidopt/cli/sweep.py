"""`fluidopt sweep`: run a grid of executor runs, resumable, locally or on Dask."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from fluidopt.cli.output import emit, err_console, json_option, print_table
from fluidopt.cli.progress import StatusLine
from fluidopt.cli.units import with_unit


def register(app: click.Group) -> None:
    """Add ``sweep`` to ``app``."""
    app.add_command(sweep)


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", "results", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Parquet results file (default: SPEC with .parquet). Finished cells in it are skipped.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local worker processes (default: all cores; 1 runs in-process).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run the cells on an existing Dask distributed scheduler, e.g. tcp://10.0.0.5:8786.")
@json_option
def sweep(spec: Path, results: Path | None, workers: int | None, scheduler: str | None, as_json: bool) -> None:
    """Run the grid of (workload × deployment × policy × parameters × seed) cells in SPEC.

    Each finished cell is appended to the results file at once; re-running the same
    spec resumes where it stopped. The spec schema is documented in fluidopt.sweep.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from fluidopt.sweep import SweepSpec, run_sweep

    parsed = SweepSpec.load(spec)
    target = results or spec.with_suffix(".parquet")
    columns = (TextColumn("cells"), BarColumn(), MofNCompleteColumn(), TextColumn("ETA"), TimeRemainingColumn())
    terminal = sys.stderr.isatty()
    status = StatusLine("sweep", "cells")
    with Progress(*columns, disable=not terminal, transient=True, console=err_console) as bar, \
            (contextlib.nullcontext() if terminal else status.heartbeat()):
        task = bar.add_task("cells", total=len(parsed.cells()))

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            if not terminal:
                status.update(done, total)

        frame = run_sweep(parsed, target, workers=workers, scheduler=scheduler, progress=progress)
    warned = int((frame["warning"].fillna("") != "").sum()) if "warning" in frame else 0
    if warned:
        print(f"fluidopt: warning: {warned} of {len(frame)} cells thrashed (see the column 'warning' of {target})",
              file=sys.stderr)
    summary = {
        "sweep": parsed.name,
        "results": str(target),
        "cells": len(frame),
        "columns": list(frame.columns),
        "cells_with_warnings": warned,
    }

    def render(data: dict) -> None:
        keep = [c for c in ("policy", "seed", "mean_latency", "throughput_tokens_per_s", "evictions") if c in frame]
        params = [c for c in frame.columns if c.startswith(("workload.", "policy."))]
        cols = ["policy", *params, *[c for c in keep if c != "policy"]]
        print_table(frame[cols].itertuples(index=False), [with_unit(c) for c in cols],
                    title=f"{parsed.name}: {len(frame)} cells → {target}")

    emit(summary, as_json, render)
