"""Output helpers shared by all subcommands: one JSON object or a readable table."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from fluidopt.jsonable import to_jsonable  # re-exported: commands import it from here

#: Decorator adding ``--json`` (parameter ``as_json``) to a command.
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead of a table.")

# Wide enough that tables are never truncated when stdout is a file or a pipe.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False)

__all__ = [
    "console", "emit", "err_console", "fmt", "json_option", "print_json", "print_mapping", "print_table", "to_jsonable",
]


def print_json(data: Any) -> None:
    """Print ``data`` as one JSON object on stdout."""
    print(json.dumps(to_jsonable(data), indent=2, sort_keys=False))


def emit(data: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], None]) -> None:
    """Print ``data`` as JSON, or call ``render`` to print it for a person."""
    if as_json:
        print_json(data)
    else:
        render(data)


def fmt(value: Any) -> str:
    """Human formatting of a table cell: thousands separators, 4 significant digits."""
    value = to_jsonable(value)
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.4g}"
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def print_table(
    rows: Iterable[Sequence[Any]], columns: Sequence[str], title: str | None = None
) -> None:
    """Print rows under column headers; numbers right-aligned."""
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    rows = [list(r) for r in rows]
    for j, col in enumerate(columns):
        numeric = all(isinstance(to_jsonable(r[j]), (int, float)) for r in rows if r[j] is not None) and rows
        table.add_column(col, justify="right" if numeric else "left")
    for r in rows:
        table.add_row(*(fmt(v) for v in r))
    console.print(table)


def print_mapping(
    data: dict[str, Any], title: str | None = None, skip: Sequence[str] = (), time_unit: str = "s"
) -> None:
    """Print a flat mapping as a field / value / unit table.

    Units come from :mod:`fluidopt.cli.units`; ``time_unit`` is ``"rounds"`` for the
    unit-time model.
    """
    from fluidopt.cli.units import unit_of

    rows = [
        (k, v, unit_of(k, time_unit)) for k, v in data.items() if k not in skip and not isinstance(v, (dict, list))
    ]
    print_table(rows, ["field", "value", "unit"], title)
