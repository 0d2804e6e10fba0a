"""The ``fluidopt`` command line: thin subcommands over the library."""

from fluidopt.cli.core import app, main

__all__ = ["app", "main"]
