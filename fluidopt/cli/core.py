"""Entry point: builds the click group and turns errors into one line and an exit code.

Exit codes: 0 success, 2 bad input or usage (one line on stderr), 130 interrupted,
1 internal error. ``--debug`` (anywhere on the command line) shows the traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from fluidopt import interrupts
from fluidopt.errors import FluidoptError



@click.group(
    name="fluidopt",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="fluidopt")
def app() -> None:
    """Optimisation models and an online executor for LLM-inference scheduling under
    KV-cache memory limits.

    Add --debug anywhere to see the traceback of an error.
    """


#: Modules under fluidopt.cli that each define ``register(app)``.
COMMAND_MODULES = ("instances", "deployments", "simulate", "capacity", "fluid", "mip", "sweep", "figures", "demo")

_registered = False


def _register_commands() -> None:
    global _registered
    if not _registered:
        for name in COMMAND_MODULES:
            importlib.import_module(f"fluidopt.cli.{name}").register(app)
        _registered = True


def _fail(message: str, code: int) -> int:
    print(f"fluidopt: {message}", file=sys.stderr)
    return code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code (no ``sys.exit``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    _register_commands()
    interrupts.clear()
    try:
        result = app.main(args=args, prog_name="fluidopt", standalone_mode=False)
        code = int(result) if isinstance(result, int) else 0
        if interrupts.seen() and code == 0:  # a solver stopped by Ctrl-C; its best answer was printed
            return _fail("interrupted (the results above are the best found until then)", 130)
        return code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        return _fail("interrupted", 130)
    except click.ClickException as exc:
        if debug:
            raise
        ctx_hint = " (see --help)" if isinstance(exc, click.UsageError) else ""
        return _fail(f"error: {exc.format_message()}{ctx_hint}", 2)
    except FluidoptError as exc:
        if debug:
            raise
        return _fail(f"error: {exc}", 2)
    except KeyboardInterrupt:
        if debug:
            raise
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: say so in one line unless --debug
        if debug:
            raise
        return _fail(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", 1)


def main() -> None:
    """Console-script entry point."""
    code = run()
    solver = sys.modules.get("fluidopt.solver")
    if solver is not None and solver.abandoned_solve_running():
        # a HiGHS thread left by a second Ctrl-C: a normal exit would abort inside it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
