"""`fluidopt` subcommands: mip (being filled in by its issue)."""

from __future__ import annotations

import click


def register(app: click.Group) -> None:
    """Add this module's commands to ``app``."""
