"""Plotting functions the notebooks and ``fluidopt figures`` call.

Each function takes tidy data (a DataFrame of sweep rows or plain arrays), draws on a
new or given matplotlib ``Axes`` and returns the ``Figure``. Nothing here runs a model:
computing the numbers is the caller's job, so every plot can be redrawn from the CSV
committed next to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # figures are written to files; no display is needed or assumed

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def _axes(ax: Axes | None, size: tuple[float, float] = (6.0, 4.0)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    return fig, ax


def mean_and_std(frame: pd.DataFrame, x: str, y: str, group: str) -> pd.DataFrame:
    """Mean and standard deviation of ``y`` over seeds, per (``group``, ``x``)."""
    stats = frame.groupby([group, x])[y].agg(["mean", "std", "count"]).reset_index()
    stats["std"] = stats["std"].fillna(0.0)
    return stats


def mean_lines(ax: Axes, frame: pd.DataFrame, x: str, y: str, group: str) -> dict[Any, str]:
    """Draw one mean ± std (over seeds) line per ``group``; return each group's colour."""
    colours = {}
    for name, part in mean_and_std(frame, x, y, group).groupby(group, sort=True):
        line = ax.errorbar(part[x], part["mean"], yerr=part["std"], marker="o", ms=3, capsize=2, label=str(name))
        colours[name] = line[0].get_color()
    return colours


def latency_vs_rate(
    frame: pd.DataFrame,
    *,
    x: str = "workload.rate",
    y: str = "mean_latency",
    group: str = "policy",
    fluid_limit: float | None = None,
    observed_limits: dict[str, float] | None = None,
    logy: bool = True,
    ax: Axes | None = None,
) -> Figure:
    """Latency (s) against arrival rate (req/s), one line per policy, mean ± std over seeds.

    ``fluid_limit`` draws the stability limit the fluid model predicts (dashed vertical
    line); ``observed_limits`` marks each policy's observed limit on its line.
    """
    fig, ax = _axes(ax)
    colours = mean_lines(ax, frame, x, y, group)
    for name, limit in (observed_limits or {}).items():
        if name in colours:
            ax.axvline(limit, color=colours[name], lw=0.8, ls=":")
    if fluid_limit is not None:
        ax.axvline(fluid_limit, color="black", ls="--", lw=1, label=f"fluid limit {fluid_limit:.3g}/s")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("arrival rate (requests/s)")
    ax.set_ylabel(f"{y.replace('_', ' ')} (s)")
    ax.legend(fontsize=8)
    return fig


def series_over_time(
    events: pd.DataFrame,
    *,
    column: str,
    time: str = "time",
    label: str | None = None,
    capacity: float | None = None,
    window: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """A per-iteration series (KV in use, batch size, queue length) against time (s).

    ``window`` (s) smooths with a time-based rolling mean; ``capacity`` draws the KV
    capacity C as a horizontal line.
    """
    fig, ax = _axes(ax, (7.0, 3.5))
    series = events.set_index(pd.to_timedelta(events[time], unit="s"))[column]
    if window:
        series = series.rolling(pd.to_timedelta(window, unit="s")).mean()
    ax.plot(events[time].to_numpy(), series.to_numpy(), lw=0.8, label=label or column)
    if capacity is not None:
        ax.axhline(capacity, color="red", lw=1, ls="--", label=f"capacity C = {capacity:,.0f}")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(column.replace("_", " "))
    ax.legend(fontsize=8)
    return fig


def throughput_over_time(
    completions: np.ndarray, tokens: np.ndarray, *, bin_seconds: float = 10.0, ax: Axes | None = None
) -> Figure:
    """Output-token throughput (tokens/s) in bins of ``bin_seconds`` from completion times."""
    fig, ax = _axes(ax, (7.0, 3.5))
    done = np.isfinite(completions)
    if done.any():
        edges = np.arange(0.0, completions[done].max() + bin_seconds, bin_seconds)
        sums, _ = np.histogram(completions[done], bins=edges, weights=tokens[done])
        ax.step(edges[:-1], sums / bin_seconds, where="post", lw=1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("throughput (output tokens/s)")
    return fig


def ratio_distribution(
    frame: pd.DataFrame,
    *,
    ratio: str = "ratio",
    group: str = "arrival_model",
    published: dict[str, float] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Histogram of ratios to the optimum, one panel colour per group; ``published``
    marks the paper's averages as vertical lines."""
    fig, ax = _axes(ax)
    values = frame[ratio].to_numpy(dtype=float)
    bins = np.linspace(1.0, max(1.0 + 1e-9, float(np.nanmax(values))) + 1e-9, 25)
    for name, part in frame.groupby(group, sort=True):
        ax.hist(part[ratio], bins=bins, alpha=0.5, label=f"{group} {name} (mean {part[ratio].mean():.3f})")
    for name, value in (published or {}).items():
        ax.axvline(value, ls="--", lw=1, color="black")
        ax.annotate(f"published {name}: {value}", (value, ax.get_ylim()[1] * 0.9), fontsize=7, rotation=90)
    ax.set_xlabel("ratio to the optimum (tct)")
    ax.set_ylabel("instances")
    ax.legend(fontsize=8)
    return fig


def ratio_vs_alpha(
    frame: pd.DataFrame,
    *,
    x: str = "alpha",
    y: str = "ratio",
    group: str = "policy",
    ax: Axes | None = None,
) -> Figure:
    """Ratio to the benchmark against prediction accuracy α = ℓ/u, one line per policy."""
    fig, ax = _axes(ax)
    mean_lines(ax, frame, x, y, group)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xlabel("prediction accuracy α = ℓ/u")
    ax.set_ylabel(f"{y.replace('_', ' ')}")
    ax.invert_xaxis()
    ax.legend(fontsize=8)
    return fig


def memory_vs_rate(
    rates: Sequence[float],
    kv_in_use: Sequence[float],
    *,
    capacity: float,
    published: dict[float, float] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Fluid KV memory M* (tokens) against arrival rate (req/s), with the capacity C and
    the published points for comparison."""
    fig, ax = _axes(ax)
    ax.plot(rates, kv_in_use, marker="o", ms=3, label="M* (fluidopt)")
    if published:
        ax.scatter(list(published), list(published.values()), marker="x", color="black", label="M* (published)")
    ax.axhline(capacity, color="red", ls="--", lw=1, label=f"capacity C = {capacity:,.0f}")
    ax.set_yscale("log")
    ax.set_xlabel("arrival rate (requests/s)")
    ax.set_ylabel("KV tokens in use")
    ax.legend(fontsize=8)
    return fig


def memory_vs_segments(
    frame: pd.DataFrame,
    *,
    x: str = "segments",
    parts: Sequence[str] = ("base_memory", "buffer"),
    ax: Axes | None = None,
) -> Figure:
    """Nested WAIT memory (tokens) against the number of segments: stacked parts
    (base pipeline memory, safety buffer) and their total."""
    fig, ax = _axes(ax)
    bottom = np.zeros(len(frame))
    xs = frame[x].astype(str).to_numpy()
    for part in parts:
        ax.bar(xs, frame[part], bottom=bottom, label=part.replace("_", " "))
        bottom = bottom + frame[part].to_numpy(dtype=float)
    ax.plot(xs, bottom, color="black", marker="o", ms=3, label="total")
    ax.set_xlabel("number of segments")
    ax.set_ylabel("KV tokens")
    ax.legend(fontsize=8)
    return fig


def solve_time_profile(
    frame: pd.DataFrame,
    *,
    seconds: str = "seconds",
    closed: str = "closed",
    group: str = "formulation",
    ax: Axes | None = None,
) -> Figure:
    """Performance profile: fraction of instances proven optimal within t seconds
    (log x), one line per formulation; unclosed instances never count as solved."""
    fig, ax = _axes(ax)
    for name, part in frame.groupby(group, sort=True):
        times = np.sort(part.loc[part[closed].astype(bool), seconds].to_numpy(dtype=float))
        frac = np.arange(1, len(times) + 1) / len(part)
        ax.step(np.r_[times[:1] if len(times) else [], times], np.r_[[0.0] if len(times) else [], frac],
                where="post", label=f"{name} ({len(times)}/{len(part)} closed)")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("solve time (s)")
    ax.set_ylabel("fraction of instances proven optimal")
    ax.legend(fontsize=8)
    return fig


def capacity_bars(frame: pd.DataFrame, *, legend: bool = True, ax: Axes | None = None) -> Figure:
    """SLO-constrained capacity (requests/s) per policy beside the fluid limit.

    ``frame`` has one row per policy (``fluidopt.capacity.CapacityResult.to_frame``):
    a bar at ``max_rate`` labelled with its share of ``fluid_limit``, a whisker over the
    replications' critical rates (``rate_min``–``rate_max``), a diamond at
    ``all_replications_rate``, and the fluid limit as a dashed line. A policy that meets
    the SLO nowhere (``max_rate`` NaN) is marked "not met". ``legend=False`` leaves the
    legend to the caller (e.g. one for a grid of panels).
    """
    fig, ax = _axes(ax)
    ys = np.arange(len(frame))
    rate = frame["max_rate"].to_numpy(dtype=float)
    limit = float(frame["fluid_limit"].iloc[0])
    ax.barh(ys, np.nan_to_num(rate), color="tab:blue", alpha=0.75, label="max rate (first replication)")
    lo, hi = frame["rate_min"].to_numpy(dtype=float), frame["rate_max"].to_numpy(dtype=float)
    spread = (frame["replications"].to_numpy() > 1) & np.isfinite(lo)
    if spread.any():
        ax.hlines(ys[spread], lo[spread], hi[spread], color="black", lw=1.2, label="replications' range")
        ax.plot(frame["all_replications_rate"].to_numpy(dtype=float)[spread], ys[spread], "D", color="black", ms=4,
                label="met on all replications")
    for y, r in zip(ys, rate):
        text = f" {r:.3g}/s ({r / limit:.0%})" if np.isfinite(r) else " not met"
        ax.text(np.nan_to_num(r), y, text, va="center", fontsize=8)
    ax.axvline(limit, color="black", ls="--", lw=1, label="fluid limit")
    ax.text(limit, 0.99, f" fluid {limit:.3g}/s", transform=ax.get_xaxis_transform(), ha="left", va="top",
            fontsize=7)
    ax.set_yticks(ys, frame["policy"].tolist(), fontsize=8)
    ax.invert_yaxis()  # first policy on top
    ax.set_xlim(0, limit * 1.3)
    ax.set_xlabel("arrival rate (requests/s)")
    if legend:
        ax.legend(fontsize=7, loc="best")
    return fig


def slo_margin_vs_rate(
    frame: pd.DataFrame, *, x: str = "rate", y: str = "margin", group: str = "policy",
    fluid_limit: float | None = None, ax: Axes | None = None,
) -> Figure:
    """How close each probe of a capacity search came to its SLO: ``margin`` = the
    largest value/limit over the SLO's terms (≤ 1: met), against the probed rate
    (requests/s), one line per policy; log y."""
    fig, ax = _axes(ax)
    for name, part in frame.sort_values(x).groupby(group, sort=True):
        ax.plot(part[x], part[y], marker="o", ms=3, label=str(name))
    ax.axhline(1.0, color="red", lw=1, label="SLO limit")
    if fluid_limit is not None:
        ax.axvline(fluid_limit, color="black", ls="--", lw=1, label=f"fluid limit {fluid_limit:.3g}/s")
    ax.set_yscale("log")
    ax.set_xlabel("arrival rate (requests/s)")
    ax.set_ylabel("SLO metric / limit (worst term)")
    ax.legend(fontsize=7)
    return fig


#: Stamped across figures of quick runs, and written in their PNG metadata.
QUICK_MARK = "QUICK RUN (--quick): not the published setting"


def save(fig: Figure, path: str, *, quick: bool = False) -> None:
    """Write a figure as PNG atomically and close it.

    ``quick`` stamps :data:`QUICK_MARK` across the figure (a faint diagonal watermark that
    leaves the data readable) and in the PNG's ``Description``, so that a quick figure
    is never taken for a reproduction.
    """
    from fluidopt.io import atomic_path

    metadata = {}
    if quick:
        # as large as fits the width: a character is about 0.6 em wide
        size = min(22.0, 0.85 * fig.get_figwidth() * 72 / (0.6 * len(QUICK_MARK)))
        fig.text(0.5, 0.5, QUICK_MARK, ha="center", va="center", rotation=20, fontsize=size, color="#b00020",
                 alpha=0.3, zorder=10)
        metadata["Description"] = QUICK_MARK
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130, metadata=metadata)
    plt.close(fig)
