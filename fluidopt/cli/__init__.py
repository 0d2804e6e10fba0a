"""The ``fluidopt`` command line: thin subcommands over the library."""

from fluidopt.cli.app import app, main

__all__ = ["app", "main"]
