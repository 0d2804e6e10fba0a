"""Progress of long commands.

A terminal gets rich's live progress bars (``simulate``, ``sweep``) or a live line
rewritten in place (:class:`LiveLine`: ``solve``, ``score``); elsewhere (a log file, a CI
job) those are off, and a long run would be silent. :class:`StatusLine` and
:class:`LiveLine` then print a plain one-line status to stderr, first after
:data:`FIRST_S` seconds and then at most every :data:`EVERY_S` seconds, so short runs
print nothing and long ones a few lines a minute.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

#: Seconds before the first status line (runs shorter than this print none).
FIRST_S = 10.0
#: Seconds between status lines.
EVERY_S = 30.0


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class StatusLine:
    """Rate-limited status lines: ``fluidopt: simulate: 1,234 of 20,000 requests finished …``.

    Parameters
    ----------
    what
        The command, e.g. ``"simulate"``.
    unit
        What is counted, e.g. ``"requests"`` or ``"cells"``.
    stream
        Where lines go (default: stderr at call time).
    clock
        Wall clock in seconds (replaceable in tests).
    """

    def __init__(self, what: str, unit: str, *, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.unit, self.stream, self.clock = what, unit, stream, clock
        self.start = clock()
        self.next_at = self.start + FIRST_S
        self.done, self.total, self.note = 0, 0, ""
        self._lock = threading.Lock()

    def update(self, done: int, total: int, note: str = "") -> None:
        """Record the progress; print a line if one is due."""
        self.done, self.total, self.note = done, total, note
        self.maybe_print()

    def __call__(self, done: int, total: int, clock: float | None = None) -> None:
        """The executor's progress callback: ``(finished, total, simulated clock)``."""
        self.update(done, total, "" if clock is None else f"simulated time {clock:,.1f}")

    def maybe_print(self) -> None:
        """Print the status if the next line is due."""
        with self._lock:
            now = self.clock()
            if now < self.next_at:
                return
            self.next_at = now + EVERY_S
            elapsed = now - self.start
            parts = [f"{self.done:,} of {self.total:,} {self.unit} finished", f"{_duration(elapsed)} elapsed"]
            if 0 < self.done < self.total:
                parts.append(f"about {_duration(elapsed * (self.total - self.done) / self.done)} left")
            if self.note:
                parts.append(self.note)
            print(f"fluidopt: {self.what}: " + ", ".join(parts), file=self.stream or sys.stderr, flush=True)

    @contextlib.contextmanager
    def heartbeat(self, interval: float = 1.0) -> Iterator[StatusLine]:
        """Check for a due line every ``interval`` s in a background thread, for work that
        reports only now and then (a sweep's cells)."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(interval):
                self.maybe_print()

        thread = threading.Thread(target=beat, name="fluidopt-status", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()


class LiveLine:
    """A free-text status: rewritten in place on a terminal (at most five times a second)
    and erased when done; elsewhere printed as ``fluidopt: WHAT: text`` on the schedule of
    :class:`StatusLine`.

    Parameters
    ----------
    what
        The command, e.g. ``"solve"``.
    stream
        Where lines go (default: stderr at call time).
    clock
        Wall clock in seconds (replaceable in tests).
    """

    def __init__(self, what: str, *, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.stream, self.clock = what, stream, clock
        out = stream or sys.stderr
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.next_at = clock() + (0.0 if self.tty else FIRST_S)
        self.width = 0
        self._lock = threading.Lock()

    def update(self, text: str) -> None:
        """Show ``text`` if a line is due."""
        with self._lock:
            now = self.clock()
            if now < self.next_at:
                return
            out = self.stream or sys.stderr
            if self.tty:
                self.next_at = now + 0.2
                out.write("\r" + text + " " * max(0, self.width - len(text)))
                self.width = len(text)
            else:
                self.next_at = now + EVERY_S
                out.write(f"fluidopt: {self.what}: {text}\n")
            out.flush()

    def close(self) -> None:
        """Erase the line on a terminal."""
        if self.tty and self.width:
            out = self.stream or sys.stderr
            out.write("\r" + " " * self.width + "\r")
            out.flush()
            self.width = 0

    def __enter__(self) -> LiveLine:
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
    return " · ".join(parts)
