"""Running the reproduction notebooks.

Each notebook is a jupytext percent-format script in ``notebooks/`` (shipped as the
package ``fluidopt.notebooks``), one per published table or figure. It starts with::

    from fluidopt.reproduce import notebook_env
    env = notebook_env("wait_stability")

and then writes every figure and table through ``env.save_figure`` / ``env.save_table``,
so outputs are named ``<notebook>_<stem>.png|csv`` in one folder. Two modes:

- quick (``FLUIDOPT_QUICK=1``): a small version of every computation that runs in
  seconds; the test suite executes every notebook this way;
- full: the published setting; its figures and tables are committed under
  ``notebooks/figures/``.

Open a notebook in Jupyter with jupytext installed, or run it as a script.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fluidopt.errors import FluidoptError, InputError
from fluidopt.io import atomic_path

QUICK_ENV = "FLUIDOPT_QUICK"
OUT_ENV = "FLUIDOPT_FIGURES_DIR"
WORKERS_ENV = "FLUIDOPT_WORKERS"


@dataclass(frozen=True)
class NotebookEnv:
    """What a notebook needs to know about how it is being run.

    Attributes
    ----------
    name
        The notebook's name (file stem); prefixes every output file.
    quick
        Run the small version (seconds) instead of the published setting.
    out
        Folder for figures (PNG) and tables (CSV).
    workers
        Local worker processes for sweeps (``None``: all cores).
    """

    name: str
    quick: bool
    out: Path
    workers: int | None

    def path(self, stem: str, suffix: str) -> Path:
        return self.out / f"{self.name}_{stem}{suffix}"

    def save_figure(self, fig: Any, stem: str) -> Path:
        """Write ``fig`` as ``<name>_<stem>.png`` (atomically) and close it; a quick run's
        figure is stamped as such."""
        from fluidopt.figures import save

        target = self.path(stem, ".png")
        save(fig, str(target), quick=self.quick)
        return target

    def save_table(self, frame: Any, stem: str) -> Path:
        """Write a DataFrame as ``<name>_<stem>.csv`` (atomically)."""
        target = self.path(stem, ".csv")
        with atomic_path(target) as tmp:
            frame.to_csv(tmp, index=False)
        return target


def notebook_env(name: str) -> NotebookEnv:
    """The environment of the running notebook, read from ``FLUIDOPT_*`` variables.

    Without ``FLUIDOPT_FIGURES_DIR`` outputs go to ``notebooks/figures`` next to the
    notebook files (full mode) or ``figures-quick`` in the working directory (quick).
    """
    quick = os.environ.get(QUICK_ENV, "0") not in ("", "0", "false", "no")
    default = Path("figures-quick") if quick else notebook_dir() / "figures"
    out = Path(os.environ.get(OUT_ENV) or default)
    out.mkdir(parents=True, exist_ok=True)
    workers = os.environ.get(WORKERS_ENV)
    return NotebookEnv(name, quick, out, int(workers) if workers else None)


def notebook_dir() -> Path:
    """Folder holding the notebook scripts."""
    return Path(str(resources.files("fluidopt.notebooks")))


def notebook_names() -> list[str]:
    """Names of the shipped notebooks."""
    return sorted(p.stem for p in notebook_dir().glob("*.py") if not p.name.startswith("_"))


def run_notebook(name: str, *, quick: bool, out: Path, workers: int | None = None) -> dict[str, Any]:
    """Execute one notebook top to bottom in a fresh interpreter.

    Returns
    -------
    dict
        ``name``, ``quick``, ``seconds`` (wall clock) and the ``outputs`` it wrote.

    Raises
    ------
    InputError
        Unknown notebook name.
    FluidoptError
        The notebook failed; the message carries its last error line.
    """
    if name not in notebook_names():
        raise InputError(f"unknown notebook {name!r}; known: {', '.join(notebook_names())}")
    out.mkdir(parents=True, exist_ok=True)
    before = {p: p.stat().st_mtime for p in out.glob(f"{name}_*")}
    env = {**os.environ, QUICK_ENV: "1" if quick else "0", OUT_ENV: str(out.resolve()), "MPLBACKEND": "Agg"}
    if workers:
        env[WORKERS_ENV] = str(workers)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(notebook_dir() / f"{name}.py")], env=env, cwd=out,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise FluidoptError(f"notebook {name} failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
    outputs = sorted(str(p.name) for p in out.glob(f"{name}_*") if before.get(p) != p.stat().st_mtime)
    return {"name": name, "quick": quick, "seconds": seconds, "outputs": outputs}
