"""The fluid LP (``fluid-and-wait.md`` §2): which arrival rates to admit.

With admitted rates x_j ∈ [φ_j λ_j, λ_j] (requests/s) in place of λ_j, the fluid
iteration length is ΔT = c0 / (1 − Σ_j x_j u_j) and the KV memory in use is
M = ΔT Σ_j x_j V_j (V_j = o_j s_j + o_j(o_j+1)/2, our volume convention). Every
condition is linear in x once multiplied out:

    capacity    M ≤ C           ⇔  Σ_j x_j (c0 V_j / C + u_j) ≤ 1
    load_limit  (no capacity)       Σ_j x_j u_j ≤ 1 − load_margin
    latency[j]  o_j ΔT ≤ L_j    ⇔  Σ_k x_k u_k ≤ 1 − c0 o_j / L_j
    ttft        ΔT ≤ F          ⇔  Σ_k x_k u_k ≤ 1 − c0 / F
    demand[j]   x_j ≤ λ_j
    fairness    x_j ≥ φ_j λ_j  (variable bound)

    maximise Σ_j r_j o_j x_j      (value per second; r_j = 1: output tokens/s)

Every row is written as "dimensionless load ≤ right-hand side" so that its dual is
the objective gained per unit of load. :func:`build` gives the Pyomo model and
:func:`build_cvxpy` the CVXPY twin with the same row names; both are solved by
``fluidopt.solver.solve``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fluidopt.errors import InputError

#: Headroom kept below A = 1 when there is no capacity row (ΔT is infinite at A = 1).
LOAD_MARGIN = 1e-3


@dataclass(frozen=True)
class FluidLPData:
    """Inputs of the fluid LP (arrays of length m).

    Attributes
    ----------
    rate
        Demand λ_j, requests/s.
    output
        o_j, tokens.
    volume
        V_j, token·iterations.
    work
        Marginal work u_j, s.
    c0
        Fixed iteration cost, s.
    capacity
        C, KV tokens (``None``: no capacity row; a ``load_limit`` row keeps A ≤ 1 − margin).
    latency_targets
        L_j, s (``inf`` = none).
    ttft_target
        F, s (``None`` = none).
    floor
        φ_j ∈ [0, 1].
    values
        r_j per output token.
    labels
        Type names.
    """

    rate: np.ndarray
    output: np.ndarray
    volume: np.ndarray
    work: np.ndarray
    c0: float
    capacity: float | None
    latency_targets: np.ndarray
    ttft_target: float | None
    floor: np.ndarray
    values: np.ndarray
    labels: tuple[str, ...] = ()
    load_margin: float = LOAD_MARGIN

    @property
    def m(self) -> int:
        return int(self.rate.shape[0])

    @classmethod
    def from_arrays(
        cls,
        arrays: Any,
        *,
        latency_targets: Sequence[float | None] | float | None = None,
        ttft_target: float | None = None,
        fairness: Sequence[float] | float | None = None,
        values: Sequence[float] | None = None,
    ) -> FluidLPData:
        """From :class:`fluidopt.bounds.fluid.FluidArrays` plus targets (seconds)."""
        m = len(arrays.rate)

        def per_type(v: Any, default: float, name: str) -> np.ndarray:
            if v is None:
                return np.full(m, default)
            if np.ndim(v) == 0:
                return np.full(m, float(v))
            out = np.array([default if x is None else float(x) for x in v], dtype=np.float64)
            if out.shape != (m,):
                raise InputError(f"{name}: expected 1 or {m} values (got {len(out)})", field=name)
            return out

        lat = per_type(latency_targets, math.inf, "latency_targets")
        if np.any(lat <= 0):
            raise InputError("latency targets must be > 0 s", field="latency_targets")
        if ttft_target is not None and ttft_target <= 0:
            raise InputError("the TTFT target must be > 0 s", field="ttft_target")
        floor = per_type(fairness, 0.0, "fairness")
        if np.any((floor < 0) | (floor > 1)):
            raise InputError("fairness floors must lie in [0, 1]", field="fairness")
        vals = per_type(values, 1.0, "values")
        if np.any(vals < 0):
            raise InputError("per-token values must be ≥ 0", field="values")
        return cls(
            rate=np.asarray(arrays.rate, dtype=np.float64),
            output=np.asarray(arrays.output, dtype=np.float64),
            volume=np.asarray(arrays.volume, dtype=np.float64),
            work=np.asarray(arrays.work, dtype=np.float64),
            c0=float(arrays.c0),
            capacity=arrays.capacity,
            latency_targets=lat,
            ttft_target=ttft_target,
            floor=floor,
            values=vals,
            labels=tuple(arrays.labels),
        )

    def load_rows(self) -> list[tuple[str, np.ndarray, float]]:
        """The "load ≤ rhs" rows as (name, coefficients, rhs)."""
        rows: list[tuple[str, np.ndarray, float]] = []
        if self.capacity is not None:
            rows.append(("capacity", self.c0 * self.volume / self.capacity + self.work, 1.0))
        else:
            rows.append(("load_limit", self.work.copy(), 1.0 - self.load_margin))
        for j in range(self.m):
            if math.isfinite(self.latency_targets[j]):
                rows.append((f"latency[{j}]", self.work.copy(), 1.0 - self.c0 * self.output[j] / self.latency_targets[j]))
        if self.ttft_target is not None:
            rows.append(("ttft", self.work.copy(), 1.0 - self.c0 / self.ttft_target))
        return rows


def build(data: FluidLPData) -> Any:
    """The fluid LP as a Pyomo ``ConcreteModel`` (variables ``x[j]``, requests/s)."""
    import pyomo.environ as pyo

    model = pyo.ConcreteModel(name="fluid_lp")
    model.J = pyo.RangeSet(0, data.m - 1)
    model.x = pyo.Var(
        model.J, bounds=lambda _, j: (float(data.floor[j] * data.rate[j]), None), domain=pyo.NonNegativeReals
    )
    model.throughput = pyo.Objective(
        expr=sum(float(data.values[j] * data.output[j]) * model.x[j] for j in model.J), sense=pyo.maximize
    )
    model.demand = pyo.Constraint(model.J, rule=lambda m, j: m.x[j] <= float(data.rate[j]))
    latency_rows = {}
    for name, coef, rhs in data.load_rows():
        expr = sum(float(coef[j]) * model.x[j] for j in model.J) <= float(rhs)
        if name.startswith("latency["):
            latency_rows[int(name[8:-1])] = expr
        else:
            setattr(model, name, pyo.Constraint(expr=expr))
    if latency_rows:
        model.latency = pyo.Constraint(sorted(latency_rows), rule=lambda m, j: latency_rows[j])
    return model


def build_cvxpy(data: FluidLPData) -> Any:
    """The CVXPY twin of :func:`build`: same rows, same names (``fluidopt_name``)."""
    import cvxpy as cp

    x = cp.Variable(data.m, name="x")
    constraints = []

    def named(con: Any, name: str) -> Any:
        con.fluidopt_name = name  # read back by fluidopt.solver to name the dual
        return con

    for j in range(data.m):
        constraints.append(named(x[j] <= float(data.rate[j]), f"demand[{j}]"))
    for name, coef, rhs in data.load_rows():
        constraints.append(named(coef @ x <= float(rhs), name))
    constraints.append(x >= data.floor * data.rate)
    problem = cp.Problem(cp.Maximize((data.values * data.output) @ x), constraints)
    problem.fluidopt_x = x
    return problem


def admitted_rates(model: Any, data: FluidLPData) -> np.ndarray:
    """x_j (requests/s) from a solved model of either kind."""
    if hasattr(model, "fluidopt_x"):
        return np.clip(np.asarray(model.fluidopt_x.value, dtype=np.float64).reshape(-1), 0.0, data.rate)
    return np.clip(np.array([model.x[j].value for j in range(data.m)], dtype=np.float64), 0.0, data.rate)


def dual_sign(model: Any) -> float:
    """Factor turning the interface's raw row duals into d(objective)/d(rhs).

    Both Pyomo's HiGHS interface and CVXPY report the multipliers of binding ≤ rows
    of this maximisation as ≥ 0 (pinned by a finite-difference test), so the factor
    is 1; it stays a function so that a change of convention is fixed in one place.
    """
    return 1.0


def shadow_prices(raw: dict[str, float], data: FluidLPData, *, maximise_sign: float, model: Any = None) -> dict[str, float]:
    """Named shadow prices d(objective)/d(rhs) from the solver's raw duals.

    For a CVXPY problem the duals are read from its named constraints directly, so the
    names do not depend on how the solver layer labels them.
    """
    if model is not None and hasattr(model, "fluidopt_x"):
        raw = {
            c.fluidopt_name: float(np.sum(c.dual_value))
            for c in model.constraints
            if hasattr(c, "fluidopt_name") and c.dual_value is not None
        }
    names = {f"demand[{j}]" for j in range(data.m)} | {name for name, _, _ in data.load_rows()}
    return {k: maximise_sign * float(v) + 0.0 for k, v in raw.items() if k in names}
