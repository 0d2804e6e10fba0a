"""The fluid benchmark of [WAIT] in closed form, and the driver of the fluid LP.

Conventions (``system-model.md``): a type-j request has prompt s_j and output o_j tokens,
is served in o_j service iterations and holds s_j + i KV tokens at the end of its i-th
one, so its KV-time volume is

    V_j = o_j·s_j + o_j(o_j + 1)/2          (token·iterations).

[WAIT] counts a separate prefill iteration and sums (l' + 1)(l + l'/2) with l = s_j,
l' = o_j; every closed form below is the paper's with V_j in its place
(:func:`wait_paper_volume` gives the paper's value so the two can be compared).

Times are in seconds, rates in requests per second, memory in KV tokens, throughput in
output tokens per second. The iteration-time model enters only through its fixed cost
c0 and the per-request marginal work u_j (``Deployment.marginal_work``; u_j = d1·V_j
for linear-kv).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fluidopt.deployment import Deployment
from fluidopt.errors import InputError


@dataclass(frozen=True)
class FluidType:
    """One request type of the fluid model.

    Attributes
    ----------
    rate
        Poisson arrival rate λ_j, requests per second (≥ 0).
    prompt
        Prompt tokens s_j (> 0; a mean may be fractional).
    output
        Output tokens o_j (≥ 1; a mean may be fractional).
    label
        Name shown in tables.
    """

    rate: float
    prompt: float
    output: float
    label: str = ""

    def __post_init__(self) -> None:
        for name in ("rate", "prompt", "output"):
            v = getattr(self, name)
            if not isinstance(v, (int, float, np.number)) or not math.isfinite(float(v)):
                raise InputError(f"type {self.label or '?'}: {name} must be a finite number (got {v!r})")
        if self.rate < 0:
            raise InputError(f"type {self.label or '?'}: rate must be ≥ 0 (got {self.rate})")
        if self.prompt <= 0 or self.output < 1:
            raise InputError(
                f"type {self.label or '?'}: prompt must be > 0 and output ≥ 1 (got {self.prompt}, {self.output})"
            )


def volume(prompt: np.ndarray | float, output: np.ndarray | float) -> np.ndarray | float:
    """KV-time volume V = o·s + o(o+1)/2 (token·iterations) in our convention."""
    s = np.asarray(prompt, dtype=np.float64)
    o = np.asarray(output, dtype=np.float64)
    v = o * s + o * (o + 1) / 2
    return v if np.ndim(v) else float(v)


def wait_paper_volume(prompt: np.ndarray | float, output: np.ndarray | float) -> np.ndarray | float:
    """[WAIT]'s per-request KV-time sum (l' + 1)(l + l'/2), with l = prompt, l' = output.

    The paper counts a prefill iteration holding l tokens followed by l' decode
    iterations holding l + 1 … l + l'. Our convention drops the separate prefill
    iteration, so V = (l'+1)(l + l'/2) − l = o·s + o(o+1)/2.
    """
    s = np.asarray(prompt, dtype=np.float64)
    o = np.asarray(output, dtype=np.float64)
    v = (o + 1) * (s + o / 2)
    return v if np.ndim(v) else float(v)


def parse_types(spec: str) -> list[FluidType]:
    """Parse ``RATE:PROMPT:OUTPUT[,RATE:PROMPT:OUTPUT...]`` (rate in 1/s, lengths in tokens).

    Raises
    ------
    InputError
        Naming the bad item.
    """
    types: list[FluidType] = []
    for k, item in enumerate(p for p in spec.split(",") if p.strip()):
        parts = item.strip().split(":")
        if len(parts) != 3:
            raise InputError(f"type {k + 1} {item!r}: expected RATE:PROMPT:OUTPUT", field="types")
        try:
            rate, prompt, output = (float(p) for p in parts)
        except ValueError:
            raise InputError(f"type {k + 1} {item!r}: RATE, PROMPT and OUTPUT must be numbers", field="types") from None
        types.append(FluidType(rate, prompt, output, label=f"p{parts[1]}d{parts[2]}"))
    if not types:
        raise InputError("no types given (expected RATE:PROMPT:OUTPUT[,...])", field="types")
    return types


@dataclass(frozen=True)
class FluidArrays:
    """The per-type arrays every fluid computation uses (all float64, length m).

    Attributes
    ----------
    rate, prompt, output
        λ_j (1/s), s_j and o_j (tokens).
    volume
        V_j, token·iterations.
    work
        Marginal work u_j, s.
    c0
        Fixed cost of an iteration, s.
    capacity
        KV capacity C, tokens (``None``: unlimited).
    labels
        Type names.
    """

    rate: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    volume: np.ndarray
    work: np.ndarray
    c0: float
    capacity: float | None
    labels: tuple[str, ...]

    @classmethod
    def build(cls, types: Sequence[FluidType], deployment: Deployment, capacity: float | None = None) -> FluidArrays:
        """Arrays for ``types`` on ``deployment`` (``capacity`` overrides its C)."""
        if not types:
            raise InputError("at least one type is needed")
        prompt = np.array([t.prompt for t in types], dtype=np.float64)
        output = np.array([t.output for t in types], dtype=np.float64)
        cap = float(capacity) if capacity is not None else deployment.capacity
        return cls(
            rate=np.array([t.rate for t in types], dtype=np.float64),
            prompt=prompt,
            output=output,
            volume=np.asarray(volume(prompt, output), dtype=np.float64),
            work=np.asarray(deployment.marginal_work(prompt, output), dtype=np.float64).reshape(-1),
            c0=float(deployment.time.c0),
            capacity=None if cap is None else float(cap),
            labels=tuple(t.label or f"type{j + 1}" for j, t in enumerate(types)),
        )


@dataclass
class FluidBenchmark:
    """The fluid equilibrium of a set of types on a deployment.

    Attributes
    ----------
    stable
        A < 1 and M* ≤ C (the stable region of the fluid model).
    load
        A = Σ_j λ_j u_j, the fraction of time spent on marginal work (dimensionless).
    delta_t
        ΔT* = c0 / (1 − A), s per iteration (``inf`` when A ≥ 1).
    n_per_stage
        n*_j = λ_j ΔT*, requests of type j in each of its o_j stages.
    n_in_service
        N*_j = n*_j o_j.
    kv_in_use
        M* = ΔT* Σ_j λ_j V_j, KV tokens.
    throughput_tokens_per_s
        Thr* = Σ_j λ_j o_j (output tokens per second); meaningful only when stable.
    throughput_requests_per_s
        Σ_j λ_j.
    latency
        Fluid latency o_j ΔT* per type, s.
    max_stable_scale
        sup{κ : κλ is in the stable region} = C / (c0 Σλ_jV_j + C·A) (= 1/A without a
        capacity); κ = max_stable_scale itself has M = C and is still stable, A stays < 1.
    reason
        Why the point is outside the region ("" when stable).
    """

    stable: bool
    load: float
    delta_t: float
    n_per_stage: np.ndarray
    n_in_service: np.ndarray
    kv_in_use: float
    capacity: float | None
    throughput_tokens_per_s: float
    throughput_requests_per_s: float
    latency: np.ndarray
    max_stable_scale: float
    reason: str
    arrays: FluidArrays = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary; ``inf`` becomes ``None``."""
        a = self.arrays

        def num(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "stable": self.stable,
            "reason": self.reason,
            "load": self.load,
            "delta_t": num(self.delta_t),
            "kv_in_use": num(self.kv_in_use),
            "capacity": self.capacity,
            "throughput_tokens_per_s": self.throughput_tokens_per_s,
            "throughput_requests_per_s": self.throughput_requests_per_s,
            "max_stable_scale": num(self.max_stable_scale),
            "max_stable_rate": num(self.max_stable_scale * self.throughput_requests_per_s),
            "c0": a.c0,
            "types": [
                {
                    "label": a.labels[j],
                    "rate": float(a.rate[j]),
                    "prompt": float(a.prompt[j]),
                    "output": float(a.output[j]),
                    "volume": float(a.volume[j]),
                    "work": float(a.work[j]),
                    "n_per_stage": num(float(self.n_per_stage[j])),
                    "n_in_service": num(float(self.n_in_service[j])),
                    "latency": num(float(self.latency[j])),
                }
                for j in range(len(a.rate))
            ],
        }


def max_stable_scale(arrays: FluidArrays) -> float:
    """Largest κ such that κλ stays in the stable region (sup; ``inf`` if λ = 0).

    With A(κ) = κA and M(κ) = c0 κ W / (1 − κA), W = Σ λ_j V_j, the condition M ≤ C is
    κ (c0 W + C A) ≤ C, which also forces κA < 1 when c0 W > 0; without a capacity only
    κA < 1 remains.
    """
    load = float(np.dot(arrays.rate, arrays.work))
    w = float(np.dot(arrays.rate, arrays.volume))
    if arrays.capacity is None:
        return 1.0 / load if load > 0 else math.inf
    denom = arrays.c0 * w + arrays.capacity * load
    return arrays.capacity / denom if denom > 0 else math.inf


def fluid_from_arrays(arrays: FluidArrays) -> FluidBenchmark:
    """Closed forms of ``fluid-and-wait.md`` §1 for prepared arrays."""
    a = arrays
    load = float(np.dot(a.rate, a.work))
    if load < 1:
        delta_t = a.c0 / (1 - load)
        n = a.rate * delta_t
        m = float(delta_t * np.dot(a.rate, a.volume))
    else:
        delta_t = math.inf
        n = np.where(a.rate > 0, math.inf, 0.0)
        m = math.inf
    reason = ""
    if load >= 1:
        reason = f"load A = Σ λ_j u_j = {load:.4g} ≥ 1: the server cannot keep up"
    elif a.capacity is not None and m > a.capacity * (1 + 1e-12):
        reason = f"fluid memory M* = {m:,.0f} KV tokens exceeds the capacity C = {a.capacity:,.0f}"
    return FluidBenchmark(
        stable=not reason,
        load=load,
        delta_t=delta_t,
        n_per_stage=n,
        n_in_service=n * a.output,
        kv_in_use=m,
        capacity=a.capacity,
        throughput_tokens_per_s=float(np.dot(a.rate, a.output)),
        throughput_requests_per_s=float(a.rate.sum()),
        latency=a.output * delta_t,
        max_stable_scale=max_stable_scale(a),
        reason=reason,
        arrays=a,
    )


def fluid_benchmark(
    types: Sequence[FluidType], deployment: Deployment, *, capacity: float | None = None
) -> FluidBenchmark:
    """The fluid benchmark ΔT*, n*_j, N*_j, M*, Thr* and the stable-region test.

    Parameters
    ----------
    types
        The request types (rates in 1/s, lengths in tokens).
    deployment
        Supplies c0 (s) and u_j (s); its capacity C (tokens) unless ``capacity`` is given.
    capacity
        Overrides the deployment's KV capacity, tokens.
    """
    return fluid_from_arrays(FluidArrays.build(types, deployment, capacity))


# ----------------------------------------------------------------------------- fluid LP
@dataclass
class FluidLPResult:
    """Admitted rates that maximise fluid throughput under capacity and targets.

    Attributes
    ----------
    status
        Solver status (``optimal`` …).
    throughput_tokens_per_s
        Optimal Σ_j o_j x_j (the objective with unit values is the same number).
    objective
        Σ_j r_j o_j x_j, value units per second.
    admitted_rates
        x_j, requests per second.
    shed_rates
        λ_j − x_j.
    duals
        Shadow prices d(objective)/d(right-hand side) of the named rows: ``capacity`` and
        ``latency[j]`` / ``ttft`` are per unit of load (rows are written as Σ load ≤ 1 − …),
        ``demand[j]`` per request/s of extra demand. ≥ 0 for binding rows.
    capacity_token_price
        d(objective)/dC, value per second per extra KV token (envelope theorem).
    delta_t, kv_in_use
        ΔT and M at the admitted rates (s, tokens).
    seconds, solver
        Solve time and interface.
    """

    status: str
    throughput_tokens_per_s: float | None
    objective: float | None
    admitted_rates: np.ndarray | None
    shed_rates: np.ndarray | None
    duals: dict[str, float]
    capacity_token_price: float | None
    delta_t: float | None
    kv_in_use: float | None
    seconds: float
    solver: str
    labels: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        def arr(v: np.ndarray | None) -> list[float] | None:
            return None if v is None else [float(x) for x in v]

        return {
            "status": self.status,
            "throughput_tokens_per_s": self.throughput_tokens_per_s,
            "objective": self.objective,
            "admitted_rates": arr(self.admitted_rates),
            "shed_rates": arr(self.shed_rates),
            "labels": list(self.labels),
            "duals": dict(self.duals),
            "capacity_token_price": self.capacity_token_price,
            "delta_t": self.delta_t,
            "kv_in_use": self.kv_in_use,
            "seconds": self.seconds,
            "solver": self.solver,
        }


def fluid_lp(
    types: Sequence[FluidType] | FluidArrays,
    deployment: Deployment | None = None,
    *,
    capacity: float | None = None,
    latency_targets: Sequence[float | None] | float | None = None,
    ttft_target: float | None = None,
    fairness: Sequence[float] | float | None = None,
    values: Sequence[float] | None = None,
    interface: str = "pyomo",
    time_limit: float | None = None,
) -> FluidLPResult:
    """Solve the fluid LP (``models/fluid_lp.py``) and read back rates and prices.

    Parameters
    ----------
    types, deployment
        The types and the deployment (or prepared :class:`FluidArrays`).
    capacity
        Overrides C, tokens.
    latency_targets
        L_j, s (one number for all types, or per type with ``None`` = no target).
    ttft_target
        F, s: bound on the iteration length ΔT.
    fairness
        φ_j ∈ [0, 1]: admit at least φ_j λ_j.
    values
        r_j, value per output token (default 1).
    interface
        ``"pyomo"`` or ``"cvxpy"`` (the twin formulation).
    """
    from fluidopt.models import fluid_lp as lp
    from fluidopt.solver import SolveOptions, solve

    if isinstance(types, FluidArrays):
        arrays = types if capacity is None else FluidArrays(**{**types.__dict__, "capacity": float(capacity)})
    else:
        arrays = FluidArrays.build(types, deployment, capacity)  # type: ignore[arg-type]
    data = lp.FluidLPData.from_arrays(
        arrays, latency_targets=latency_targets, ttft_target=ttft_target, fairness=fairness, values=values
    )
    if interface == "pyomo":
        model = lp.build(data)
    elif interface == "cvxpy":
        model = lp.build_cvxpy(data)
    else:
        raise InputError(f"unknown interface {interface!r} (pyomo, cvxpy)")
    res = solve(model, SolveOptions(time_limit=time_limit))
    if res.status != "optimal":
        return FluidLPResult(
            res.status, None, None, None, None, {}, None, None, None, res.seconds, res.solver, arrays.labels
        )
    x = lp.admitted_rates(model, data)
    duals = lp.shadow_prices(res.duals, data, maximise_sign=lp.dual_sign(model), model=model)
    thr = float(np.dot(arrays.output, x))
    load = float(np.dot(x, arrays.work))
    delta_t = arrays.c0 / (1 - load) if load < 1 else math.inf
    kv = float(delta_t * np.dot(x, arrays.volume))
    price = None
    if arrays.capacity is not None and "capacity" in duals:
        # Row Σ x_j (c0 V_j / C + u_j) ≤ 1: ∂L/∂C = μ · c0 Σ x_j V_j / C².
        price = duals["capacity"] * arrays.c0 * float(np.dot(x, arrays.volume)) / arrays.capacity**2
    return FluidLPResult(
        status="optimal",
        throughput_tokens_per_s=thr,
        objective=float(res.objective) if res.objective is not None else None,
        admitted_rates=x,
        shed_rates=np.maximum(arrays.rate - x, 0.0),
        duals=duals,
        capacity_token_price=price,
        delta_t=delta_t,
        kv_in_use=kv,
        seconds=res.seconds,
        solver=res.solver,
        labels=arrays.labels,
    )
