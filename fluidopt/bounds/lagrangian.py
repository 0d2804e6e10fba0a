"""Lagrangian relaxation of the memory rows of the time-indexed program (rounds).

The time-indexed program of spec ``completion-time.md`` §1 has one memory row per round.
Pricing those rows with λ_r ≥ 0 (per token held at the end of round r) leaves one
independent problem per request: pick the start epoch that minimises completion time
plus the price of the memory the ramp holds. Every price vector gives a valid bound; the
best one equals the LP relaxation of the program (the per-request problem has integral
optimal solutions), which at trace scale has millions of columns and is out of reach of
an LP solver, while its Lagrangian dual needs only a few array passes per price vector.

Proof sketch
------------
Let t_i ≥ a_i be the starts of any feasible schedule and load_r = Σ_i m_i(r) ≤ C its
memory at round r, with m_i(r) = s_i + r − t_i for t_i < r ≤ t_i + o_i. For any λ ≥ 0
that is zero outside rounds 1 … R,

    Σ_i c_i ≥ Σ_i c_i + Σ_r λ_r (load_r − C)
           = Σ_i f_i(t_i; λ) − C Σ_r λ_r
           ≥ Σ_i min_{t ≥ a_i} f_i(t; λ) − C Σ_r λ_r  =:  L(λ),

    f_i(t; λ) = t + o_i + Σ_{j=1}^{o_i} λ_{t+j} (s_i + j).

No horizon is needed: for t ≥ R the ramp meets no priced round and f_i(t) = t + o_i
grows with t, so the minimum over all t ≥ a_i is attained in [a_i, max(a_i, R)] and a
scan of that range computes it exactly. Σ c_i is an integer, so ⌈L(λ)⌉ is a bound too.
λ = 0 gives the trivial bound Σ (a_i + o_i); :func:`lagrangian_bound` never returns less.

Computing L(λ). With prefix sums P0[k] = Σ_{r ≤ k} λ_r and P1[k] = Σ_{r ≤ k} r·λ_r,
the ramp price is s_i·W0(t) + W1(t) with W0(t) = P0[t+o] − P0[t] and
W1(t) = P1[t+o] − P1[t] − t·W0(t) (indices capped at R); requests with the same o_i
share W0 and W1. Since f_i(t) ≥ t + o_i, the scan of request i stops at f_i(a_i) − o_i:
no later start can do better. One evaluation is O(n·R) array work at most. The
floating-point error of these sums is far below the safety margin subtracted before
rounding up (:meth:`RampDual.margin`).

Choosing λ (any choice is valid; this only decides how tight the bound is). The dual
L is concave and piecewise linear. It is maximised through a smoothed version: replacing
each min by the soft-min −τ·log Σ_t exp(−f_i(t)/τ) ≤ min gives a smooth concave
function whose gradient is the expected memory load under the Gibbs start
distributions minus C; a projected L-BFGS (``fluidopt.bounds.projected_lbfgs``) climbs
it for a decreasing sequence of temperatures τ (rounds), and the exact L is evaluated at
every point visited, the best kept. The start point is the price curve of the mean-busy-time relaxation
(``fluidopt.bounds.mean_busy_time``): λ_r = (1/C)·Σ_k (fraction of request k's work still
left at round r) in the preemptive shortest-volume-first schedule, i.e. the number of
unfinished requests per token of capacity.

The per-request minimisers t_i*(λ) and the prices are returned with the bound: ordering
requests by them gives good schedules (``fluidopt.search.lagrangian_heuristic``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from fluidopt import interrupts

from fluidopt.bounds.ramp import RampInstance, ramp_instance

#: Temperatures τ (rounds) of the smoothed dual, climbed in this order.
DEFAULT_TEMPERATURES = (10.0, 3.0, 1.0, 0.3)
#: Quasi-Newton iterations per temperature.
DEFAULT_ITERATIONS = 60


class _OutOfTime(Exception):
    pass


@dataclass
class DualPoint:
    """One price vector and what it gives.

    Attributes
    ----------
    prices
        λ_1 … λ_R, per token held at the end of each round (λ_r ≥ 0).
    value
        L(λ), the exact dual value before rounding (rounds).
    bound
        ⌈L(λ) − margin⌉, a valid lower bound on Σ c_i (rounds).
    starts
        The per-request minimisers t_i*(λ) (epochs).
    """

    prices: np.ndarray
    value: float
    bound: float
    starts: np.ndarray


class RampDual:
    """Evaluate the Lagrangian dual L(λ) and its smoothed version for one instance.

    Parameters
    ----------
    inst
        The instance.
    rounds
        R, the number of priced rounds (λ_r = 0 for r > R).
    """

    def __init__(self, inst: RampInstance, rounds: int) -> None:
        self.inst = inst
        self.R = int(rounds)
        # start epochs scanned: 0 … max(R, max a); f_i(t) for t > max(a_i, R) is larger
        self.T = max(self.R, int(inst.arrival.max(initial=0)))
        self.tt = np.arange(self.T + 1, dtype=np.float64)
        self.r = np.arange(1, self.R + 1, dtype=np.float64)
        self.s = inst.prompt.astype(np.float64)
        uo, inverse = np.unique(inst.output, return_inverse=True)
        self.groups = [(int(ov), np.flatnonzero(inverse == g)) for g, ov in enumerate(uo)]
        self.base = float(np.sum(inst.output))

    def _prefix(self, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P0[k] = Σ_{r ≤ k} λ_r and P1[k] = Σ_{r ≤ k} r·λ_r, k = 0 … R."""
        return np.concatenate([[0.0], np.cumsum(lam)]), np.concatenate([[0.0], np.cumsum(self.r * lam)])

    def _costs(
        self, P0: np.ndarray, P1: np.ndarray, o: int, idx: np.ndarray, slack: float = 0.0
    ) -> tuple[int, np.ndarray]:
        """(lo, F) with F[k, j] = f_i(lo + j) − o_i for the requests ``idx`` of output ``o``
        (``inf`` before a request's arrival), for starts lo … hi.

        The scan stops at hi = the largest ⌊f_i(a_i) − o_i + slack⌋ + 1 of the group
        (capped at T): since λ ≥ 0, f_i(t) − o_i ≥ t, so no later start comes within
        ``slack`` of the value already reached at t = a_i. With slack 0 the minimum is
        exact; the soft-min uses slack = 40τ (weights below e^-40 are left out).
        """
        a = self.inst.arrival[idx]
        s = self.s[idx]

        def price(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            t_cap = np.minimum(t, self.R)
            hi = np.minimum(t + o, self.R)
            W0 = P0[hi] - P0[t_cap]
            return P1[hi] - P1[t_cap] - t * W0, W0

        W1a, W0a = price(a)
        reach = a + W1a + s * W0a + slack  # f_i(a_i) − o_i + slack
        lo = int(a.min())
        hi = int(min(self.T, int(np.floor(reach.max())) + 1))
        t_int = np.arange(lo, hi + 1)
        W1, W0 = price(t_int)
        F = (self.tt[lo : hi + 1] + W1)[None, :] + s[:, None] * W0[None, :]
        late = a > lo
        if late.any():
            F[late] = np.where(t_int[None, :] < a[late, None], np.inf, F[late])
        return lo, F

    def evaluate(
        self, lam: np.ndarray, tau: float = 0.0
    ) -> tuple[float, np.ndarray, float, np.ndarray | None]:
        """Exact L(λ) and minimisers; with ``tau`` > 0 also the smoothed value and gradient.

        Returns
        -------
        (value, starts, smooth_value, smooth_gradient)
            ``value`` = L(λ) (rounds), ``starts`` the minimisers t_i*(λ), and for
            ``tau`` > 0 the soft-min dual and its gradient with respect to λ (expected
            load minus C per round; ``None`` when ``tau`` = 0).
        """
        inst = self.inst
        lam = np.asarray(lam, dtype=np.float64)
        P0, P1 = self._prefix(lam)
        starts = np.empty(inst.n, dtype=np.int64)
        total = 0.0
        soft = 0.0
        load = np.zeros(self.R + 1) if tau > 0 else None
        r_int = np.arange(1, self.R + 1)
        for o, idx in self.groups:
            lo, F = self._costs(P0, P1, o, idx, 40.0 * tau)
            k = F.argmin(axis=1)
            m = F[np.arange(idx.size), k]
            starts[idx] = lo + k
            total += float(m.sum())
            if tau > 0:
                E = np.exp(-(F - m[:, None]) / tau)
                Z = E.sum(axis=1)
                soft += float((m - tau * np.log(Z)).sum())
                prob = E / Z[:, None]
                q0 = prob.sum(axis=0)  # expected number started at t
                q1 = self.s[idx] @ prob  # expected Σ s_i started at t
                # load at round r from starts t in [r − o, r − 1]: Σ (q1(t) − t·q0(t)) + r·Σ q0(t)
                tt = self.tt[lo : lo + F.shape[1]]
                A = np.concatenate([[0.0], np.cumsum(q1 - tt * q0)])
                Q = np.concatenate([[0.0], np.cumsum(q0)])
                upto = np.clip(r_int - lo, 0, tt.size)
                frm = np.clip(r_int - o - lo, 0, tt.size)
                load[1:] += (A[upto] - A[frm]) + self.r * (Q[upto] - Q[frm])
        price = float(inst.capacity) * float(lam.sum())
        value = total + self.base - price
        if tau <= 0:
            return value, starts, value, None
        return value, starts, soft + self.base - price, load[1:] - inst.capacity

    def start_distribution(
        self, lam: np.ndarray, tau: float, alphas: tuple[float, ...] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and α-quantiles of each request's start under the Gibbs distribution
        p_i(t) ∝ exp(−f_i(t; λ)/τ) (the fractional starts the smoothed dual works with).

        Returns
        -------
        (mean, quantiles)
            ``mean[i]`` (epochs, fractional) and ``quantiles[k, i]``, the first epoch at
            which request i's cumulative start probability reaches ``alphas[k]``.
        """
        P0, P1 = self._prefix(np.asarray(lam, dtype=np.float64))
        mean = np.empty(self.inst.n)
        quantiles = np.empty((len(alphas), self.inst.n), dtype=np.int64)
        for o, idx in self.groups:
            lo, F = self._costs(P0, P1, o, idx, 40.0 * tau)
            E = np.exp(-(F - F.min(axis=1)[:, None]) / tau)
            E /= E.sum(axis=1)[:, None]
            mean[idx] = E @ self.tt[lo : lo + F.shape[1]]
            cdf = np.cumsum(E, axis=1)
            for k, alpha in enumerate(alphas):
                quantiles[k, idx] = lo + np.minimum((cdf < alpha).sum(axis=1), cdf.shape[1] - 1)
        return mean, quantiles

    def margin(self, lam: np.ndarray) -> float:
        """Upper bound on the floating-point error of :meth:`evaluate`'s value (rounds).

        Each W0, W1 is a difference of prefix sums of ≤ R + 1 non-negative terms, with
        error ≤ ~R·ε times the totals P0[R] = Σλ and P1[R] ≤ R·Σλ; f_i adds s_i·W0 + W1 + t·W0.
        The margin takes 10⁵ times that estimate (ε = 2.2e-16), summed over requests.
        """
        inst = self.inst
        total_price = float(np.sum(lam))
        per = (self.s + 3.0 * self.T + 1.0) * (self.R + 1) * total_price
        return 1e5 * 2.3e-16 * (float(per.sum()) + inst.capacity * total_price * (self.R + 1)) + 1e-9


def shortest_volume_prices(inst: RampInstance, rounds: int) -> np.ndarray:
    """Start prices λ_r = (1/C)·Σ_k (fraction of k's volume left at the end of round r)
    under preemptive shortest-volume-first at rate C (the mean-busy-time relaxation)."""
    from fluidopt.bounds.mean_busy_time import shortest_volume_first

    volume = inst.volume
    pieces = shortest_volume_first(inst.arrival, volume, float(inst.capacity))
    done = (pieces.end - pieces.begin) * pieces.rate / volume[pieces.job]
    x = np.stack([pieces.begin, pieces.end], axis=1).reshape(-1)
    y = np.stack([np.cumsum(done) - done, np.cumsum(done)], axis=1).reshape(-1)
    grid = np.arange(1, rounds + 1, dtype=np.float64)
    arrived = np.searchsorted(np.sort(inst.arrival.astype(np.float64)), grid, side="right")
    left = arrived - np.interp(grid, x, y)
    return np.maximum(left, 0.0) / float(inst.capacity)


def dual_value(dual: RampDual, lam: np.ndarray) -> DualPoint:
    """Exact L(λ), the rounded bound ⌈L − margin⌉ and the minimisers, for one λ ≥ 0."""
    lam = np.maximum(np.asarray(lam, dtype=np.float64), 0.0)
    value, starts, _, _ = dual.evaluate(lam)
    return DualPoint(lam, value, float(math.ceil(value - dual.margin(lam))), starts)


def lagrangian_bound(
    arrival: np.ndarray,
    prompt: np.ndarray,
    output: np.ndarray,
    capacity: int,
    *,
    time_limit: float | None = None,
    rounds: int | None = None,
    prices: np.ndarray | None = None,
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES,
    iterations: int = DEFAULT_ITERATIONS,
) -> tuple[float, dict[str, Any]]:
    """Best Lagrangian bound ⌈L(λ)⌉ found on the optimal Σ c_i (see module docstring).

    Parameters
    ----------
    arrival
        Arrival epochs a_i (rounds; fractional values are rounded up).
    prompt, output
        s_i, o_i (tokens).
    capacity
        KV capacity C, tokens.
    time_limit
        Wall-clock seconds for the price search; when it runs out the best bound found
        so far is returned (never an exception). At least one price vector (the start
        point) is always evaluated.
    rounds
        R, the number of priced rounds (default: the end of the mean-busy-time
        relaxation's schedule plus max o_i, which covers the rounds where memory binds in
        good schedules; any R gives a valid bound).
    prices
        Start prices λ_1, λ_2, … (default: :func:`shortest_volume_prices`); without
        ``rounds`` their length sets R, otherwise they are cut to R rounds or extended
        with zeros.
    temperatures, iterations
        Smoothing schedule of the price search (τ in rounds; quasi-Newton iterations per τ).

    Returns
    -------
    (bound, info)
        The bound on Σ c_i (rounds, integer-valued float, ≥ Σ(a_i + o_i)) and ``info``
        with ``value`` (unrounded L at the best λ), ``prices`` (that λ), ``starts`` (its
        per-request minimisers t_i*, epochs), ``rounds`` (R), ``evaluations``,
        ``stopped`` (``"converged"``, ``"time_limit"`` or ``"interrupted"``), ``history`` (best bound
        after each temperature) and ``seconds``.
    """
    from fluidopt.bounds.mean_busy_time import shortest_volume_first
    from fluidopt.bounds.projected_lbfgs import minimise_nonnegative

    started = time.perf_counter()
    deadline = math.inf if time_limit is None else started + float(time_limit)
    inst = ramp_instance(arrival, prompt, output, capacity)
    trivial = float(np.sum(inst.arrival + inst.output))
    if inst.n == 0:
        return 0.0, {"value": 0.0, "prices": np.zeros(0), "starts": np.zeros(0, dtype=np.int64), "rounds": 0,
                     "evaluations": 0, "stopped": "converged", "history": [], "seconds": 0.0}
    if prices is not None:
        R = int(np.asarray(prices).shape[0]) if rounds is None else int(rounds)
    elif rounds is None:
        relaxed = shortest_volume_first(inst.arrival, inst.volume, float(inst.capacity))
        R = int(math.ceil(relaxed.makespan)) + int(inst.output.max())
    else:
        R = int(rounds)
    R = max(R, 1)
    dual = RampDual(inst, R)
    if prices is None:
        lam0 = shortest_volume_prices(inst, R)
    else:  # cut to R rounds, or extended with zero prices
        given = np.asarray(prices, dtype=np.float64).reshape(-1)[:R]
        lam0 = np.concatenate([given, np.zeros(R - given.shape[0])])
    best = dual_value(dual, lam0)
    evaluations = 1
    trivial_starts = inst.arrival.copy()
    if best.bound < trivial:
        best = DualPoint(np.zeros(R), trivial, trivial, trivial_starts)
    history: list[float] = []
    stopped = "converged"

    def objective(lam: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
        nonlocal best, evaluations
        if time.perf_counter() > deadline:
            raise _OutOfTime
        value, starts, smooth, grad = dual.evaluate(lam, tau)
        evaluations += 1
        if value > best.value:
            cand = DualPoint(lam.copy(), value, float(math.ceil(value - dual.margin(lam))), starts)
            if cand.bound >= best.bound:
                best = cand
        return -smooth, -grad

    lam = best.prices if best.prices.any() else lam0
    for tau in temperatures:
        try:
            lam = minimise_nonnegative(lambda x, tau=tau: objective(x, tau), lam, iterations=iterations)
        except _OutOfTime:
            stopped = "time_limit"
            break
        except KeyboardInterrupt:  # Ctrl-C: the best bound so far stands
            interrupts.note()
            stopped = "interrupted"
            break
        finally:
            history.append(best.bound)
    return best.bound, {
        "value": best.value,
        "prices": best.prices,
        "starts": best.starts,
        "rounds": R,
        "evaluations": evaluations,
        "stopped": stopped,
        "history": history,
        "seconds": time.perf_counter() - started,
    }
