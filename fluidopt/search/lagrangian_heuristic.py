"""Schedules from Lagrangian prices: α-point list schedules and their improvement.

The price search of ``fluidopt.bounds.lagrangian`` ends with round prices λ under
which every request has a preferred start t_i*(λ) and, for a temperature τ, a
distribution of starts p_i(t) ∝ exp(−f_i(t; λ)/τ) (the fractional starts of the smoothed
dual, close to an LP solution). Ordering requests by a statistic of that distribution and
building the serial list schedule (``fluidopt.search.list_schedule``) is the α-point
heuristic of LP-based scheduling (Hall, Schulz, Shmoys, Wein 1997): the statistics used
are t_i*, the mean start, and the α-quantiles for a few α and τ. The best of these
schedules (and of any schedules passed in, e.g. executor policies') is then improved by
:func:`fluidopt.search.perturbation.perturbation_search` for the time left.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from fluidopt.bounds.lagrangian import RampDual
from fluidopt.bounds.ramp import RampInstance, memory_load, ramp_instance
from fluidopt.search.list_schedule import priority_order, serial_schedule
from fluidopt.search.perturbation import perturbation_search

#: Temperatures (rounds) and quantiles of the α-point orders.
TEMPERATURES = (0.3, 1.0, 3.0)
ALPHAS = (0.2, 0.5, 0.8)


def feasible(inst: RampInstance, starts: np.ndarray) -> bool:
    """Whether contiguous runs from ``starts`` respect arrivals and the capacity."""
    if starts.shape != inst.arrival.shape or np.any(starts < inst.arrival):
        return False
    end = int(np.max(starts + inst.output))
    return bool(memory_load(starts, inst.prompt, inst.output, end).max() <= inst.capacity)


def alpha_point_keys(
    dual: RampDual,
    prices: np.ndarray,
    *,
    temperatures: tuple[float, ...] = TEMPERATURES,
    alphas: tuple[float, ...] = ALPHAS,
) -> dict[str, np.ndarray]:
    """Priority keys (epochs) from prices λ: ``"t*"``, ``"mean@τ"`` and ``"α@τ"``."""
    prices = np.asarray(prices, dtype=np.float64)
    keys: dict[str, np.ndarray] = {"t*": dual.evaluate(prices)[1].astype(np.float64)}
    for tau in temperatures:
        mean, quantiles = dual.start_distribution(prices, tau, alphas)
        keys[f"mean@{tau:g}"] = mean
        for alpha, q in zip(alphas, quantiles):
            keys[f"{alpha:g}@{tau:g}"] = q.astype(np.float64)
    return keys


def lagrangian_schedule(
    arrival: np.ndarray,
    prompt: np.ndarray,
    output: np.ndarray,
    capacity: int,
    prices: np.ndarray,
    *,
    time_limit: float | None = None,
    incumbents: dict[str, np.ndarray] | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Best schedule found from the α-point orders of ``prices``, then local search.

    Parameters
    ----------
    arrival, prompt, output, capacity
        The instance (arrival epochs in rounds, tokens, C in tokens).
    prices
        Round prices λ_1 … λ_R (e.g. ``info["prices"]`` of
        :func:`fluidopt.bounds.lagrangian.lagrangian_bound`).
    time_limit
        Seconds in all; the α-point schedules are always built (a few seconds for
        thousands of requests), the local search gets what is left (none without a limit).
    incumbents
        Schedules to compete with (start epochs by name, e.g. executor runs); their
        start epochs serve as priority keys, and each one that is feasible (starts after
        arrival, memory ≤ C in every round) also competes as it is.
    seed
        Seed of the local search.

    Returns
    -------
    (starts, info)
        Start epochs of the best schedule (feasible, contiguous runs) and ``info`` with
        ``tct`` (Σ c_i, rounds), ``source`` (the order it came from, with ``+search``
        when the local search improved it), ``candidates`` (Σ c_i per order) and the
        local search's ``search`` info.
    """
    started = time.perf_counter()
    inst = ramp_instance(arrival, prompt, output, capacity)
    if inst.n == 0:
        return np.zeros(0, dtype=np.int64), {"candidates": {}, "search": None, "tct": 0.0, "source": "empty",
                                             "seconds": 0.0}
    prices = np.asarray(prices, dtype=np.float64)
    dual = RampDual(inst, max(prices.shape[0], 1))
    keys = alpha_point_keys(dual, prices if prices.size else np.zeros(1))
    for name, starts in (incumbents or {}).items():
        keys[name] = np.asarray(starts, dtype=np.float64)
    o = inst.output
    candidates: dict[str, float] = {}
    best_name, best, best_tct = "", None, np.inf
    for name, key in keys.items():
        starts = serial_schedule(inst, priority_order(key, inst.volume))
        tct = float(np.sum(starts + o))
        candidates[name] = tct
        if tct < best_tct:
            best_name, best, best_tct = name, starts, tct
    for name, given in (incumbents or {}).items():  # the incumbents themselves, if feasible
        starts = np.asarray(given, dtype=np.int64)
        if not feasible(inst, starts):
            continue
        tct = float(np.sum(starts + o))
        candidates[f"{name} (as given)"] = tct
        if tct < best_tct:
            best_name, best, best_tct = f"{name} (as given)", starts, tct
    info: dict[str, Any] = {"candidates": candidates, "search": None}
    left = None if time_limit is None else time_limit - (time.perf_counter() - started)
    if left is not None and left > 0:
        improved, search = perturbation_search(inst, best.astype(np.float64), time_limit=left, seed=seed)
        info["search"] = search
        if search["tct"] < best_tct:
            best, best_tct, best_name = improved, search["tct"], best_name + "+search"
    info.update({"tct": best_tct, "source": best_name, "seconds": time.perf_counter() - started})
    return best, info
