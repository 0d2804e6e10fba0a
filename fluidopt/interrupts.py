"""Ctrl-C that the library caught instead of raising.

A solve stopped by SIGINT returns its best schedule and bound (status ``interrupted``)
rather than raising ``KeyboardInterrupt``, so that the command can still report them. The
solver layer records the interrupt here, and the command line exits with 130 after the
report, as an interrupted command should.
"""

from __future__ import annotations

_seen = False


def note() -> None:
    """Record that a Ctrl-C stopped some work early."""
    global _seen
    _seen = True


def seen() -> bool:
    """Whether a Ctrl-C was recorded since the last :func:`clear`."""
    return _seen


def clear() -> None:
    """Forget earlier interrupts (at the start of a command)."""
    global _seen
    _seen = False
