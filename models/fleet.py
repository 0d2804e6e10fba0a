"""Capacity planning over GPU kinds (``fluid-and-wait.md`` §2, "natural extension").

GPU kinds g have a cost per hour, a KV capacity C_g (tokens), a fixed iteration cost
c0_g (s) and per-type marginal work u_jg (s). Demand λ_j (requests/s) is routed as
x_jg ≥ 0 (total rate of type j sent to kind g, split evenly over its y_g ∈ Z≥0 GPUs).
One GPU of kind g then sees rates x_jg / y_g, and its fluid conditions multiply out to
rows that are linear in (x, y):

    demand[j]        Σ_g x_jg = λ_j
    capacity[g]      Σ_j x_jg (c0_g V_j + C'_g u_jg) ≤ C'_g y_g   (M ≤ C'_g, which also
                                                                   forces A < 1)
    latency[g,j]     Σ_k x_kg u_kg ≤ (1 − c0_g o_j / L) y_g      (o_j ΔT ≤ L, if given)
    count[g]         y_g ≤ max count (if given)

    minimise Σ_g cost_g y_g

with C'_g = (1 − headroom)·C_g and V_j = o_j s_j + o_j(o_j+1)/2 (our volume). With
simulated capacities (``fluidopt.capacity.planning``) the capacity row's right-hand side
is ρ_g C'_g y_g, ρ_g ≤ 1 the fraction of its fluid limit kind g sustains under an SLO. The
latency row is imposed for every type on every kind (conservative: it holds whether or
not type j is routed there), which keeps the model a MILP without routing binaries.

This module only builds the model and reads a solution back; preparing
:class:`FleetData` and solving are the caller's (``fluidopt.fleet.plan``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FleetData:
    """Inputs of the fleet MILP.

    Attributes
    ----------
    rate, output, volume
        λ_j (1/s), o_j (tokens), V_j (token·iterations), length m.
    work
        u_jg, s, shape (m, G).
    c0, capacity, cost
        Per kind: s, KV tokens (already reduced by the headroom), cost per hour.
    max_count
        Per kind: upper bound on y_g (``inf`` = none).
    latency_target
        L, s (``None`` = none).
    kinds, labels
        Names.
    derate
        Per kind: factor ρ_g ≤ 1 on the capacity row's right-hand side (``None``: 1, the
        fluid stable region itself).
    """

    rate: np.ndarray
    output: np.ndarray
    volume: np.ndarray
    work: np.ndarray
    c0: np.ndarray
    capacity: np.ndarray
    cost: np.ndarray
    max_count: np.ndarray
    latency_target: float | None
    kinds: tuple[str, ...]
    labels: tuple[str, ...]
    derate: np.ndarray | None = None


def build(data: FleetData) -> Any:
    """Pyomo MILP: variables ``x[j, g]`` (requests/s) and integer ``y[g]`` (GPUs)."""
    import pyomo.environ as pyo

    m, G = data.work.shape
    model = pyo.ConcreteModel(name="fleet")
    model.J = pyo.RangeSet(0, m - 1)
    model.G = pyo.RangeSet(0, G - 1)
    model.x = pyo.Var(model.J, model.G, domain=pyo.NonNegativeReals)
    model.y = pyo.Var(
        model.G,
        domain=pyo.NonNegativeIntegers,
        bounds=lambda _, g: (0, None if not np.isfinite(data.max_count[g]) else int(data.max_count[g])),
    )
    model.cost = pyo.Objective(expr=sum(float(data.cost[g]) * model.y[g] for g in model.G))
    model.demand = pyo.Constraint(model.J, rule=lambda mm, j: sum(mm.x[j, g] for g in mm.G) == float(data.rate[j]))
    model.capacity = pyo.Constraint(
        model.G,
        rule=lambda mm, g: sum(
            float(data.c0[g] * data.volume[j] + data.capacity[g] * data.work[j, g]) * mm.x[j, g] for j in mm.J
        )
        <= float(data.capacity[g]) * (1.0 if data.derate is None else float(data.derate[g])) * mm.y[g],
    )
    if data.latency_target is not None:
        L = float(data.latency_target)

        def lat(mm: Any, g: int, j: int) -> Any:
            rhs = 1.0 - float(data.c0[g] * data.output[j]) / L
            lhs = sum(float(data.work[k, g]) * mm.x[k, g] for k in mm.J)
            if rhs <= 0:  # even an empty GPU of this kind misses the target: route nothing here
                return lhs <= 0
            return lhs <= rhs * mm.y[g]

        model.latency = pyo.Constraint(model.G, model.J, rule=lat)
    return model


def solution(model: Any, data: FleetData) -> tuple[np.ndarray, np.ndarray]:
    """(x[j, g] in requests/s, y[g] GPU counts) read from a solved model."""
    m, G = data.work.shape
    x = np.array([[model.x[j, g].value or 0.0 for g in range(G)] for j in range(m)], dtype=np.float64)
    y = np.array([int(round(model.y[g].value or 0)) for g in range(G)], dtype=np.int64)
    return np.maximum(x, 0.0), y
