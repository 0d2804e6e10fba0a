"""Threshold programs for WAIT and Nested WAIT (``fluid-and-wait.md`` §3–§5).

Conventions: volume V_j = o_j s_j + o_j(o_j+1)/2 (token·iterations, our convention),
marginal work u_j in seconds, rates in requests per second, memory in KV tokens.

WAIT (types known). Integer thresholds n_j ≥ 1 with

    keep-up[j]   n_j ≥ (1+ε) λ_j (c0 + Σ_k u_k n_k)        (linear)
    memory       Σ_j V_j n_j ≤ C

(the spec's **pipeline** row). Under the paper's rule a type's stages advance only in
batches where it admits n_j new requests, so after warm-up every stage holds n_j and
the pipeline row is exact. Under the authors' simulator variant (resident stages advance
in every batch) each stage of type j holds n_j requests only in a fraction π_j = ρ_j/n_j
of the batches (ρ_j = λ_j D, D the expected iteration length c0/(1 − (1+ε)A)), and the
**chance** row (``memory_rule="chance"``, for workloads whose long, rare types make
Σ_j V_j > C even at n = 1) is a normal approximation, stages independent: memory mean
≤ D Σ_j λ_j V_j (= M* at ΔT = D, whatever n is), variance Σ_j (n_j ρ_j − ρ_j²) S2_j with
S2_j = E[Σ_{i=1..o}(s + i)²]; mean + z·sd ≤ C is the linear row
Σ_j ρ_j S2_j n_j ≤ ((C − D Σ λV)/z)² + Σ_j ρ_j² S2_j. With it, keep-up is mean-based,
n_j ≥ (1+ε)λ_j D, and the worst-case row ΔT(n) ≤ D is dropped: with many rare types the
full-pipeline ΔT(n) = c0 + Σ u_j n_j is far longer than any iteration that occurs.

and either objective

* ``memory``: minimise the pipeline memory M^π = Σ_j V_j n_j (:func:`build_wait_memory`);
* ``latency``: a mean-latency proxy. For a fixed cap D on the iteration length
  (row c0 + Σ u_k n_k ≤ D, keep-up with D in place of ΔT) the Kingman-type bound on
  type j's queue, q_j = 2 n_j + ρ_j / (2(n_j − ρ_j)) with ρ_j = λ_j D, is convex in n_j;
  by Little's law the mean latency is about (Σ_j q_j + Σ_j λ_j T_j) / Σ_j λ_j with T_j
  the time in service: o_j n_j/λ_j under the paper's rule (a type's stages advance only
  in batches where it is eligible, once per n_j arrivals) and o_j D under the authors'
  simulator variant (``rule="advance"``: resident stages always advance). Keep-up stays
  exact; n_j > ρ_j is the proxy's domain.
  :func:`build_wait_latency` writes the convex term exactly at integer n_j as the
  maximum of its secants between consecutive integers (sampled geometrically far from
  ρ_j, where the secants then over-estimate), so for a fixed D it is a MILP; the caller
  scans D. This is how the project makes the spec's "convex for a fixed ΔT" proxy
  solvable by HiGHS, which has no conic constraints.

Nested WAIT (one prompt length s, lengths unknown). Segment boundaries
b_0 = 0 < b_1 < … < b_K, Λ_k the rate reaching segment k, p_k = Λ_k/Λ_{k−1};
conditions ΔT(n) ≤ n_1 / ((1+ε)Λ_1) and p_k < n_k/n_{k−1} < 1; base memory
M^π = Σ_k n_k Σ_{j∈seg k}(s + j); safety buffer
Σ_{k≥2}(s + b_{k−1})[n_k + ln(K(1 + T/c0)/δ)/θ_k] with θ_k the positive root of
exp(−θ n_k)(1 − p_k + p_k e^θ)^{n_{k−1}} = 1. (The paper's ζT/d0 under its scaling
(d0 → d0/ζ) is T/c0 in real units: the number of fixed-cost iterations in the horizon.)
:func:`nested_search` picks boundaries among candidate cut points and integer n_k
by exhaustive search with Pareto-pruned dynamic programming over segments — exact
over the candidates given. :func:`practical_rule` is the authors' calibration.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fluidopt.errors import InputError


# ============================================================================ WAIT
@dataclass(frozen=True)
class WaitData:
    """Inputs of the WAIT threshold programs (arrays of length m).

    Attributes
    ----------
    rate
        λ_j, requests/s.
    output
        o_j, tokens.
    volume
        V_j, token·iterations (pipeline memory per unit of threshold).
    work
        u_j, s.
    c0
        Fixed iteration cost, s.
    capacity
        C, KV tokens.
    epsilon
        Keep-up slack ε ≥ 0.
    labels
        Type names.
    """

    rate: np.ndarray
    output: np.ndarray
    volume: np.ndarray
    work: np.ndarray
    c0: float
    capacity: float
    epsilon: float = 0.05
    labels: tuple[str, ...] = ()
    stage_sq: np.ndarray | None = None
    memory_rule: str = "pipeline"
    z: float = 3.0
    rule: str = "paper"

    @property
    def m(self) -> int:
        return int(self.rate.shape[0])

    def upper_bounds(self) -> np.ndarray:
        """n_j ≤ ⌊(C − Σ_{k≠j} V_k)/V_j⌋: the pipeline row with every other n_k = 1
        (a loose cap of 10⁶ under the chance rule, where the row is different)."""
        if self.memory_rule == "chance":
            return np.full(self.m, 1e6)
        rest = self.volume.sum() - self.volume
        return np.maximum(np.floor((self.capacity - rest) / self.volume), 1.0)


def build_wait_memory(data: WaitData) -> Any:
    """Pyomo MILP: minimise Σ V_j n_j subject to keep-up and memory (variables ``n[j]``)."""
    import pyomo.environ as pyo

    model = pyo.ConcreteModel(name="wait_thresholds_memory")
    model.J = pyo.RangeSet(0, data.m - 1)
    ub = data.upper_bounds()
    model.n = pyo.Var(model.J, domain=pyo.PositiveIntegers, bounds=lambda _, j: (1, float(ub[j])))
    model.memory_used = pyo.Objective(expr=sum(float(data.volume[j]) * model.n[j] for j in model.J))
    _keep_up_rows(model, data, None)
    model.memory = pyo.Constraint(expr=sum(float(data.volume[j]) * model.n[j] for j in model.J) <= data.capacity)
    return model


def _keep_up_rows(model: Any, data: WaitData, cap_d: float | None) -> None:
    """keep-up[j]: n_j ≥ (1+ε) λ_j ΔT(n), exactly; with a cap D also ΔT(n) ≤ D."""
    import pyomo.environ as pyo

    busy = [j for j in range(data.m) if data.rate[j] > 0]
    delta_t = data.c0 + sum(float(data.work[k]) * model.n[k] for k in model.J)
    model.keep_up = pyo.Constraint(
        busy, rule=lambda m, j: m.n[j] >= (1 + data.epsilon) * float(data.rate[j]) * delta_t
    )
    if cap_d is not None:
        model.iteration = pyo.Constraint(expr=delta_t <= cap_d)


def queue_bound(n: np.ndarray | float, rho: np.ndarray | float) -> np.ndarray | float:
    """Kingman-type bound on a type's queue, 2n + ρ/(2(n − ρ)) requests (``inf`` if n ≤ ρ)."""
    n = np.asarray(n, dtype=np.float64)
    rho = np.asarray(rho, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(n > rho, 2 * n + rho / (2 * (n - rho)), np.inf)
    return q if np.ndim(q) else float(q)


def latency_proxy(data: WaitData, n: np.ndarray) -> float:
    """Mean-latency proxy (s) of thresholds ``n``: at their own ΔT(n) = c0 + Σ u n under
    the pipeline rule, at the expected c0/(1 − (1+ε)A) under the chance rule."""
    if data.memory_rule == "chance":
        delta_t = data.c0 / (1 - (1 + data.epsilon) * float(np.dot(data.rate, data.work)))
    else:
        delta_t = data.c0 + float(np.dot(data.work, n))
    busy = data.rate > 0
    q = queue_bound(n[busy], data.rate[busy] * delta_t)
    return float((np.sum(q) + service_time_sum(data, n, delta_t)) / data.rate.sum())


def service_time_sum(data: WaitData, n: np.ndarray, delta_t: float) -> float:
    """Σ_j λ_j × (time a type-j request spends in service), request·s per s.

    Paper rule: a type's stages advance only in batches where it is eligible, once per
    n_j arrivals, so service takes o_j·max(ΔT, n_j/λ_j) ≈ o_j n_j/λ_j (keep-up makes
    n_j/λ_j ≥ ΔT) and the sum is Σ_j o_j n_j. Authors' simulator variant (resident
    stages always advance): o_j ΔT, sum ΔT Σ_j λ_j o_j.
    """
    if data.rule == "advance":
        return float(delta_t * np.dot(data.rate, data.output))
    busy = data.rate > 0
    return float(np.sum(data.output[busy] * np.maximum(n[busy], data.rate[busy] * delta_t)))


def _breakpoints(lo: int, hi: int, dense: int = 8) -> list[int]:
    """Integers lo..hi: every one up to lo + dense, then geometric steps (×1.15)."""
    pts = list(range(lo, min(hi, lo + dense) + 1))
    x = float(pts[-1])
    while pts[-1] < hi:
        x = max(x * 1.15, x + 1)
        pts.append(min(int(x), hi))
    return pts


def build_wait_latency(data: WaitData, cap_d: float) -> Any:
    """Pyomo MILP for a fixed iteration-length cap D (s): minimise the latency proxy.

    Objective (Σ_j t_j + D Σ_j λ_j o_j)/Σ_j λ_j with t_j ≥ the secants of
    2n + ρ_j/(2(n − ρ_j)), ρ_j = λ_j D, between consecutive breakpoints.
    """
    import pyomo.environ as pyo

    model = pyo.ConcreteModel(name="wait_thresholds_latency")
    model.J = pyo.RangeSet(0, data.m - 1)
    ub = data.upper_bounds()
    # the proxy is finite only for n_j > ρ_j = λ_j D: its domain, not a keep-up condition
    lo = np.array([max(1, math.floor(data.rate[j] * cap_d) + 1) for j in range(data.m)], dtype=int)
    # the iteration row bounds every n_j as well (pipeline rule only)
    slack = cap_d - data.c0 - float(np.dot(data.work, lo)) if data.memory_rule != "chance" else math.inf
    hi = np.array(
        [
            int(min(ub[j], lo[j] + (math.floor(slack / data.work[j]) if data.work[j] > 0 and slack < math.inf else ub[j])))
            for j in range(data.m)
        ],
        dtype=int,
    )
    hi = np.maximum(hi, lo)
    model.n = pyo.Var(model.J, domain=pyo.PositiveIntegers, bounds=lambda _, j: (int(lo[j]), int(hi[j])))
    model.t = pyo.Var(model.J, domain=pyo.NonNegativeReals)
    cuts = []
    for j in range(data.m):
        if data.rate[j] <= 0:
            cuts.append((j, 2.0, 0.0))  # idle type: t_j ≥ 2 n_j
            continue
        rho = data.rate[j] * cap_d
        pts = _breakpoints(int(lo[j]), int(hi[j]))
        if len(pts) == 1:
            cuts.append((j, 0.0, float(queue_bound(pts[0], rho))))
        for a, b in itertools.pairwise(pts):
            ga, gb = float(queue_bound(a, rho)), float(queue_bound(b, rho))
            slope = (gb - ga) / (b - a)
            cuts.append((j, slope, ga - slope * a))
    model.C = pyo.RangeSet(0, len(cuts) - 1)
    model.secant = pyo.Constraint(
        model.C, rule=lambda m, c: m.t[cuts[c][0]] >= cuts[c][1] * m.n[cuts[c][0]] + cuts[c][2]
    )
    if data.memory_rule == "chance":
        # mean-based keep-up at the expected iteration length D (no worst-case ΔT(n) row)
        busy = [j for j in range(data.m) if data.rate[j] > 0]
        model.keep_up = pyo.Constraint(
            busy, rule=lambda m, j: m.n[j] >= (1 + data.epsilon) * float(data.rate[j]) * cap_d
        )
    else:
        _keep_up_rows(model, data, cap_d)
    if data.memory_rule == "chance":
        if data.stage_sq is None:
            raise InputError("the chance memory rule needs stage_sq (E[Σ (s+i)²] per type)")
        rho = data.rate * cap_d
        mean = cap_d * float(np.dot(data.rate, data.volume))
        room = data.capacity - mean
        if room <= 0:
            model.memory = pyo.Constraint(expr=model.n[0] <= 0)  # infeasible by construction
        else:
            rhs = (room / data.z) ** 2 + float(np.dot(rho**2, data.stage_sq))
            model.memory = pyo.Constraint(
                expr=sum(float(rho[j] * data.stage_sq[j]) * model.n[j] for j in model.J) <= rhs
            )
    else:
        model.memory = pyo.Constraint(
            expr=sum(float(data.volume[j]) * model.n[j] for j in model.J) <= data.capacity
        )
    total = float(data.rate.sum())
    if data.rule == "advance":
        service = cap_d * float(np.dot(data.rate, data.output))
    else:  # keep-up gives n_j ≥ λ_j ΔT, so max(n_j, λ_j ΔT) = n_j
        service = sum(float(data.output[j]) * model.n[j] for j in model.J if data.rate[j] > 0)
    model.latency = pyo.Objective(
        expr=(sum(model.t[j] for j in model.J) + service) / total
    )
    return model


def thresholds_of(model: Any, m: int) -> np.ndarray:
    """Integer thresholds n_j read from a solved model."""
    return np.array([int(round(model.n[j].value)) for j in range(m)], dtype=np.int64)


# ============================================================================ Nested WAIT
@dataclass(frozen=True)
class NestedData:
    """Inputs of Nested WAIT calibration.

    Attributes
    ----------
    prompt
        Prompt length s shared by all requests (tokens; a trace's mean).
    lengths
        Possible output lengths o_(1) < … < o_(m) (tokens).
    rates
        λ_i of each length, requests/s.
    stage_work
        w(j) for service iterations j = 1..o_(m): the per-request marginal work of
        iteration j (s); index 0 is iteration 1.
    c0
        Fixed iteration cost, s.
    capacity
        C, KV tokens.
    epsilon
        Keep-up slack ε ≥ 0 on the first segment.
    delta
        Overflow probability δ over the horizon.
    horizon
        T, s.
    """

    prompt: float
    lengths: np.ndarray
    rates: np.ndarray
    stage_work: np.ndarray
    c0: float
    capacity: float
    epsilon: float = 0.05
    delta: float = 0.01
    horizon: float = 3600.0

    @property
    def total_rate(self) -> float:
        return float(self.rates.sum())

    def reach_rate(self, b: int) -> float:
        """Rate of requests with output > b (those that reach iteration b + 1), 1/s."""
        return float(self.rates[self.lengths > b].sum())


@dataclass
class NestedPlan:
    """Segments and thresholds with their memory accounting (tokens)."""

    boundaries: list[int]
    thresholds: list[int]
    continue_prob: list[float]
    base_memory: float
    buffer: float
    delta_t: float
    thetas: list[float] = field(default_factory=list)
    feasible: bool = True
    reason: str = ""

    @property
    def total_memory(self) -> float:
        return self.base_memory + self.buffer

    def segments(self) -> list[tuple[int, int, int]]:
        """(start, end, threshold) per segment, iterations inclusive."""
        starts = [0, *self.boundaries[:-1]]
        return [(a + 1, b, n) for a, b, n in zip(starts, self.boundaries, self.thresholds)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "boundaries": list(self.boundaries),
            "thresholds": list(self.thresholds),
            "continue_prob": list(self.continue_prob),
            "base_memory": self.base_memory,
            "buffer": self.buffer,
            "total_memory": self.total_memory,
            "delta_t": self.delta_t,
            "thetas": list(self.thetas),
            "feasible": self.feasible,
            "reason": self.reason,
        }


def theta_root(n_prev: int, n_k: int, p: float) -> float:
    """Positive root θ of exp(−θ n_k)(1 − p + p e^θ)^{n_prev} = 1.

    f(θ) = −θ n_k + n_prev ln(1 − p + p e^θ) is convex with f(0) = 0, f'(0) =
    p n_prev − n_k < 0 and slope → n_prev − n_k > 0, so the root is unique; it is
    bracketed by doubling and found by Brent's method. Requires p n_prev < n_k < n_prev.
    """
    from scipy.optimize import brentq

    if not (p * n_prev < n_k < n_prev) or not (0 < p < 1):
        raise InputError(f"θ needs p·n_prev < n_k < n_prev and 0 < p < 1 (got p={p}, {n_prev}, {n_k})")

    def f(t: float) -> float:
        # ln(1 − p + p e^t) computed stably for large t
        return -t * n_k + n_prev * (t + math.log(p + (1 - p) * math.exp(-t)))

    hi = 1.0
    while f(hi) <= 0:
        hi *= 2
    lo = hi / 2 if hi > 1 else 0.0
    # f < 0 just right of 0; start the bracket away from the trivial root
    if lo == 0.0:
        lo = 1e-12
        while f(lo) >= 0 and lo < hi:
            lo *= 10
    return float(brentq(f, lo, hi, xtol=1e-14, rtol=1e-12))


def _segment_tables(data: NestedData, bounds: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per segment: memory per unit threshold Σ(s+j), work Σ w(j), and p_k."""
    starts = [0, *bounds[:-1]]
    mem = np.array([sum(data.prompt + j for j in range(a + 1, b + 1)) for a, b in zip(starts, bounds)])
    work = np.array([float(data.stage_work[a:b].sum()) for a, b in zip(starts, bounds)])
    reach = np.array([data.reach_rate(a) for a in starts])
    p = np.ones(len(bounds))
    p[1:] = reach[1:] / np.maximum(reach[:-1], 1e-300)
    return mem, work, p


def evaluate_nested(data: NestedData, bounds: Sequence[int], n: Sequence[int]) -> NestedPlan:
    """Memory accounting and condition check of given segments and thresholds."""
    bounds, n = list(map(int, bounds)), list(map(int, n))
    mem, work, p = _segment_tables(data, bounds)
    K = len(bounds)
    delta_t = data.c0 + float(np.dot(work, n))
    base = float(np.dot(mem, n))
    log_term = math.log(K * (1 + data.horizon / data.c0) / data.delta)
    reasons = []
    if delta_t > n[0] / ((1 + data.epsilon) * data.total_rate):
        reasons.append(
            f"ΔT(n) = {delta_t:.4g} s > n_1/((1+ε)Λ) = {n[0] / ((1 + data.epsilon) * data.total_rate):.4g} s"
        )
    buffer, thetas = 0.0, []
    for k in range(1, K):
        if not (p[k] * n[k - 1] < n[k] < n[k - 1]):
            reasons.append(f"segment {k + 1}: need p_k < n_k/n_(k-1) < 1 (p_k = {p[k]:.3g}, n = {n[k - 1]}, {n[k]})")
            thetas.append(math.nan)
            buffer = math.inf
            continue
        th = theta_root(n[k - 1], n[k], float(p[k]))
        thetas.append(th)
        buffer += (data.prompt + bounds[k - 1]) * (n[k] + log_term / th)
    if base + buffer > data.capacity:
        reasons.append(f"base memory + buffer = {base + buffer:,.0f} > C = {data.capacity:,.0f}")
    return NestedPlan(bounds, n, [float(x) for x in p], base, buffer, delta_t, thetas, not reasons, "; ".join(reasons))


def _best_thresholds(
    data: NestedData, bounds: list[int], mem: np.ndarray, work: np.ndarray, p: np.ndarray, n1_cap: int
) -> tuple[float, list[int]] | None:
    """Exact minimum of base + buffer over integer n for fixed boundaries (DP, Pareto)."""
    K = len(bounds)
    log_term = math.log(K * (1 + data.horizon / data.c0) / data.delta)
    lam = data.total_rate * (1 + data.epsilon)
    best: tuple[float, list[int]] | None = None
    for n1 in range(max(K, 1), n1_cap + 1):
        budget = n1 / lam - data.c0 - work[0] * n1  # Σ_{k≥2} w_k n_k must fit in this, s
        if budget < 0:
            continue
        cost0 = mem[0] * n1
        # base memory grows with n1 and the buffer is ≥ 0: no larger n1 can do better
        if cost0 > data.capacity or (best is not None and cost0 >= best[0]):
            break
        # states: n_prev → Pareto list of (work, cost, path), cost strictly decreasing in work
        states: dict[int, list[tuple[float, float, list[int]]]] = {n1: [(0.0, cost0, [n1])]}
        for k in range(1, K):
            new: dict[int, list[tuple[float, float, list[int]]]] = {}
            for n_prev, front in states.items():
                lo = math.floor(p[k] * n_prev) + 1
                for nk in range(lo, n_prev):
                    th = theta_root(n_prev, nk, float(p[k]))
                    add_cost = mem[k] * nk + (data.prompt + bounds[k - 1]) * (nk + log_term / th)
                    add_work = work[k] * nk
                    for w0, c0_, path in front:
                        w1, c1 = w0 + add_work, c0_ + add_cost
                        if w1 > budget + 1e-15 or c1 > data.capacity:
                            continue
                        new.setdefault(nk, []).append((w1, c1, [*path, nk]))
            states = {}
            for nk, items in new.items():
                items.sort(key=lambda t: (t[0], t[1]))
                kept: list[tuple[float, float, list[int]]] = []
                for it in items:
                    if not kept or it[1] < kept[-1][1] - 1e-12:
                        kept.append(it)
                states[nk] = kept
            if not states:
                break
        for front in states.values():
            for _, c, path in front:
                if len(path) == K and (best is None or c < best[0]):
                    best = (c, path)
    return best


def nested_search(
    data: NestedData,
    candidates: Sequence[int],
    *,
    max_segments: int = 4,
    n1_cap: int = 2000,
) -> NestedPlan:
    """Boundaries among ``candidates`` (plus b_K = o_(m)) and integer n_k minimising
    base memory + safety buffer subject to the Nested WAIT conditions and ≤ C.

    Every subset of at most ``max_segments`` − 1 interior cut points is tried and, for
    each, the thresholds are optimised exactly by :func:`_best_thresholds`.

    Raises
    ------
    InputError
        When no candidate configuration satisfies the conditions (the message says why).
    """
    b_last = int(data.lengths.max())
    cands = sorted({int(c) for c in candidates if 0 < c < b_last and data.reach_rate(int(c)) > 0})
    best: NestedPlan | None = None
    for k in range(0, max_segments):
        for cuts in itertools.combinations(cands, k):
            bounds = [*cuts, b_last]
            mem, work, p = _segment_tables(data, bounds)
            if np.any(p[1:] >= 1):
                continue  # no request finishes inside some segment: a cut there is pointless
            found = _best_thresholds(data, bounds, mem, work, p, n1_cap)
            if found is None:
                continue
            plan = evaluate_nested(data, bounds, found[1])
            if plan.feasible and (best is None or plan.total_memory < best.total_memory - 1e-9):
                best = plan
    if best is None:
        single = nested_min_single(data)
        raise InputError(
            "no Nested WAIT configuration fits: "
            + (single.reason if single is not None else "the first segment cannot keep up (load ≥ 1)")
        )
    return best


def nested_best(data: NestedData, boundaries: Sequence[int], *, n1_cap: int = 2000) -> NestedPlan | None:
    """The plan of least base memory + safety buffer for the given segment boundaries.

    Exact over integer thresholds (the dynamic programme of :func:`nested_search`, for
    one boundary set instead of every subset of the candidates). ``None`` when no
    thresholds meet the conditions, or when some segment after the first has p_k = 1
    (no request finishes in the segment before it).
    """
    bounds = [int(b) for b in boundaries]
    mem, work, p = _segment_tables(data, bounds)
    if np.any(p[1:] >= 1):
        return None
    found = _best_thresholds(data, bounds, mem, work, p, n1_cap)
    return None if found is None else evaluate_nested(data, bounds, found[1])


def nested_min_single(data: NestedData) -> NestedPlan | None:
    """The one-segment plan with the smallest n_1 that keeps up (for error messages)."""
    b_last = int(data.lengths.max())
    mem, work, _ = _segment_tables(data, [b_last])
    lam = data.total_rate * (1 + data.epsilon)
    if work[0] * lam >= 1:
        return None
    n1 = max(1, math.ceil(lam * data.c0 / (1 - lam * work[0])))
    return evaluate_nested(data, [b_last], [n1])


def practical_rule(
    data: NestedData, total_limit: float, n_segments: int, *, eta: float = 0.05
) -> NestedPlan:
    """The authors' calibration: equal-width segments, q_k = min(p_k + η, 0.99),
    n_k = n_1 Π_{r=2..k} q_r with n_1 set by the total limit tl = Σ_k δ_k n_k
    (δ_k segment widths, tokens). Thresholds are rounded to integers ≥ 1; the widths
    are equal up to rounding (the spec leaves the authors' cut points open)."""
    b_last = int(data.lengths.max())
    L = max(1, min(int(n_segments), b_last))
    bounds = sorted({int(round(b_last * (k + 1) / L)) for k in range(L)})
    _, _, p = _segment_tables(data, bounds)
    q = np.minimum(p + eta, 0.99)
    q[0] = 1.0
    cum = np.cumprod(q)
    widths = np.diff([0, *bounds])
    n1 = total_limit / float(np.dot(widths, cum))
    n = [max(1, int(round(n1 * c))) for c in cum]
    return evaluate_nested(data, bounds, n)


#: The authors' grid (tl, number of segments).
PRACTICAL_TL = tuple(range(20, 201, 20))
PRACTICAL_L = (1, 2, 3, 4, 5, 10, 20)
