"""Capacity planning over GPU kinds: data preparation, solve and report.

The formulation is :mod:`fluidopt.models.fleet` (rows and units there); this module
turns request types and GPU kinds into its :class:`~fluidopt.models.fleet.FleetData`,
solves it through :mod:`fluidopt.solver` and reads the plan back: GPU counts per kind,
routed rates (requests/s) and each GPU's fluid load, ΔT (s) and KV in use (tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fluidopt.errors import InputError
from fluidopt.models.fleet import FleetData, build, solution


@dataclass(frozen=True)
class GpuKind:
    """A GPU kind: a deployment, its price and an optional count limit."""

    deployment: Any
    cost_per_hour: float
    max_count: int | None = None


def parse_gpus(spec: str) -> list[GpuKind]:
    """``DEPLOYMENT:COST[:MAX][,...]`` → GPU kinds (cost per hour, any currency).

    Raises
    ------
    InputError
        Naming the bad item.
    """
    from fluidopt.deployment import load_deployment

    kinds = []
    for k, item in enumerate(p.strip() for p in spec.split(",") if p.strip()):
        parts = item.split(":")
        if len(parts) not in (2, 3):
            raise InputError(f"GPU kind {k + 1} {item!r}: expected DEPLOYMENT:COST[:MAX]", field="gpus")
        try:
            cost = float(parts[1])
            mx = int(parts[2]) if len(parts) == 3 else None
        except ValueError:
            raise InputError(f"GPU kind {k + 1} {item!r}: COST must be a number and MAX an integer", field="gpus") from None
        if cost < 0 or (mx is not None and mx < 0):
            raise InputError(f"GPU kind {k + 1} {item!r}: COST and MAX must be ≥ 0", field="gpus")
        dep = load_deployment(parts[0])
        if dep.capacity is None:
            raise InputError(f"GPU kind {parts[0]!r} has no KV capacity", field="gpus")
        kinds.append(GpuKind(dep, cost, mx))
    if not kinds:
        raise InputError("no GPU kinds given (DEPLOYMENT:COST[:MAX][,...])", field="gpus")
    return kinds


@dataclass
class FleetPlan:
    """Result of :func:`plan`."""

    status: str
    cost_per_hour: float | None
    counts: np.ndarray | None
    routing: np.ndarray | None
    data: FleetData
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        d = self.data
        gpus, routing = [], []
        if self.counts is not None and self.routing is not None:
            for g, name in enumerate(d.kinds):
                y = int(self.counts[g])
                per = self.routing[:, g] / y if y > 0 else np.zeros(len(d.labels))
                load = float(np.dot(per, d.work[:, g]))
                dt = float(d.c0[g] / (1 - load)) if y > 0 and load < 1 else None
                kv = float(dt * np.dot(per, d.volume)) if dt is not None else None
                gpus.append(
                    {
                        "kind": name,
                        "count": y,
                        "cost_per_hour": float(d.cost[g]),
                        "load_per_gpu": load if y > 0 else None,
                        "delta_t": dt,
                        "kv_in_use_per_gpu": kv,
                        "capacity": float(d.capacity[g]),
                        **({} if d.derate is None else {"derate": float(d.derate[g])}),
                    }
                )
                for j, lab in enumerate(d.labels):
                    if self.routing[j, g] > 1e-9:
                        routing.append({"type": lab, "kind": name, "rate": float(self.routing[j, g])})
        return {
            "status": self.status,
            "cost_per_hour": self.cost_per_hour,
            "total_gpus": int(self.counts.sum()) if self.counts is not None else None,
            "seconds": self.seconds,
            "gpus": gpus,
            "routing": routing,
        }


def plan(
    types: Sequence[Any],
    kinds: Sequence[GpuKind],
    *,
    latency_target: float | None = None,
    headroom: float = 0.0,
    time_limit: float = 30.0,
    volume: np.ndarray | None = None,
    work: np.ndarray | None = None,
    derate: Sequence[float] | np.ndarray | None = None,
) -> FleetPlan:
    """Minimum-cost GPU counts and routing keeping every GPU inside its stable region.

    Parameters
    ----------
    types
        ``FluidType``-like objects (rate 1/s, prompt, output tokens).
    kinds
        GPU kinds (:func:`parse_gpus`).
    latency_target
        Fluid end-to-end latency target L (s) for every type.
    headroom
        Fraction of each GPU's KV capacity kept free, in [0, 1).
    volume, work
        Per-type V_j (token·iterations) and per-(type, kind) u_jg (s) to use instead of
        the values at the types' lengths — e.g. per-request means of a binned trace.
    derate
        Per kind, the fraction ρ_g ∈ (0, 1] of its fluid capacity row it may use
        (simulated capacities under an SLO); default 1.
    """
    from fluidopt.solver import SolveOptions, solve

    if not 0 <= headroom < 1:
        raise InputError(f"headroom must lie in [0, 1) (got {headroom})", field="headroom")
    if derate is not None and (len(derate) != len(kinds) or not all(0 < r <= 1 for r in derate)):
        raise InputError(f"derate needs one factor in (0, 1] per GPU kind (got {list(derate)})", field="derate")
    prompt = np.array([t.prompt for t in types], dtype=np.float64)
    output = np.array([t.output for t in types], dtype=np.float64)
    data = FleetData(
        rate=np.array([t.rate for t in types], dtype=np.float64),
        output=output,
        volume=output * prompt + output * (output + 1) / 2 if volume is None else np.asarray(volume, dtype=np.float64),
        work=(
            np.column_stack(
                [np.asarray(k.deployment.marginal_work(prompt, output), dtype=np.float64).reshape(-1) for k in kinds]
            )
            if work is None
            else np.asarray(work, dtype=np.float64)
        ),
        c0=np.array([k.deployment.time.c0 for k in kinds], dtype=np.float64),
        capacity=np.array([(1 - headroom) * k.deployment.capacity for k in kinds], dtype=np.float64),
        cost=np.array([k.cost_per_hour for k in kinds], dtype=np.float64),
        max_count=np.array([np.inf if k.max_count is None else k.max_count for k in kinds], dtype=np.float64),
        latency_target=latency_target,
        kinds=tuple(k.deployment.name for k in kinds),
        labels=tuple(getattr(t, "label", "") or f"type{j + 1}" for j, t in enumerate(types)),
        derate=None if derate is None else np.asarray(derate, dtype=np.float64),
    )
    model = build(data)
    res = solve(model, SolveOptions(time_limit=time_limit, mip_gap=1e-9))
    if not res.has_solution:
        return FleetPlan(res.status, None, None, None, data, res.seconds)
    x, y = solution(model, data)
    return FleetPlan(res.status, float(np.dot(data.cost, y)), y, x, data, res.seconds)
