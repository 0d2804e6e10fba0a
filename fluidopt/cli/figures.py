"""`fluidopt figures`: regenerate the reproduced figures and tables."""

from __future__ import annotations

from pathlib import Path

import click

from fluidopt.cli.output import emit, err_console, json_option, print_table


def register(app: click.Group) -> None:
    """Add ``figures`` to ``app``."""
    app.add_command(figures)


@click.command()
@click.argument("name")
@click.option("--quick", is_flag=True, help="Small version of every computation (seconds, not the published setting).")
@click.option("-o", "--output", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for PNG and CSV outputs (default: notebooks/figures, or ./figures-quick with --quick).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Local worker processes for sweeps.")
@json_option
def figures(name: str, quick: bool, out: Path | None, workers: int | None, as_json: bool) -> None:
    """Run notebook NAME (or `all`) top to bottom and write its figures and tables.

    `fluidopt figures list` lists the notebooks.
    """
    from fluidopt.reproduce import notebook_dir, notebook_names, run_notebook

    if name == "list":
        emit({"notebooks": notebook_names()}, as_json,
             lambda d: print_table([(n,) for n in d["notebooks"]], ["notebook"]))
        return
    target = out or (Path("figures-quick") if quick else notebook_dir() / "figures")
    names = notebook_names() if name == "all" else [name]
    runs = []
    for nb in names:
        if not as_json:
            err_console.print(f"running {nb}{' (quick)' if quick else ''} …")
        runs.append(run_notebook(nb, quick=quick, out=target, workers=workers))
    emit({"output_dir": str(target), "runs": runs}, as_json,
         lambda d: print_table([(r["name"], r["seconds"], len(r["outputs"])) for r in d["runs"]],
                               ["notebook", "seconds", "files written"], title=f"outputs in {d['output_dir']}"))
