"""Threshold calibration: trace → types → rates → thresholds → thresholds file.

Pipeline (``fluid-and-wait.md`` §5):

1. **Types**: the trace is binned by output length (``fluidopt.binning.bin_types``).
   Per type the fluid quantities are *means over its requests* of the additive
   per-request terms — volume V (token·iterations), marginal work u (s), output o and
   S2 = Σ_{i=1..o}(s + i)² — so that Σ_j λ_j E[V_j] is exactly the workload's KV-time
   per second (plugging mean lengths into V would under-count long requests).
2. **Rates**: λ_j = count_j / span of the arrivals; a window estimate (counts per window
   of ``window`` s) gives the per-window spread, and the thresholds are recomputed at
   the 90th-percentile window rates to show how sensitive they are.
3. **Thresholds**: ``models.thresholds`` (WAIT integer programs solved with HiGHS,
   Nested WAIT boundary search).
4. **Admission reserve**: R = ⌈r̄·ln(1/δ)⌉ KV tokens, r̄ the mean remaining output of a
   resident (:func:`admission_reserve`), optionally confirmed and raised by simulation.
5. **File**: ``fluidopt.threshold_file`` schema with every input recorded.

Choices the spec leaves open, recorded in the file's ``inputs``:

- The last output bin of a WAIT file is open to +∞ (``output_range`` [lo, null]): a
  request longer than any in the calibration sample belongs to the longest type.
- The thresholds bound the pipeline in expectation (chance row) under the authors'
  variant; they cannot bound its fluctuations: under that variant the mean memory is
  M* whatever n is, and n = 1 already gives the smallest variance. On a trace whose
  memory reaches C in bursts (azure-conv above ~0.5× its native rate on
  llama2-7b-a100, M* ≈ 0.2·C) the only lever is at admission, hence the reserve.
- Nested WAIT with ``rule="advance"`` (resident stages always advance) uses one segment
  with n_1 from the WAIT program of the unbinned trace: lengths unknown, one type. The
  authors' own grid search ends at one segment under high load as well.

Outside the stable region the WAIT programs are infeasible; the error says why and
gives the fluid LP's admissible rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fluidopt.bounds.fluid import FluidArrays, FluidType, fluid_from_arrays, fluid_lp
from fluidopt.deployment import Deployment, TimeModel, load_deployment
from fluidopt.errors import FluidoptError, InputError
from fluidopt.workload import Workload

#: Version of the calibration method recorded in every thresholds file.
METHOD_VERSION = "fluidopt.calibrate/2"


class ThresholdInfeasible(FluidoptError):
    """No thresholds satisfy the conditions; carries the fluid LP's admissible rates."""

    def __init__(self, message: str, admissible: np.ndarray | None = None) -> None:
        self.admissible = admissible
        super().__init__(message)


# ----------------------------------------------------------------------------- inputs
def resolve_deployment(
    name: str | None, *, d0: float | None = None, d1: float | None = None, capacity: int | None = None
) -> Deployment:
    """A deployment by name/file, optionally overridden by a linear-kv (d0, d1) and C.

    ``--d0/--d1`` replace the time model by τ = d0 + d1·ΣKV (s, s per token); without a
    deployment they define one (then ``capacity`` is needed for the memory tests).
    """
    if (d0 is None) != (d1 is None):
        raise InputError("give both --d0 and --d1 (linear-kv: τ = d0 + d1·ΣKV)")
    if name is None and d0 is None:
        raise InputError("give a deployment (--deployment) or a linear-kv model (--d0, --d1)")
    dep = load_deployment(name) if name is not None else None
    if d0 is not None:
        time = TimeModel.linear_kv(float(d0), float(d1))  # type: ignore[arg-type]
        cap = capacity if capacity is not None else (dep.capacity if dep is not None else None)
        return Deployment(
            name=f"{dep.name if dep else 'linear-kv'}(d0={d0},d1={d1})",
            capacity=cap,
            time=time,
            provenance={"override": "command line"},
        )
    assert dep is not None
    return dep.with_capacity(capacity) if capacity is not None else dep


def _bins(w: Workload, n_output_bins: int | None, output_edges: Any = None) -> Any:
    from fluidopt.binning import MAX_DISTINCT, bin_types

    if n_output_bins is None and output_edges is None and np.unique(w.output).size > MAX_DISTINCT:
        n_output_bins = 8  # a trace: eight quantile bins unless told otherwise
    return bin_types(w, n_output_bins=n_output_bins, output_edges=output_edges)


def types_from_workload(
    w: Workload, *, n_output_bins: int | None = None, output_edges: Any = None
) -> tuple[list[FluidType], Any]:
    """Types (mean lengths, rates) of a binned workload and the binning table.

    Note: for fluid quantities use :func:`arrays_from_workload`, which averages V and u
    per request; the mean lengths here are for display and for ``--types``-like use.
    """
    table = _bins(w, n_output_bins, output_edges)
    types = [FluidType(float(t.rate or 0.0), t.prompt_mean, t.output_mean, t.label) for t in table.types]
    return types, table


@dataclass(frozen=True)
class TypeStats:
    """Per-type means of additive per-request quantities of a binned workload."""

    arrays: FluidArrays
    stage_sq: np.ndarray  # E[Σ_{i=1..o}(s+i)²], tokens²
    table: Any
    span: float


def arrays_from_workload(
    w: Workload,
    deployment: Deployment,
    *,
    n_output_bins: int | None = None,
    output_edges: Any = None,
    rates: np.ndarray | None = None,
) -> TypeStats:
    """Fluid arrays of a binned workload: λ_j = count/span, E[V_j], E[u_j], E[o_j]."""
    table = _bins(w, n_output_bins, output_edges)
    labels = table.labels
    s = w.prompt.astype(np.float64)
    o = w.output.astype(np.float64)
    v = o * s + o * (o + 1) / 2
    u = np.asarray(deployment.marginal_work(s, o), dtype=np.float64)
    # Σ_{i=1..o} (s+i)² = o s² + s o(o+1) + o(o+1)(2o+1)/6
    sq = o * s**2 + s * o * (o + 1) + o * (o + 1) * (2 * o + 1) / 6
    span = float(w.arrival[-1] - w.arrival[0])
    if span <= 0:
        raise InputError("the arrivals span no time: rates cannot be estimated", source=w.name)
    m = len(table.types)
    cols = {k: np.zeros(m) for k in ("rate", "prompt", "output", "volume", "work", "sq")}
    for j, t in enumerate(table.types):
        mask = labels == t.label
        cols["rate"][j] = mask.sum() / span
        cols["prompt"][j] = s[mask].mean()
        cols["output"][j] = o[mask].mean()
        cols["volume"][j] = v[mask].mean()
        cols["work"][j] = u[mask].mean()
        cols["sq"][j] = sq[mask].mean()
    arrays = FluidArrays(
        rate=cols["rate"] if rates is None else np.asarray(rates, dtype=np.float64),
        prompt=cols["prompt"],
        output=cols["output"],
        volume=cols["volume"],
        work=cols["work"],
        c0=float(deployment.time.c0),
        capacity=None if deployment.capacity is None else float(deployment.capacity),
        labels=tuple(t.label for t in table.types),
    )
    return TypeStats(arrays, cols["sq"], table, span)


def window_rates(w: Workload, table: Any, window: float) -> dict[str, Any]:
    """Per-type arrival rates over consecutive windows of ``window`` seconds.

    Returns mean, standard deviation and 90th percentile per type (1/s) and the number
    of whole windows used (a trailing partial window is dropped).
    """
    t0 = float(w.arrival[0])
    n_win = int((float(w.arrival[-1]) - t0) // window)
    if n_win < 2:
        return {"windows": n_win, "window_s": window}
    idx = ((w.arrival - t0) // window).astype(np.int64)
    keep = idx < n_win
    out: dict[str, Any] = {"windows": n_win, "window_s": window, "types": []}
    for t in table.types:
        mask = (table.labels == t.label) & keep
        counts = np.bincount(idx[mask], minlength=n_win)[:n_win] / window
        out["types"].append(
            {
                "label": t.label,
                "mean": float(counts.mean()),
                "std": float(counts.std(ddof=1)),
                "p90": float(np.quantile(counts, 0.9)),
            }
        )
    total = np.bincount(idx[keep], minlength=n_win)[:n_win] / window
    out["total"] = {"mean": float(total.mean()), "std": float(total.std(ddof=1)), "p90": float(np.quantile(total, 0.9))}
    return out


# ----------------------------------------------------------------------------- WAIT
@dataclass
class WaitSolution:
    """WAIT thresholds with their accounting (times in s, memory in KV tokens)."""

    thresholds: np.ndarray
    objective: str
    memory_rule: str
    pipeline_memory: float
    delta_t: float
    latency_proxy: float
    cap_d: float | None
    seconds: float
    solves: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "thresholds": [int(x) for x in self.thresholds],
            "objective": self.objective,
            "memory_rule": self.memory_rule,
            "pipeline_memory": self.pipeline_memory,
            "delta_t": self.delta_t,
            "latency_proxy": self.latency_proxy,
            "delta_t_cap": self.cap_d,
            "seconds": self.seconds,
            "solves": self.solves,
        }


def _infeasible(arrays: FluidArrays, epsilon: float, extra: str = "") -> ThresholdInfeasible:
    bench = fluid_from_arrays(arrays)
    lp = fluid_lp(arrays)
    adm = lp.admitted_rates
    why = bench.reason or extra or "the thresholds' memory does not fit in C"
    what = "Nested WAIT thresholds" if extra.startswith("no Nested WAIT") else "WAIT thresholds"
    if extra.startswith("no Nested WAIT"):
        why = extra.removeprefix("no Nested WAIT configuration fits: ") + (f" ({bench.reason})" if bench.reason else "")
    msg = (
        f"no {what}: {why}"
        + (
            "; the fluid LP admits rates "
            + ", ".join(f"{lab}={x:.4g}/s" for lab, x in list(zip(arrays.labels, adm))[:8])
            + (f", … ({len(adm) - 8} more: run fluid-lp)" if len(adm) > 8 else "")
            + f" (max stable scale {bench.max_stable_scale:.4g}×)"
            if adm is not None
            else ""
        )
    )
    return ThresholdInfeasible(msg, adm)


def solve_wait(
    arrays: FluidArrays,
    *,
    objective: str = "latency",
    epsilon: float = 0.05,
    memory_rule: str = "auto",
    stage_sq: np.ndarray | None = None,
    z: float = 3.0,
    rule: str = "paper",
    grid: int = 3,
    refine: int = 1,
) -> WaitSolution:
    """WAIT thresholds by integer programming (``models.thresholds``).

    Parameters
    ----------
    arrays
        Fluid arrays (rates 1/s, volumes, work s, c0 s, capacity tokens).
    objective
        ``"memory"`` (min Σ V n, pipeline rule) or ``"latency"`` (proxy; a scan of the
        iteration-length cap D over ``grid`` geometric points between the smallest
        feasible cap and the memory limit, each a MILP, then ``refine`` points between
        the best point's neighbours, then re-solves at the incumbent's own ΔT, then
        greedy ±1 moves (:func:`_local_improve`); the best by the proxy evaluated at the
        thresholds' own ΔT is kept — a heuristic over D, not a proven optimum).
    memory_rule
        ``"pipeline"`` (Σ V n ≤ C, the spec's), ``"chance"`` (normal approximation with
        z standard deviations, needs ``stage_sq``; only with ``rule="advance"``), or
        ``"auto"``: pipeline under the paper's rule (where every stage stays full, so
        the row is exact) and under the variant when Σ_j V_j ≤ C, else chance.
    rule
        The executor rule the latency proxy models: ``"paper"`` (non-eligible types
        pause) or ``"advance"`` (the authors' simulator: resident stages always advance).

    Raises
    ------
    ThresholdInfeasible
        Outside the stable region or no thresholds fit; names the reason and the fluid
        LP's admissible rates.
    """
    import time

    from fluidopt.models import thresholds as th
    from fluidopt.solver import SolveOptions, solve

    if arrays.capacity is None:
        raise InputError("WAIT thresholds need a KV capacity (--capacity)")
    if objective not in ("memory", "latency"):
        raise InputError(f"unknown objective {objective!r} (memory, latency)")
    if rule not in ("paper", "advance"):
        raise InputError(f"unknown WAIT rule {rule!r} (paper, advance)")
    wait_rule = rule
    rule = memory_rule
    if rule == "auto":
        # Under the paper's rule a type's stages advance only when it admits n_j new
        # requests, so after warm-up every stage holds n_j: the pipeline row is exact
        # and the only valid one. The chance row models the authors' variant.
        if wait_rule == "paper" or float(arrays.volume.sum()) <= arrays.capacity:
            rule = "pipeline"
        else:
            rule = "chance"
    if rule == "chance" and wait_rule == "paper":
        raise InputError(
            "the chance memory row assumes resident stages always advance (--rule advance); under the "
            "paper's rule every stage stays full, so use the pipeline row"
        )
    if rule == "chance" and objective == "memory":
        raise InputError("the memory objective uses the pipeline rule; use --objective latency")
    data = th.WaitData(
        rate=arrays.rate,
        output=arrays.output,
        volume=arrays.volume,
        work=arrays.work,
        c0=arrays.c0,
        capacity=arrays.capacity,
        epsilon=epsilon,
        labels=arrays.labels,
        stage_sq=stage_sq,
        memory_rule=rule,
        z=z,
        rule=wait_rule,
    )
    load = (1 + epsilon) * float(np.dot(arrays.rate, arrays.work))
    if load >= 1:
        raise _infeasible(arrays, epsilon, f"load (1+ε)·A = {load:.4g} ≥ 1")
    start = time.perf_counter()
    if objective == "memory":
        if rule != "pipeline":
            raise InputError("the memory objective needs the pipeline rule")
        model = th.build_wait_memory(data)
        res = solve(model, SolveOptions(time_limit=30))
        if not res.has_solution:
            raise _infeasible(
                arrays, epsilon, f"the full pipeline needs more than C = {arrays.capacity:,.0f} KV tokens"
            )
        n = th.thresholds_of(model, data.m)
        solves, cap_d = 1, None
    else:
        d_fluid = arrays.c0 / (1 - load)
        w = float(np.dot(arrays.rate, arrays.volume))
        if rule == "chance":
            # one MILP at the expected iteration length (see models.thresholds)
            d_grid = [d_fluid]
            d_min, d_max = d_fluid, d_fluid
        else:
            # the full-pipeline iteration is at least c0 + Σ u_j (every n_j ≥ 1)
            d_min = max(d_fluid, arrays.c0 + float(arrays.work.sum())) * 1.0005
            d_max = max(arrays.capacity / w, d_min * 4)
            d_grid = list(np.geomspace(d_min, d_max, grid))
        best: tuple[float, np.ndarray, float] | None = None
        solves = 0

        def attempt(d: float) -> np.ndarray | None:
            nonlocal best, solves
            model = th.build_wait_latency(data, d)
            res = solve(model, SolveOptions(time_limit=10))
            solves += 1
            if not res.has_solution:
                return None
            cand = th.thresholds_of(model, data.m)
            val = th.latency_proxy(data, cand)
            if best is None or val < best[0] - 1e-12:
                best = (val, cand, d)
            return cand

        if rule == "pipeline":
            if float(arrays.volume.sum()) > arrays.capacity:
                big = int(np.argmax(arrays.volume))
                raise _infeasible(
                    arrays,
                    epsilon,
                    f"the full pipeline needs Σ_j V_j n_j ≥ Σ_j V_j = {arrays.volume.sum():,.0f} > C = "
                    f"{arrays.capacity:,.0f} KV tokens even at n = 1 (type {arrays.labels[big]} alone "
                    f"{arrays.volume[big]:,.0f}); under the paper's rule every stage stays full — use "
                    "--rule advance (the authors' simulator variant), fewer or narrower types, or nested-wait",
                )
            # the minimum-memory thresholds: exact keep-up, no cap, so a feasible start
            # whenever any thresholds exist (the scan's domain n_j > λ_j D can miss them)
            start_model = th.build_wait_memory(data)
            solves += 1
            if not solve(start_model, SolveOptions(time_limit=30)).has_solution:
                raise _infeasible(
                    arrays, epsilon, f"the full pipeline needs more than C = {arrays.capacity:,.0f} KV tokens"
                )
            n0 = th.thresholds_of(start_model, data.m)
            best = (th.latency_proxy(data, n0), n0, arrays.c0 + float(np.dot(arrays.work, n0)))
        for d in d_grid:
            attempt(float(d))
        if best is not None and len(d_grid) > 2:
            # refine between the neighbours of the best cap on the coarse grid
            k = int(np.argmin(np.abs(np.asarray(d_grid) - best[2])))
            lo_d, hi_d = d_grid[max(k - 1, 0)], d_grid[min(k + 1, len(d_grid) - 1)]
            for d in np.geomspace(lo_d, hi_d, refine + 2)[1:-1]:
                attempt(float(d))
        # polish: re-solve with the cap at the incumbent's own ΔT until it stops improving
        for _ in range(5 if rule == "pipeline" else 0):
            if best is None:
                break
            before = best[0]
            attempt(arrays.c0 + float(np.dot(arrays.work, best[1])) + 1e-12)
            if best[0] >= before - 1e-12:
                break
        if best is None:
            raise _infeasible(
                arrays, epsilon, f"no cap on ΔT in [{d_min:.4g}, {d_max:.4g}] s admits thresholds that fit C"
            )
        if rule == "pipeline":
            best = _local_improve(data, best)
        _, n, cap_d = best
    delta_t = arrays.c0 + float(np.dot(arrays.work, n)) if rule == "pipeline" else arrays.c0 / (1 - load)
    return WaitSolution(
        thresholds=n,
        objective=objective,
        memory_rule=rule,
        pipeline_memory=float(np.dot(arrays.volume, n)),
        delta_t=delta_t,
        latency_proxy=th.latency_proxy(data, n),
        cap_d=cap_d,
        seconds=time.perf_counter() - start,
        solves=solves,
    )


def solve_wait_or_mean(arrays: FluidArrays, *, rule: str = "paper", **kw: Any) -> WaitSolution:
    """:func:`solve_wait`, and under the authors' variant a fallback when the chance row
    has no solution although the fluid load is stable (A(1+ε) < 1 and M* ≤ C): the
    smallest thresholds that keep up in the mean, n_j = max(1, ⌈(1+ε)λ_j D⌉) with
    D = c0/(1 − (1+ε)A), memory rule ``"mean"``. The chance row (mean + z·sd ≤ C at the
    ε-inflated D) is the first condition to fail as the load grows; beyond it the
    thresholds only keep up and the memory is protected by the admission reserve alone.
    """
    try:
        return solve_wait(arrays, rule=rule, **kw)
    except ThresholdInfeasible:
        if rule != "advance" or kw.get("memory_rule", "auto") not in ("auto", "chance"):
            raise
        from fluidopt.models import thresholds as th

        eps = float(kw.get("epsilon", 0.05))
        bench = fluid_from_arrays(arrays)
        load = (1 + eps) * float(np.dot(arrays.rate, arrays.work))
        if not bench.stable or load >= 1:
            raise
        d = arrays.c0 / (1 - load)
        n = np.maximum(1, np.ceil((1 + eps) * arrays.rate * d - 1e-9)).astype(np.int64)
        data = th.WaitData(rate=arrays.rate, output=arrays.output, volume=arrays.volume, work=arrays.work,
                           c0=arrays.c0, capacity=float(arrays.capacity), epsilon=eps, labels=arrays.labels,
                           memory_rule="chance", rule="advance")
        return WaitSolution(n, kw.get("objective", "latency"), "mean", float(np.dot(arrays.volume, n)), d,
                            th.latency_proxy(data, n), None, 0.0, 0)


def _local_improve(data: Any, best: tuple[float, np.ndarray, float]) -> tuple[float, np.ndarray, float]:
    """Greedy ±1 moves on single thresholds while the proxy at the thresholds' own ΔT
    improves and keep-up and the pipeline row hold.

    The scan fixes D and asks n_j > λ_j D, which excludes tight thresholds whose own
    ΔT(n) lies between two grid points (a single type at λ = 26/s on llama2-7b-a100:
    the scan stops at n = 7 while n = 4 is feasible and better); these moves recover them.
    """
    from fluidopt.models import thresholds as th

    def ok(n: np.ndarray) -> bool:
        dt = data.c0 + float(np.dot(data.work, n))
        busy = data.rate > 0
        return bool(
            np.all(n >= 1)
            and np.all(n[busy] >= (1 + data.epsilon) * data.rate[busy] * dt - 1e-9)
            and float(np.dot(data.volume, n)) <= data.capacity
        )

    val, n, d = best
    n = n.copy()
    improved = True
    while improved:
        improved = False
        moves = []
        for j in range(len(n)):
            for step in (-1, 1):
                cand = n.copy()
                cand[j] += step
                if ok(cand):
                    moves.append((th.latency_proxy(data, cand), cand))
        if moves:
            v, cand = min(moves, key=lambda t: t[0])
            if v < val - 1e-12:
                val, n, improved = v, cand, True
    return val, n, data.c0 + float(np.dot(data.work, n))


# ----------------------------------------------------------------------------- Nested WAIT
def nested_data(
    w: Workload,
    deployment: Deployment,
    *,
    epsilon: float = 0.05,
    delta: float = 0.01,
    horizon: float = 3600.0,
) -> Any:
    """Nested WAIT inputs from a workload: s = mean prompt, the empirical output
    distribution as lengths with rates, and w(j) per service iteration for the mean
    prompt (E[s²] in the prefill term)."""
    from fluidopt.models.thresholds import NestedData

    if deployment.capacity is None:
        raise InputError("Nested WAIT calibration needs a KV capacity (--capacity)")
    span = float(w.arrival[-1] - w.arrival[0])
    if span <= 0:
        raise InputError("the arrivals span no time: rates cannot be estimated", source=w.name)
    lengths, counts = np.unique(w.output, return_counts=True)
    s = float(w.prompt.mean())
    s2 = float(np.mean(w.prompt.astype(np.float64) ** 2))
    tm = deployment.time
    j = np.arange(1, int(lengths.max()) + 1, dtype=np.float64)
    stage = tm.c_seq + tm.c_kv * (s + j) + tm.c_new * 1.0
    stage[0] = tm.c_seq + tm.c_kv * (s + 1) + tm.c_new * s + tm.c_pf2 * s2
    if tm.is_unit:
        stage[:] = 0.0
    return NestedData(
        prompt=s,
        lengths=lengths.astype(np.int64),
        rates=counts / span,
        stage_work=stage,
        c0=float(tm.c0),
        capacity=float(deployment.capacity),
        epsilon=epsilon,
        delta=delta,
        horizon=horizon,
    )


def nested_candidates(data: Any, k: int = 9) -> list[int]:
    """Candidate cut points: the output-length quantiles j/(k+1), j = 1..k (observed values)."""
    lengths, rates = data.lengths, data.rates
    cdf = np.cumsum(rates) / rates.sum()
    return sorted({int(lengths[np.searchsorted(cdf, q)]) for q in np.arange(1, k + 1) / (k + 1)})


# ----------------------------------------------------------------------------- reserve
def reserve_estimate(w: Workload, delta: float = 0.01) -> dict[str, Any]:
    """Admission reserve from the output-length distribution: R = ⌈r̄·ln(1/δ)⌉ tokens.

    The admission guard keeps the next iteration within C − R; afterwards every running
    resident grows by one token per iteration and memory stops growing at the first
    completion (it frees a whole footprint s + g, far more than one iteration's growth).
    A resident seen at a random time is length-biased, so its remaining output has mean
    r̄ = E[o²]/(2E[o]); approximating remaining lengths as exponential, N residents
    complete at rate N/r̄ per iteration and grow by N per iteration, so the growth before
    the first completion is about r̄·Exp(1) tokens whatever N is, and exceeds R with
    probability exp(−R/r̄) = δ. This is per saturation episode, not over a horizon, and
    ignores bursts of long prompts: :func:`admission_reserve` confirms it by simulation.
    """
    if not 0 < delta < 1:
        raise InputError(f"δ must lie in (0, 1) (got {delta})")
    o = w.output.astype(np.float64)
    r_bar = float(np.mean(o**2) / (2 * np.mean(o)))
    return {"rule": "ceil(r_bar * ln(1/delta)), r_bar = E[o^2]/(2 E[o])", "delta": delta,
            "mean_residual_output": r_bar, "reserve": int(math.ceil(r_bar * math.log(1 / delta)))}


def _runs_reserve(policy: str) -> bool:
    """Whether the registered ``policy`` takes a ``reserve`` parameter."""
    import inspect

    import fluidopt.executor.policies  # noqa: F401  (fills the registry)
    from fluidopt.executor.policy import POLICIES

    return "reserve" in inspect.signature(POLICIES[policy].__init__).parameters


def admission_reserve(
    w: Workload,
    deployment: Deployment,
    thresholds: Any,
    *,
    delta: float = 0.01,
    advance_resident: bool = True,
    confirm: bool = True,
    max_fraction: float = 0.25,
) -> dict[str, Any]:
    """The reserve of :func:`reserve_estimate`, confirmed by simulation on ``w``.

    With ``confirm``, the calibrated policy runs on ``w`` with the reserve and the reserve
    is doubled while the run evicts, up to ``max_fraction``·C (then the last value is
    kept and ``confirmed`` is False). A policy that does not take a reserve (``wait``
    today) is not simulated: ``confirmed`` is None.
    """
    from fluidopt.executor.engine import simulate
    from fluidopt.executor.policy import make_policy

    out = reserve_estimate(w, delta)
    r = out["reserve"]
    out["trail"] = []
    out["confirmed"] = None
    policy = thresholds.policy
    if not confirm or not _runs_reserve(policy):
        if confirm:
            out["note"] = f"{policy} does not apply a reserve: not simulated"
        return out
    key = "segments" if policy == "nested-wait" else "thresholds"
    cap = max_fraction * float(deployment.capacity)
    while True:
        s = simulate(w, deployment, make_policy(policy, **{key: thresholds}, advance_resident=advance_resident,
                                                reserve=r)).summary()
        out["trail"].append({"reserve": r, "evictions": int(s["evictions"]), "mean_latency": float(s["mean_latency"])})
        if s["evictions"] == 0:
            out["confirmed"] = True
            break
        if 2 * r > cap:
            out["confirmed"] = False
            break
        r = max(2 * r, 1)
    out["reserve"] = r
    return out


# ----------------------------------------------------------------------------- pipeline
def calibrate(
    w: Workload,
    deployment: Deployment,
    *,
    policy: str = "wait",
    objective: str = "latency",
    epsilon: float = 0.05,
    n_output_bins: int | None = None,
    output_edges: Any = None,
    memory_rule: str = "auto",
    rule: str = "paper",
    window: float = 300.0,
    delta: float = 0.01,
    horizon: float = 3600.0,
    max_segments: int = 4,
    choose_binning: bool = True,
    polish: int = 0,
    reserve: str | int | None = "estimate",
    path: str | Path | None = None,
) -> dict[str, Any]:
    """Calibrate thresholds for ``policy`` on ``w`` and write them to ``path``.

    Returns a JSON-safe report: the thresholds, the fluid benchmark, the rate window
    estimate and the sensitivity of the thresholds to it, and the inputs.

    For WAIT without explicit bins (``n_output_bins``/``output_edges``) and with
    ``choose_binning``, the binnings {default (distinct lengths, or 8 quantile bins for a
    trace), 1, 2, 4 quantile bins} are each calibrated and the one with the best
    objective (latency proxy or pipeline memory) is kept; all are listed in the report.

    ``polish`` > 0 confirms the WAIT thresholds by simulation on ``w`` and improves them
    by at most that many rounds of ±1 moves (:func:`polish_by_simulation`).

    ``reserve``: the admission reserve written to the file — ``"estimate"`` (default,
    :func:`reserve_estimate` with ``delta``), ``"simulate"`` (the estimate confirmed and
    raised by simulation on ``w``, :func:`admission_reserve`), an integer, or None (0).

    ``rule`` is the executor rule the thresholds are for: ``"paper"`` or ``"advance"``
    (the authors' simulator variant; for Nested WAIT the policy's ``advance_resident``).
    """
    from fluidopt.threshold_file import Segment, ThresholdType, Thresholds, save_thresholds

    inputs: dict[str, Any] = {
        "method": METHOD_VERSION,
        "deployment": deployment.name,
        "capacity": deployment.capacity,
        "time_model": {"kind": deployment.time.kind, **{k: getattr(deployment.time, k) for k in ("c0", "c_seq", "c_kv", "c_new", "c_pf2")}},
        "workload": w.name,
        "workload_source": w.source,
        "workload_digest": w.digest(),
        "workload_meta": w.meta,
        "n_requests": len(w),
        "epsilon": epsilon,
    }
    report: dict[str, Any] = {"policy": policy}
    if policy == "wait":
        # Binning: as given, or the candidate with the best objective (a coarser binning
        # raises each type's rate, so under the paper's rule its stages advance more often)
        if n_output_bins is not None or output_edges is not None or not choose_binning:
            candidates: list[int | None] = [n_output_bins]
        else:
            candidates = [None, 1, 2, 4]
        tried: list[dict[str, Any]] = []
        chosen: tuple[float, Any, Any, int | None] | None = None
        last_error: FluidoptError | None = None
        for nb in candidates:
            try:
                st = arrays_from_workload(w, deployment, n_output_bins=nb, output_edges=output_edges)
                cand = solve_wait_or_mean(
                    st.arrays, objective=objective, epsilon=epsilon, memory_rule=memory_rule,
                    stage_sq=st.stage_sq, rule=rule,
                )
            except FluidoptError as exc:
                last_error = exc
                tried.append({"n_output_bins": nb, "error": str(exc)[:200]})
                continue
            score = cand.latency_proxy if objective == "latency" else cand.pipeline_memory
            tried.append({"n_output_bins": nb, "types": len(st.arrays.rate), "score": score})
            if chosen is None or score < chosen[0] - 1e-12:
                chosen = (score, st, cand, nb)
        if chosen is None:
            assert last_error is not None
            raise last_error
        _, stats, sol, n_output_bins = chosen
        arrays = stats.arrays
        bench = fluid_from_arrays(arrays)
        report["binning_candidates"] = tried
        win = window_rates(w, stats.table, window)
        sensitivity: dict[str, Any] = {}
        if "types" in win:
            p90 = np.array([t["p90"] for t in win["types"]])
            scaled = FluidArrays(**{**arrays.__dict__, "rate": p90})
            try:
                alt = solve_wait_or_mean(
                    scaled, objective=objective, epsilon=epsilon,
                    memory_rule="auto" if sol.memory_rule == "mean" else sol.memory_rule,
                    stage_sq=stats.stage_sq, rule=rule,
                )
                sensitivity = {
                    "rates": "p90 of window rates",
                    "thresholds": [int(x) for x in alt.thresholds],
                    "changed_types": int(np.sum(alt.thresholds != sol.thresholds)),
                    "max_abs_change": int(np.max(np.abs(alt.thresholds - sol.thresholds))),
                }
            except FluidoptError as exc:
                sensitivity = {"rates": "p90 of window rates", "error": str(exc)}
        # the longest output bin is open to +∞ (lengths beyond the sample's maximum)
        top = max(int(t.output_range[1]) for t in stats.table.types)
        types = tuple(
            ThresholdType(
                label=t.label,
                output_range=(int(t.output_range[0]), None if int(t.output_range[1]) == top else int(t.output_range[1])),
                prompt_range=tuple(t.prompt_range) if t.prompt_range else None,
                prompt=float(arrays.prompt[j]),
                output=float(arrays.output[j]),
                rate=float(arrays.rate[j]),
                threshold=int(sol.thresholds[j]),
            )
            for j, t in enumerate(stats.table.types)
        )
        inputs.update(
            objective=objective,
            wait_rule=rule,
            memory_rule=sol.memory_rule,
            z=3.0 if sol.memory_rule == "chance" else None,
            binning={"n_output_bins": n_output_bins, "output_edges": output_edges,
                     "last_bin": "open: output_range [lo, null] covers every longer output"},
            rate_estimate="count / arrival span",
            span_s=stats.span,
        )
        thresholds = Thresholds("wait", types=types, inputs=inputs)
        report.update(
            solution=sol.to_dict(),
            fluid=bench.to_dict(),
            window_rates=win,
            sensitivity=sensitivity,
            thresholds=[
                {"type": t.label, "output_range": f"{t.output_range[0]}-{'inf' if t.output_range[1] is None else t.output_range[1]}", "rate": t.rate,
                 "n_star": float(bench.n_per_stage[j]) if bench.stable else None, "threshold": t.threshold}
                for j, t in enumerate(types)
            ],
        )
    elif policy == "nested-wait" and rule == "advance":
        # lengths unknown, resident stages always advance: one segment, n_1 from the WAIT
        # program of the unbinned trace (one type)
        st = arrays_from_workload(w, deployment, n_output_bins=1)
        sol = solve_wait_or_mean(st.arrays, objective="latency", epsilon=epsilon, memory_rule=memory_rule,
                                 stage_sq=st.stage_sq, rule="advance")
        b_last = int(w.output.max())
        segments = (Segment(1, b_last, int(sol.thresholds[0])),)
        inputs.update(nested_rule="advance: one segment, n_1 from the one-type WAIT program",
                      memory_rule=sol.memory_rule, z=3.0 if sol.memory_rule == "chance" else None,
                      last_segment="open: requests beyond b_K stay in the last segment")
        thresholds = Thresholds("nested-wait", segments=segments, inputs=inputs)
        report.update(
            solution=sol.to_dict(),
            fluid=fluid_from_arrays(st.arrays).to_dict(),
            thresholds=[{"start": 1, "end": b_last, "threshold": int(sol.thresholds[0])}],
        )
    elif policy == "nested-wait":
        from fluidopt.models import thresholds as th

        data = nested_data(w, deployment, epsilon=epsilon, delta=delta, horizon=horizon)
        cands = nested_candidates(data)
        try:
            plan = th.nested_search(data, cands, max_segments=max_segments)
        except InputError as exc:
            # say why, and what the fluid LP would admit (types: the default binning)
            arrays = arrays_from_workload(w, deployment).arrays
            raise _infeasible(arrays, epsilon, str(exc)) from None
        segments = tuple(Segment(a, b, n) for a, b, n in plan.segments())
        inputs.update(delta=delta, horizon=horizon, candidates=cands, max_segments=max_segments, prompt_mean=data.prompt)
        thresholds = Thresholds("nested-wait", segments=segments, inputs=inputs)
        report.update(
            solution=plan.to_dict(),
            thresholds=[{"start": a, "end": b, "threshold": n} for a, b, n in plan.segments()],
        )
    else:
        raise InputError(f"unknown policy {policy!r} (wait, nested-wait)")
    if polish > 0 and policy == "wait":
        thresholds, trail = polish_by_simulation(w, deployment, thresholds, rule=rule, rounds=polish)
        report["polish"] = trail
        inputs["polish_rounds"] = polish
    if reserve is None or (isinstance(reserve, int) and not isinstance(reserve, bool)):
        res_info: dict[str, Any] = {"rule": "given", "reserve": int(reserve or 0)}
    elif reserve in ("estimate", "simulate"):
        res_info = admission_reserve(w, deployment, thresholds, delta=delta, advance_resident=(rule == "advance"),
                                     confirm=reserve == "simulate")
    else:
        raise InputError(f"reserve must be 'estimate', 'simulate', an integer or None (got {reserve!r})")
    if policy == "wait" and res_info["reserve"]:
        res_info["applied_by_wait"] = _runs_reserve("wait")
    from dataclasses import replace as _replace

    thresholds = _replace(thresholds, reserve=int(res_info["reserve"]))
    inputs["reserve"] = res_info
    report["reserve"] = res_info
    if path is not None:
        save_thresholds(thresholds, path)
        report["path"] = str(path)
    report["inputs"] = inputs
    return report


def polish_by_simulation(
    w: Workload, deployment: Deployment, thresholds: Any, *, rule: str = "paper", rounds: int = 3
) -> tuple[Any, list[dict[str, Any]]]:
    """Confirm WAIT thresholds in the executor and improve them by ±1 moves.

    Each round simulates every single-threshold move n_j ± 1 (n_j ≥ 1) on ``w`` and
    keeps the best run with no eviction, no unfinished request and a lower mean latency
    than the incumbent; it stops when no move improves. The fluid conditions are
    sufficient, not necessary: near the edge of the region a threshold just below the
    keep-up line can still be stable over a finite trace, which only a run can show.

    Returns the thresholds and the trail of (thresholds, mean latency) accepted.
    """
    from dataclasses import replace as dc_replace

    from fluidopt.executor.engine import simulate
    from fluidopt.executor.policy import make_policy

    def score(th: Any) -> tuple[float, dict[str, Any]]:
        s = simulate(w, deployment, make_policy("wait", thresholds=th, advance_resident=(rule == "advance"))).summary()
        ok = s["evictions"] == 0 and s["unfinished"] == 0
        return (float(s["mean_latency"]) if ok else math.inf), s

    best_val, s0 = score(thresholds)
    trail = [{"thresholds": [t.threshold for t in thresholds.types], "mean_latency": best_val, "evictions": s0["evictions"]}]
    for _ in range(rounds):
        moves = []
        for j, t in enumerate(thresholds.types):
            for step in (-1, 1):
                if t.threshold + step < 1:
                    continue
                types = list(thresholds.types)
                types[j] = dc_replace(t, threshold=t.threshold + step)
                cand = dc_replace(thresholds, types=tuple(types))
                moves.append((score(cand)[0], cand))
        if not moves:
            break
        val, cand = min(moves, key=lambda m: m[0])
        if not val < best_val - 1e-9:
            break
        best_val, thresholds = val, cand
        trail.append({"thresholds": [t.threshold for t in cand.types], "mean_latency": val})
    return thresholds, trail
