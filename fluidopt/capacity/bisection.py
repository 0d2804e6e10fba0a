"""Bisection on the arrival rate for one (policy, replication), bracketed by the fluid limit.

A :class:`RateSearch` only records probe outcomes and proposes the next rates; running
the probes is the driver's job (:mod:`fluidopt.capacity.search`). Rates are rounded to
four significant digits (0.1% steps, well inside a 2% bracket) so that reported rates
and check commands stay readable; the fluid limit is rounded down, so no probe exceeds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: The search gives up below this fraction of the fluid limit.
MIN_FRACTION = 1.0 / 64


def round_rate(x: float) -> float:
    """``x`` to four significant digits."""
    if x <= 0 or not math.isfinite(x):
        return x
    return float(f"{x:.4g}")


def round_down(x: float) -> float:
    """``x`` to four significant digits, never above ``x``."""
    r = round_rate(x)
    return r if r <= x else float(f"{x * (1 - 5e-4):.4g}")


@dataclass
class RateSearch:
    """Probed rates (requests/s) and their outcomes for one (policy, replication).

    Attributes
    ----------
    top
        The fluid limit rounded down: the first and highest rate probed.
    probes
        Rate → probe result (a dict with at least ``ok``).
    """

    top: float
    probes: dict[float, dict[str, Any]] = field(default_factory=dict)

    @property
    def floor(self) -> float:
        """The lowest rate ever probed: the fluid limit times :data:`MIN_FRACTION`."""
        return round_rate(self.top * MIN_FRACTION)

    def bracket(self) -> tuple[float | None, float | None]:
        """(lo, hi): hi the lowest failing rate probed, lo the highest passing rate below it.

        Taking the *lowest* failure keeps the answer conservative when the SLO is not
        monotone in the rate.
        """
        fails = [r for r, p in self.probes.items() if not p["ok"]]
        hi = min(fails) if fails else None
        passes = [r for r, p in self.probes.items() if p["ok"] and (hi is None or r < hi)]
        return (max(passes) if passes else None), hi

    def limited_by(self, precision: float) -> str | None:
        """Why the search is finished, or ``None`` while it is not.

        ``"fluid limit"`` (the SLO holds at the fluid limit), ``"slo"`` (bracket within
        ``precision``) or ``"unattainable"`` (fails down to :attr:`floor`).
        """
        if self.top not in self.probes:
            return None
        lo, hi = self.bracket()
        if hi is None:
            return "fluid limit"
        if lo is None:
            return "unattainable" if hi <= self.floor else None
        return "slo" if hi / lo <= 1 + precision else None

    def next_rates(self, k: int) -> list[float]:
        """Up to ``k`` new rates to probe: the fluid limit first (and halvings below it
        when k > 1), then halvings until the SLO holds, then k points spaced
        geometrically inside the bracket (k = 1: bisection at the geometric mean)."""
        if self.top not in self.probes:
            cands = [self.top] + [self.top / 2**i for i in range(1, k)]
            lo = hi = None
        else:
            lo, hi = self.bracket()
            assert hi is not None
            if lo is None:
                cands = [max(hi / 2**i, self.floor) for i in range(1, k + 1)]
            else:
                cands = [lo * (hi / lo) ** (i / (k + 1)) for i in range(1, k + 1)]
        out: list[float] = []
        for c in cands:
            r = c if c == self.top else round_rate(c)
            if (lo is not None and r <= lo) or (hi is not None and r >= hi):
                r = c  # rounding left the bracket (a very fine precision): keep the exact point
            if r not in self.probes and r not in out:
                out.append(r)
        return out
