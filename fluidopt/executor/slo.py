"""Service-level objectives: parsing, per-request deadlines, attainment and goodput.

An SLO is a comma-separated list of terms ``METRIC OP VALUE`` on the summary metrics of
a run (:func:`fluidopt.executor.metrics.summarize`), e.g.
``"p99_ttft<=2.0,p99_tpot<=0.12,mean_latency<=30"``:

- ``METRIC`` is a summary metric: ``mean|p50|p90|p99`` of ``ttft``, ``tpot`` or
  ``latency`` (seconds; rounds in the unit-time model), or one of
  :data:`OTHER_METRICS` (throughput, goodput, attainment, evictions, ...);
- ``OP`` is ``<=``, ``<``, ``>=`` or ``>``;
- ``VALUE`` is a finite number ≥ 0.

**Per-request deadlines.** Every upper bound (``<=``, ``<``) on a statistic of a
per-request metric is also a deadline for each request: ``p99_ttft<=2`` means "each
request should see its first token within 2 s, and 99% of them must". A request *meets
the SLO* when it finished and satisfies every such deadline (``tpot`` deadlines do not
apply to one-token outputs, whose ``tpot`` is undefined). From this:

- ``slo_attainment``: fraction of the window's requests that meet the SLO;
- ``goodput_requests_per_s`` / ``goodput_tokens_per_s``: requests / output tokens of the
  window's requests that meet the SLO, divided by the same span as
  ``throughput_tokens_per_s`` (first arrival in the window to its last completion).

**Verdict.** The SLO holds for a run when every term holds on the summary and no request
of the window is unfinished (the summary's statistics ignore unfinished requests, so a
run that leaves requests behind would otherwise look fast).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fluidopt.errors import InputError

#: Per-request metrics that carry deadlines (seconds).
REQUEST_METRICS = ("ttft", "tpot", "latency")
#: Statistics of a per-request metric in the summary.
STATISTICS = ("mean", "p50", "p90", "p99")
#: Other numeric summary metrics an SLO may bound (units as in the summary).
OTHER_METRICS = (
    "slo_attainment",
    "goodput_requests_per_s",
    "goodput_tokens_per_s",
    "throughput_tokens_per_s",
    "requests_per_s",
    "evictions",
    "wasted_tokens",
    "unfinished",
    "peak_kv",
    "mean_kv_util",
    "mean_waiting",
    "mean_in_system",
)
METRICS = tuple(f"{s}_{m}" for m in REQUEST_METRICS for s in STATISTICS) + OTHER_METRICS

_COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_TERM = re.compile(r"^\s*([A-Za-z0-9_]+)\s*(<=|>=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class SloTerm:
    """One term ``metric op limit`` of an SLO.

    Attributes
    ----------
    metric
        Summary metric name (see :data:`METRICS`).
    op
        ``<=``, ``<``, ``>=`` or ``>``.
    limit
        The bound, in the metric's unit (seconds for ttft/tpot/latency).
    """

    metric: str
    op: str
    limit: float

    def holds(self, value: float | None) -> bool:
        """Whether ``value`` satisfies the term (``None``/NaN never does)."""
        if value is None or not math.isfinite(float(value)):
            return False
        return _COMPARATORS[self.op](float(value), self.limit)

    @property
    def deadline_of(self) -> str | None:
        """The per-request metric this term sets a deadline for (upper bounds only)."""
        stat, _, base = self.metric.partition("_")
        if self.op in ("<=", "<") and stat in STATISTICS and base in REQUEST_METRICS:
            return base
        return None

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.limit:g}"


@dataclass(frozen=True)
class Slo:
    """A parsed SLO: the conjunction of its terms.

    Build it with :meth:`parse`; ``str(slo)`` gives the canonical text.
    """

    terms: tuple[SloTerm, ...]

    @classmethod
    def parse(cls, text: str) -> Slo:
        """Parse ``"METRIC OP VALUE[,...]"``.

        Raises
        ------
        InputError
            Empty SLO, a term without a comparator, an unknown metric (listing the known
            ones), a value that is not a finite number ≥ 0, or a metric given twice with
            the same comparator.
        """
        if not isinstance(text, str) or not text.strip():
            raise InputError("empty SLO: give terms like p99_ttft<=2.0,p99_tpot<=0.12")
        terms: list[SloTerm] = []
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                raise InputError(f"SLO {text!r} has an empty term")
            m = _TERM.match(item)
            if m is None:
                if not any(c in item for c in "<>"):
                    raise InputError(f"SLO term {item!r} has no comparator (use <=, <, >= or >)")
                raise InputError(f"SLO term {item!r} is not METRIC OP VALUE (e.g. p99_ttft<=2.0)")
            metric, op, value = m.groups()
            if metric not in METRICS:
                raise InputError(f"SLO term {item!r}: unknown metric {metric!r}; known: {', '.join(METRICS)}")
            try:
                limit = float(value)
            except ValueError:
                raise InputError(f"SLO term {item!r}: {value!r} is not a number") from None
            if not math.isfinite(limit) or limit < 0:
                raise InputError(f"SLO term {item!r}: the value must be a finite number ≥ 0 (got {value})")
            if any(t.metric == metric and t.op == op for t in terms):
                raise InputError(f"SLO term {item!r}: {metric}{op} is given twice")
            terms.append(SloTerm(metric, op, limit))
        return cls(tuple(terms))

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.terms)

    def deadlines(self) -> dict[str, list[SloTerm]]:
        """Per-request metric → the upper-bound terms that are deadlines for it."""
        out: dict[str, list[SloTerm]] = {}
        for t in self.terms:
            if t.deadline_of is not None:
                out.setdefault(t.deadline_of, []).append(t)
        return out

    def meets(self, frame: pd.DataFrame) -> np.ndarray:
        """Per request: finished and within every deadline.

        Parameters
        ----------
        frame
            Records with the per-request metrics (``ttft``, ``tpot``, ``latency``,
            ``finished``, ``output``), as from :func:`fluidopt.executor.metrics.request_metrics`.
        """
        ok = frame["finished"].to_numpy(dtype=bool).copy()
        for metric, terms in self.deadlines().items():
            values = frame[metric].to_numpy(dtype=np.float64)
            exempt = frame["output"].to_numpy() <= 1 if metric == "tpot" else np.zeros(len(frame), dtype=bool)
            for t in terms:
                with np.errstate(invalid="ignore"):
                    ok &= exempt | _COMPARATORS[t.op](values, t.limit)
        return ok

    def margin(self, summary: dict[str, Any]) -> float:
        """The worst term's value relative to its limit (≤ 1 when every term holds, up to
        strict comparators): how close a run came to violating, or how far it missed."""
        return max(_ratio(t, summary.get(t.metric)) for t in self.terms)

    def evaluate(self, summary: dict[str, Any], window_unfinished: int) -> dict[str, Any]:
        """The verdict on a summary that already holds the attainment and goodput fields.

        Returns
        -------
        dict
            ``slo`` (canonical text), ``slo_met``, ``slo_terms`` (per term: ``term``,
            ``metric``, ``value``, ``limit``, ``ok``) and ``slo_window_unfinished``.
        """
        rows = []
        for t in self.terms:
            value = summary.get(t.metric)
            rows.append({"term": str(t), "metric": t.metric, "value": value, "limit": t.limit, "ok": t.holds(value)})
        return {
            "slo": str(self),
            "slo_met": all(r["ok"] for r in rows) and window_unfinished == 0,
            "slo_terms": rows,
            "slo_window_unfinished": int(window_unfinished),
        }


def _ratio(term: SloTerm, value: float | None) -> float:
    """value/limit for an upper bound, limit/value for a lower one (≤ 1: met, up to
    strictness); ``inf`` for a missing value or a zero denominator."""
    if value is None or not math.isfinite(float(value)):
        return math.inf
    num, den = (float(value), term.limit) if term.op in ("<=", "<") else (term.limit, float(value))
    if den == 0:
        return 0.0 if num == 0 else math.inf
    return num / den


def as_slo(slo: Slo | str | None) -> Slo | None:
    """An :class:`Slo` from text (parsed), an :class:`Slo` or ``None``."""
    if slo is None or isinstance(slo, Slo):
        return slo
    return Slo.parse(slo)


def goodput(frame: pd.DataFrame, meets: np.ndarray, span: float) -> dict[str, Any]:
    """Attainment and goodput of a window.

    Parameters
    ----------
    frame
        The window's records (``output`` column).
    meets
        Per request of ``frame``: meets the SLO (:meth:`Slo.meets`).
    span
        The window's span, s (as for the throughput); ≤ 0 gives ``None`` rates.

    Returns
    -------
    dict
        ``slo_attainment`` (fraction, ``None`` for an empty window),
        ``goodput_requests_per_s``, ``goodput_tokens_per_s``.
    """
    n = len(frame)
    good = int(meets.sum())
    tokens = float(frame["output"].to_numpy()[meets].sum())
    return {
        "slo_attainment": good / n if n else None,
        "goodput_requests_per_s": good / span if span > 0 else None,
        "goodput_tokens_per_s": tokens / span if span > 0 else None,
    }
