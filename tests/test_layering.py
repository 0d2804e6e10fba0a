"""The layers of the package: the library never imports the command line, and the
formulations in ``models/`` know no solver (their callers solve)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


LIBRARY = sorted(
    p for p in (REPO / "fluidopt").rglob("*.py") if "cli" not in p.relative_to(REPO / "fluidopt").parts
    and p.name != "__main__.py"
)
MODELS = sorted((REPO / "models").glob("*.py"))


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.relative_to(REPO).as_posix())
def test_library_does_not_import_the_cli(path: Path) -> None:
    bad = sorted(m for m in imported_modules(path) if m == "fluidopt.cli" or m.startswith("fluidopt.cli."))
    assert not bad, f"{path.relative_to(REPO)} imports {bad}"


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_formulations_know_no_solver(path: Path) -> None:
    """A modelling API (Pyomo, CVXPY, CP-SAT's model builder) is fine; a solver is not."""
    solvers = ("fluidopt.solver", "highspy", "pyomo.contrib.solver", "pyomo.opt")
    bad = sorted(m for m in imported_modules(path) if m.startswith(solvers))
    tree = ast.parse(path.read_text())
    nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Name, ast.Attribute))]
    names = {n.id if isinstance(n, ast.Name) else n.attr for n in nodes}
    called = sorted(names & {"SolverFactory", "CpSolver", "solve"})
    assert not bad and not called, f"{path.relative_to(REPO)} imports {bad}, uses {called}"


def test_to_jsonable_is_still_importable_from_the_cli_output_module() -> None:
    from fluidopt.cli.output import to_jsonable
    from fluidopt.jsonable import to_jsonable as low

    assert to_jsonable is low
