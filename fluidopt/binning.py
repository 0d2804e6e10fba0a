"""Type binning: turn a trace into the request types of the fluid model and WAIT.

A type is a box of output lengths (and optionally prompt lengths). Ranges are inclusive
integer token ranges, the form ``fluidopt.threshold_file.ThresholdType`` stores.

Edges convention
----------------
``output_edges`` (and ``prompt_edges``) are strictly increasing **inclusive upper
bounds**: edges ``[20, 50]`` give the bins 1–20 and 21–50, plus a last bin 51–max when
the workload has longer requests. The first bin always starts at 1 and the last ends at
the largest observed value, so the ranges cover every length in the workload. Bins that
receive no request are dropped (a type with rate 0 means nothing to the fluid model).

With ``n_output_bins=k`` instead, the upper bounds are the empirical quantiles j/k
(j = 1…k−1, "inverted CDF", i.e. observed values) and the maximum; repeated quantiles
(heavy ties) merge, so fewer than k bins can result. Every such bin is non-empty.

With neither, each distinct output length is its own type (useful for generated
multi-type workloads); more than :data:`MAX_DISTINCT` distinct lengths is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from fluidopt.errors import InputError
from fluidopt.workload import Workload

#: Largest number of distinct output lengths binned one-per-type without edges.
MAX_DISTINCT = 32


@dataclass(frozen=True)
class TypeBin:
    """One request type found in a workload.

    Attributes
    ----------
    label
        ``d{lo}-{hi}`` (output range) or ``p{lo}-{hi}d{lo}-{hi}`` with a prompt range;
        a one-value range is written once (``d20``).
    output_range
        Inclusive output-length range (tokens).
    prompt_range
        Inclusive prompt-length range (tokens), or ``None`` when binning by output only.
    count
        Requests of this type.
    rate
        count / (last − first arrival), requests per second (per round in the unit-time
        model); ``None`` when the arrivals span no time.
    prompt_mean, output_mean
        Mean prompt and output tokens of the requests in the bin.
    """

    label: str
    output_range: tuple[int, int]
    prompt_range: tuple[int, int] | None
    count: int
    rate: float | None
    prompt_mean: float
    output_mean: float


@dataclass(frozen=True)
class TypeTable:
    """The types of a workload and the type of every request.

    Attributes
    ----------
    types
        Non-empty bins in order of (prompt range, output range).
    labels
        Per-request type label (object array, same order as the workload).
    duration_s
        Span of the arrivals used for the rates (seconds or rounds).
    """

    types: list[TypeBin]
    labels: np.ndarray
    duration_s: float

    def to_frame(self) -> pd.DataFrame:
        """One row per type."""
        return pd.DataFrame([asdict(t) for t in self.types])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (types only; labels are per request)."""
        return {"duration_s": self.duration_s, "types": [asdict(t) for t in self.types]}

    def assign(self, output: Sequence[int] | np.ndarray, prompt: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Labels of new requests by the table's ranges (``None`` when no range holds them).

        The ranges end at the largest length the table was built from; for new requests
        the longest bins are open above (a held-out request longer than every binned one
        belongs to the longest type, not to none).
        """
        out = np.asarray(output)
        pr = np.asarray(prompt) if prompt is not None else None
        labels = np.full(out.shape, None, dtype=object)
        top_out = max(t.output_range[1] for t in self.types)
        top_pr = max((t.prompt_range[1] for t in self.types if t.prompt_range is not None), default=None)
        for t in self.types:
            mask = (out >= t.output_range[0]) & ((out <= t.output_range[1]) | (t.output_range[1] == top_out))
            if t.prompt_range is not None:
                if pr is None:
                    raise InputError("this table bins by prompt too; give the prompt lengths", field="prompt")
                mask &= (pr >= t.prompt_range[0]) & ((pr <= t.prompt_range[1]) | (t.prompt_range[1] == top_pr))
            labels[mask] = t.label
        return labels


def _ranges_from_edges(edges: Sequence[int], vmax: int, what: str) -> list[tuple[int, int]]:
    e = [int(x) for x in edges]
    if any(x != y for x, y in zip(e, edges)) or not e:
        raise InputError(f"{what} edges must be a non-empty list of integers (got {list(edges)!r})", field=f"{what}_edges")
    if e[0] < 1 or any(b <= a for a, b in zip(e, e[1:])):
        raise InputError(f"{what} edges must be positive and strictly increasing (got {e})", field=f"{what}_edges")
    lows = [1] + [x + 1 for x in e[:-1]]
    ranges = list(zip(lows, e))
    if vmax > e[-1]:
        ranges.append((e[-1] + 1, int(vmax)))
    return ranges


def _quantile_edges(values: np.ndarray, k: int) -> list[int]:
    if isinstance(k, bool) or int(k) < 1:
        raise InputError(f"number of bins must be ≥ 1 (got {k})", field="n_output_bins")
    qs = [int(np.quantile(values, j / k, method="inverted_cdf")) for j in range(1, int(k))]
    return sorted(set(qs) | {int(values.max())})


def _fmt(r: tuple[int, int]) -> str:
    return f"{r[0]}" if r[0] == r[1] else f"{r[0]}-{r[1]}"


def bin_types(
    w: Workload,
    *,
    output_edges: Sequence[int] | None = None,
    n_output_bins: int | None = None,
    prompt_edges: Sequence[int] | None = None,
) -> TypeTable:
    """Bin a workload's requests into types by output length (and optionally prompt).

    Parameters
    ----------
    w
        The workload.
    output_edges
        Inclusive upper bounds of the output bins (tokens), see the module docstring.
    n_output_bins
        Number of quantile bins of the output length (when ``output_edges`` is not given).
    prompt_edges
        Inclusive upper bounds of prompt bins (tokens); types are then the non-empty
        (prompt bin × output bin) boxes.

    Returns
    -------
    TypeTable
    """
    if output_edges is not None and n_output_bins is not None:
        raise InputError("give output_edges or n_output_bins, not both", field="output_edges")
    out, pr = w.output, w.prompt
    if output_edges is not None:
        o_ranges = _ranges_from_edges(output_edges, int(out.max()), "output")
    elif n_output_bins is not None:
        o_ranges = _ranges_from_edges(_quantile_edges(out, n_output_bins), int(out.max()), "output")
    else:
        distinct = np.unique(out)
        if distinct.size > MAX_DISTINCT:
            raise InputError(
                f"{distinct.size} distinct output lengths; give output_edges or n_output_bins",
                source=w.source or w.name,
                field="output_edges",
            )
        o_ranges = [(int(v), int(v)) for v in distinct]
    p_ranges: list[tuple[int, int] | None] = (
        list(_ranges_from_edges(prompt_edges, int(pr.max()), "prompt")) if prompt_edges is not None else [None]
    )
    duration = float(w.arrival[-1] - w.arrival[0])
    labels = np.full(len(w), None, dtype=object)
    types: list[TypeBin] = []
    for prange in p_ranges:
        pmask = np.ones(len(w), bool) if prange is None else (pr >= prange[0]) & (pr <= prange[1])
        for orange in o_ranges:
            mask = pmask & (out >= orange[0]) & (out <= orange[1])
            count = int(mask.sum())
            if count == 0:
                continue
            label = (f"p{_fmt(prange)}" if prange is not None else "") + f"d{_fmt(orange)}"
            labels[mask] = label
            types.append(
                TypeBin(
                    label=label,
                    output_range=orange,
                    prompt_range=prange,
                    count=count,
                    rate=count / duration if duration > 0 else None,
                    prompt_mean=float(pr[mask].mean()),
                    output_mean=float(out[mask].mean()),
                )
            )
    return TypeTable(types=types, labels=labels, duration_s=duration)
