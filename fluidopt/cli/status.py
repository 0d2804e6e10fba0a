"""A live one-line status on stderr for long commands.

On a terminal the line is rewritten in place (at most five times a second) and erased
when the command ends; otherwise (a log file, CI) a full line is printed at most once per
``period`` seconds, so long runs are never silent and short ones print nothing.
"""

from __future__ import annotations

import sys
import time
from typing import IO


class StatusLine:
    """Rate-limited status line.

    Parameters
    ----------
    stream
        Where to write (default ``sys.stderr``).
    period
        Seconds between two printed lines when the stream is not a terminal.
    enabled
        ``False`` prints nothing (e.g. ``--json`` runs that must keep stderr quiet are
        still allowed a status; pass ``False`` to silence it).
    """

    def __init__(self, stream: IO[str] | None = None, *, period: float = 30.0, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.period = period
        self.enabled = enabled
        self.started = time.perf_counter()
        self.last = 0.0 if self.tty else self.started
        self.width = 0

    def update(self, text: str, *, force: bool = False) -> None:
        """Show ``text`` if enough time has passed since the last line (or ``force``)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < (0.2 if self.tty else self.period):
            return
        self.last = now
        if self.tty:
            pad = max(0, self.width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self.width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Erase the line on a terminal."""
        if self.enabled and self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0

    def __enter__(self) -> StatusLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def solve_status(stage: str, elapsed: float, objective: float | None, bound: float | None) -> str:
    """The status text of a completion-time solve (rounds)."""
    parts = [f"{elapsed:6.1f} s", stage]
    if objective is not None:
        parts.append(f"best Σc {objective:,.0f}")
    if bound is not None:
        parts.append(f"bound {bound:,.0f}")
    if objective is not None and bound is not None and objective > 0:
        parts.append(f"gap {max(0.0, (objective - bound) / objective):.2%}")
    return "solve · " + " · ".join(parts)
