"""The path relaxation: a Dantzig–Wolfe bound over next-2 pseudo-schedules.

Unit-time model (spec ``completion-time.md`` §1); times in rounds, memory in KV tokens.
Notation of :mod:`fluidopt.models.tct_mip`: columns x_{g,c} (a request of group g
completes in round c, i.e. starts at c − o_g), rows A x {=, ≤} b — start once
(Σ_c x_{g,c} = count_g), memory ≤ C in every constrained round, and the peak clique
rows of :mod:`fluidopt.bounds.peaks` — over the windows of
:func:`fluidopt.completion.windows.prepare`.

**Paths.** A path is a list of (request, completion round) with rounds non-decreasing
(equal rounds in increasing request index), each round inside the request's window,
and at every position l the memory check of round c_l applied to the next two
positions only:

    p_l + Σ_{q = l+1, l+2 ; c_q − c_l < o_q} (p_q − (c_q − c_l)) ≤ C,   p = s + o.

Requests may repeat or be missing (:mod:`fluidopt.bounds.path_pricing` has the exact
definition and the pricing). A path P is a point x_P of the columns (its entries
counted). The **path relaxation** is

    min Σ_P λ_P c·x_P   s.t.   A (Σ_P λ_P x_P) {=, ≤} b,   Σ_P λ_P = 1,  λ ≥ 0,

the time-indexed rows on average over a convex combination of paths. For multipliers u
(free on the start-once rows, ≤ 0 on the ≤ rows) its Lagrangian function is

    L(u) = u·b + min_P Σ_{(m,c) ∈ P} (c − u·A_{(m,c)}),

and the relaxation's optimum is max_u L(u).

**Proof that every L(u) is a lower bound.** Let x* be an optimal schedule of the program
(the windows keep one, see ``windows``). List its requests in completion order, ties by
index. A request q after l with c_q − c_l < o_q started before c_l, so in round c_l it
holds p_q − (c_q − c_l) tokens beside l's peak p_l; keeping only two of those residents
(and dropping the ones that complete at c_l before l) lowers the load of round c_l,
which is ≤ C, so the listing is a path, P*. Its point is x*, which satisfies every row.
Hence L(u) ≤ Σ_{P*} (c − u·A) + u·b = c·x* + u·(b − A x*) ≤ c·x* = OPT: the last term is
0 on the equality rows and a product of u ≤ 0 with b − A x* ≥ 0 on the others. ∎ Any u
will do, so the value is valid whenever the pricing is exact, whatever the column
generation did before: the bound reported is the best L(u) evaluated, rounded up to an
integer (Σ c_i is an integer), never a value of the restricted master LP.

Against the LP relaxation of the time-indexed program (``time_indexed``), whose feasible
points are the convex combinations of single columns satisfying the rows, the path
relaxation adds what pairs and triples of consecutive completions must respect in
memory: two large requests cannot complete close together, and a request cannot be
split into fractions that each overlap its neighbours.

**Column generation.** Box-step stabilised (du Merle et al.): the master LP holds the
paths found so far, the start-once rows and the rows the LP relaxation found binding
(other rows join when the master's point violates them); two artificial columns per
row keep its dual within a box around the best multipliers so far (:data:`BOX`: ±0.75
rounds on the start-once rows, ±0.0075 on memory rows, ±0.15 on peak rows). Every master dual vector is
priced exactly (:class:`~fluidopt.bounds.path_pricing.PathPricer`), which gives L(u) and
the new columns (the cheapest path ending with each request, if it prices out). The
centre moves when L improves by a tenth of the predicted gain. Start: the LP duals, the
given schedules and paths repaired from samples of the LP solution. The bound is
anytime: a time limit, an interrupt or a bound that meets a known schedule stop it
with the best L so far.

Measured (``benchmarks/kv_synthetic/README.md``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from fluidopt import interrupts
from fluidopt.bounds.path_pricing import PathPricer, Pricing
from fluidopt.bounds.time_indexed import LpSolution, lp_solution
from fluidopt.models.tct_mip import MipArrays, TctData, build_arrays

#: Half-widths of the dual box on start-once, memory and peak rows (rounds per unit).
#: A quarter of the first setting (3, 0.03, 0.6): 0.2–0.6% higher bounds in 60 s on five
#: [KV] instances of 47–60 requests, and the same converged values at 15–20 requests
#: (``benchmarks/kv_synthetic/README.md``, "The path bound").
BOX = (0.75, 0.0075, 0.15)

#: Largest label table of the pricing, float64 entries as :func:`pricing_size` counts them:
#: 480 MB. A [KV] instance of 60 requests needs about 7 million.
MAX_TABLE = 60_000_000


def pricing_size(data: TctData) -> int:
    """Entries of the pricing's label table for ``data``, known before anything is built:
    rounds × requests × 2 × (max(o_max, C) + 1), at least the rounds × requests ×
    (o_max + 1 + C + 1) it holds; transitions are fewer than requests² × o_max and scale
    with it."""
    n = int(data.count.sum())
    if n == 0:
        return 0
    rounds = int((data.lst + data.output).max()) + 1
    return rounds * n * 2 * (max(int(data.output.max()), int(data.capacity)) + 1)


def round_up(value: float) -> float:
    """⌈value⌉ with room for the rounding of a sum of floats (Σ c_i is an integer)."""
    return float(math.ceil(value - 1e-6 - 1e-9 * abs(value)))


@dataclass
class PathBound:
    """Result of :func:`path_bound` (rounds, seconds).

    Attributes
    ----------
    bound
        The best Lagrangian value rounded up to an integer (``None``: none evaluated).
    value
        The best Lagrangian value L(u) itself.
    status
        ``converged`` (the relaxation's optimum is reached), ``meets_upper_bound`` (the
        bound reached the given schedule value), ``time_limit``, ``interrupted``,
        ``master_failed`` (the master LP stopped without an optimum; the bound stands) or
        ``too_large`` (the pricing table would not fit; no bound).
    seconds
        Wall-clock time including the LP if it was solved here.
    iterations, columns, rows
        Master solves, paths in the master, rows in the master.
    lp_value
        The LP relaxation it started from (``None``: none).
    multipliers
        The multipliers u of the best L(u) (``None``: none evaluated).
    relaxation
        The relaxation it priced with (``None``: none built); with ``multipliers`` what
        :mod:`fluidopt.bounds.path_fixing` needs. Both are left out of :meth:`to_dict`.
    """

    bound: float | None
    value: float | None
    status: str
    seconds: float
    iterations: int = 0
    columns: int = 0
    rows: int = 0
    lp_value: float | None = None
    multipliers: np.ndarray | None = field(default=None, repr=False)
    relaxation: PathRelaxation | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("multipliers", "relaxation")}


class PathRelaxation:
    """Rows, requests and pricing of the path relaxation of one prepared program.

    Parameters
    ----------
    data
        Windows, groups, memory rounds and peak intervals
        (``fluidopt.completion.windows.prepare(...).data``).
    arrays
        ``build_arrays(data)`` if already built.
    """

    def __init__(self, data: TctData, arrays: MipArrays | None = None) -> None:
        self.data = data
        self.arrays: MipArrays = build_arrays(data) if arrays is None else arrays
        A = self.arrays.A.tocsr()
        self.A, self.AT = A, A.T.tocsr()
        lo, hi = self.arrays.row_lo, self.arrays.row_hi
        self.is_le = ~np.isfinite(lo)
        self.b = np.where(self.is_le, hi, lo)
        self.hi = hi
        n_groups = data.n_groups
        n_peak = int(data.peak_rows().shape[0])
        n_rows = A.shape[0]
        self.kind = np.r_[np.zeros(n_groups, int), np.ones(n_rows - n_groups - n_peak, int), np.full(n_peak, 2)]
        # requests ("items") of the pricing: the members of every group
        self.group = np.repeat(np.arange(n_groups), data.count).astype(np.int64)
        out = data.output.astype(np.int64)
        self.first = (data.est + out)[self.group]
        self.last = (data.lst + out)[self.group]
        self.T = int(self.last.max())
        col_group, epoch = data.column_epochs()
        self.col_group, self.col_round = col_group, epoch + out[col_group]
        self.col_of = np.full((n_groups, self.T + 1), -1, dtype=np.int64)
        self.col_of[self.col_group, self.col_round] = np.arange(col_group.shape[0])
        self.pricer = PathPricer(data.capacity, (data.prompt + data.output)[self.group], out[self.group],
                                 self.first, self.last)

    @property
    def n_rows(self) -> int:
        return int(self.A.shape[0])

    def lp_multipliers(self, lp: LpSolution) -> np.ndarray:
        """The LP's duals as multipliers u of the right signs (≤ 0 on the ≤ rows; zeros
        without duals), where the column generation starts."""
        if lp.duals is None:
            return np.zeros(self.n_rows)
        return np.where(self.is_le, np.minimum(lp.duals, 0.0), lp.duals)

    def round_costs(self, u: np.ndarray) -> np.ndarray:
        """c − u·A per (request, completion round); ``inf`` outside the windows."""
        rc = self.arrays.c - self.AT @ u
        by_group = np.full((self.data.n_groups, self.T + 1), np.inf)
        by_group[self.col_group, self.col_round] = rc
        return by_group[self.group]

    def lagrangian(self, u: np.ndarray, pricing: Pricing) -> float:
        """L(u) = u·b + the least reduced cost of a path (a lower bound for every u of the
        right signs; module docstring)."""
        return float(u @ self.b) + pricing.best

    def columns(self, path: np.ndarray) -> np.ndarray:
        """Time-indexed column of every entry of a path (rows (request, round))."""
        return self.col_of[self.group[path[:, 0]], path[:, 1]]

    def schedule_path(self, completion: np.ndarray) -> np.ndarray:
        """A schedule (completion round per request, in item order) as a path in
        completion order."""
        order = np.lexsort((np.arange(completion.shape[0]), completion))
        return np.stack([order, completion[order]], axis=1).astype(np.int64)

    def items_of_schedule(self, starts: np.ndarray) -> np.ndarray | None:
        """Completion round per item of a schedule given as start epochs per workload
        position (``None`` if it leaves the windows)."""
        c = np.empty(self.group.shape[0], dtype=np.int64)
        k = 0
        for g, members in enumerate(self.data.members):
            rounds = np.sort(np.asarray(starts)[np.asarray(members)] + int(self.data.output[g]))
            c[k:k + rounds.shape[0]] = rounds
            k += rounds.shape[0]
        if np.any(c < self.first) or np.any(c > self.last):
            return None
        return c

    def repair(self, completion: np.ndarray) -> np.ndarray:
        """A path from wished completion rounds: requests in that order, each at the first
        round ≥ its wish that keeps the next-2 rule with the two before it; requests
        pushed past their window are left out."""
        C, p, o = self.pricer.C, self.pricer.p, self.pricer.o
        order = np.lexsort((np.arange(completion.shape[0]), completion))
        seq: list[tuple[int, int]] = []

        def held(m: int, gap: int) -> int:
            return int(p[m] - gap) if gap < o[m] else 0

        for m in order.tolist():
            c = max(int(completion[m]), int(self.first[m]), seq[-1][1] if seq else 0)
            while c <= self.last[m]:
                ok = True
                if seq:
                    j, tj = seq[-1]
                    ok = not (c == tj and m < j) and m != j and p[j] + held(m, c - tj) <= C
                    if ok and len(seq) >= 2:
                        i, ti = seq[-2]
                        ok = p[i] + held(j, tj - ti) + held(m, c - ti) <= C
                if ok:
                    break
                c += 1
            if c <= self.last[m]:
                seq.append((m, c))
        return np.asarray(seq, dtype=np.int64).reshape(-1, 2)


class _Master:
    """The restricted master LP with box-step artificials (HiGHS)."""

    def __init__(self, relax: PathRelaxation, rows: np.ndarray, centre: np.ndarray) -> None:
        import highspy

        from fluidopt.solver import SolveOptions, apply_highs_options, silence_highs_banner

        silence_highs_banner()
        self.relax = relax
        self.inf = highspy.kHighsInf
        self.h = highspy.Highs()
        # the process's thread count (HiGHS fixes it at the first solve; another
        # value in a later model of the process makes that solve fail)
        apply_highs_options(self.h, SolveOptions())
        self.h.addRow(1.0, 1.0, 0, np.zeros(0, dtype=np.int32), np.zeros(0))  # convexity
        self.rows: list[int] = []
        self.art: dict[int, tuple[int, int]] = {}
        self.paths: list[np.ndarray] = []  # time-indexed columns of each path
        self.path_col: list[int] = []
        self.seen: set[bytes] = set()
        self.centre = centre
        self.delta = np.asarray(BOX)[relax.kind]
        self.status = ""  # HiGHS's model status of the last solve
        self._active: Any = None
        self.add_rows(rows)

    def _art_costs(self, r: int) -> tuple[float, float]:
        up = self.centre[r] + self.delta[r]
        if self.relax.is_le[r]:
            up = min(up, 0.0)
        return float(up), float(-(self.centre[r] - self.delta[r]))

    def add_rows(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.shape[0] == 0:
            return
        relax, inf = self.relax, self.inf
        first = self.h.getNumRow()
        lo = np.where(relax.is_le[rows], -inf, relax.b[rows])
        hi = relax.b[rows]
        if self.paths:
            lengths = [c.shape[0] for c in self.paths]
            X = sp.csc_matrix((np.ones(sum(lengths)), (np.concatenate(self.paths),
                                                        np.repeat(np.arange(len(self.paths)), lengths))),
                              shape=(relax.A.shape[1], len(self.paths)))
            M = (relax.A[rows] @ X).tocsr()
            M = sp.csr_matrix((M.data, np.asarray(self.path_col)[M.indices], M.indptr),
                              shape=(rows.shape[0], self.h.getNumCol()))
            self.h.addRows(rows.shape[0], lo, hi, M.nnz, M.indptr[:-1].astype(np.int32),
                           M.indices.astype(np.int32), M.data)
        else:
            self.h.addRows(rows.shape[0], lo, hi, 0, np.zeros(rows.shape[0], dtype=np.int32),
                           np.zeros(0, dtype=np.int32), np.zeros(0))
        for q, r in enumerate(rows.tolist()):
            up, down = self._art_costs(r)
            col = self.h.getNumCol()
            self.h.addCol(up, 0.0, inf, 1, np.array([first + q], dtype=np.int32), np.array([1.0]))
            self.h.addCol(down, 0.0, inf, 1, np.array([first + q], dtype=np.int32), np.array([-1.0]))
            self.art[r] = (col, col + 1)
        self.rows += rows.tolist()
        self._active = None

    def add_path(self, path: np.ndarray) -> bool:
        if path.shape[0] == 0:
            return False
        key = path.tobytes()
        if key in self.seen:
            return False
        self.seen.add(key)
        if self._active is None:
            self._active = self.relax.A[np.asarray(self.rows)].tocsc()
        cols = self.relax.columns(path)
        v = np.asarray(self._active[:, cols].sum(axis=1)).ravel()
        nz = np.flatnonzero(v)
        col = self.h.getNumCol()
        cost = float(self.relax.arrays.c[cols].sum())
        self.h.addCol(cost, 0.0, self.inf, nz.shape[0] + 1, np.r_[0, nz + 1].astype(np.int32), np.r_[1.0, v[nz]])
        self.paths.append(cols)
        self.path_col.append(col)
        return True

    def move_centre(self, centre: np.ndarray) -> None:
        self.centre = centre
        idx, cost = [], []
        for r in self.rows:
            idx += list(self.art[r])
            cost += list(self._art_costs(r))
        self.h.changeColsCost(len(idx), np.asarray(idx, dtype=np.int32), np.asarray(cost))

    def solve(self, time_limit: float | None) -> tuple[float, np.ndarray, float, np.ndarray] | None:
        """(value, multipliers over all rows, convexity dual, column values) or ``None``
        if the LP did not finish."""
        from fluidopt.solver import set_run_time_limit

        if time_limit is not None:
            set_run_time_limit(self.h, max(0.01, float(time_limit)))
        self.h.run()
        self.status = self.h.getModelStatus().name
        if self.status == "kUnknown":  # seen after hundreds of warm starts: once more from scratch
            self.h.clearSolver()
            self.h.run()
            self.status = self.h.getModelStatus().name
        if self.status != "kOptimal":
            return None
        sol = self.h.getSolution()
        y = np.asarray(sol.row_dual)
        u = np.zeros(self.relax.n_rows)
        u[np.asarray(self.rows)] = y[1:]
        u[self.relax.is_le] = np.minimum(u[self.relax.is_le], 0.0)  # valid signs whatever the LP's tolerances
        return float(self.h.getInfo().objective_function_value), u, float(y[0]), np.asarray(sol.col_value)

    def violated_rows(self, x: np.ndarray, limit: int = 100) -> np.ndarray:
        """Rows outside the master that its current point violates (most violated first)."""
        relax = self.relax
        ti = np.zeros(relax.A.shape[1])
        for cols, c in zip(self.paths, self.path_col):
            if c < x.shape[0] and x[c] > 1e-12:
                np.add.at(ti, cols, x[c])
        load = relax.A @ ti
        excess = load - relax.hi
        viol = np.setdiff1d(np.flatnonzero(excess > 1e-6), np.asarray(self.rows))
        return viol[np.argsort(-excess[viol])][:limit]


def path_bound(
    data: TctData,
    *,
    time_limit: float | None = None,
    lp: LpSolution | None = None,
    schedules: Sequence[np.ndarray] = (),
    upper_bound: float | None = None,
    progress: Callable[[float], None] | None = None,
    samples: int = 100,
    seed: int = 0,
    max_table: int = MAX_TABLE,
    relax: PathRelaxation | None = None,
    arrays: MipArrays | None = None,
) -> PathBound:
    """The path relaxation's bound on the optimal Σ c_i by column generation (module
    docstring), anytime.

    Parameters
    ----------
    data
        The prepared program (windows, groups, memory rounds, peak intervals).
    time_limit
        Wall-clock budget, s, including the LP if it is solved here (``None``: run until
        the relaxation's optimum).
    lp
        The LP relaxation with its duals and primal values, if already solved
        (:func:`fluidopt.bounds.time_indexed.lp_solution`).
    schedules
        Known schedules (start epochs per workload position) to seed the master with.
    upper_bound
        Σ c of a known schedule: stop once the bound reaches it.
    progress
        Called with every new best rounded bound.
    samples
        Paths repaired from samples of the LP solution that seed the master.
    seed
        Seed of those samples.
    max_table
        Largest label table of the pricing (float64 entries); beyond it no bound is
        computed (status ``too_large``).
    relax
        The relaxation of ``data`` if already built.
    arrays
        Else ``build_arrays(data)`` if already built (the LP's program).
    """
    started = time.perf_counter()
    if time_limit is not None and time_limit <= 0:
        return PathBound(None, None, "time_limit", 0.0, lp_value=None if lp is None else lp.value)

    def left() -> float | None:
        return None if time_limit is None else time_limit - (time.perf_counter() - started)

    if pricing_size(data) > max_table:
        return PathBound(None, None, "too_large", time.perf_counter() - started,
                         lp_value=None if lp is None else lp.value)
    relax = PathRelaxation(data, arrays) if relax is None else relax
    if lp is None:
        lp = lp_solution(data, left(), relax.arrays)
    u0 = relax.lp_multipliers(lp)
    rows = np.r_[np.flatnonzero(relax.kind == 0), np.flatnonzero((relax.kind > 0) & (np.abs(u0) > 1e-9))]
    master = _Master(relax, rows, u0)
    for starts in schedules:
        c = relax.items_of_schedule(starts)
        if c is not None:
            master.add_path(relax.schedule_path(c))
    if lp.x is not None:
        _seed_from_lp(relax, master, lp.x, samples, np.random.default_rng(seed))

    best = -math.inf
    best_u: np.ndarray | None = None
    status = "time_limit"
    it = 0

    def evaluate(u: np.ndarray) -> tuple[float, Pricing]:
        nonlocal best, best_u
        pricing = relax.pricer.price(relax.round_costs(u))
        value = relax.lagrangian(u, pricing)
        if value > best:
            news = best == -math.inf or round_up(value) > round_up(best)
            best, best_u = value, u
            if progress is not None and news:
                progress(round_up(value))
        return value, pricing

    try:
        centre, (L_centre, pricing) = u0, evaluate(u0)
        _add_priced(relax, master, pricing, 0.0)
        since_rows = 0
        while True:
            if upper_bound is not None and round_up(best) >= upper_bound:
                status = "meets_upper_bound"
                break
            remaining = left()
            if remaining is not None and remaining <= 0:
                break
            solved = master.solve(remaining)
            if solved is None:
                if master.status != "kTimeLimit":
                    status = "master_failed"
                break
            z, u, mu, x = solved
            it += 1
            L, pricing = evaluate(u)
            added = _add_priced(relax, master, pricing, mu)
            moved = False
            if (L >= L_centre + 0.1 * (z - L_centre) or added == 0) and L > L_centre:
                centre, L_centre, moved = u, L, True
                master.move_centre(centre)
            since_rows += 1
            new_rows = 0
            if added == 0 or since_rows >= 10:
                since_rows = 0
                viol = master.violated_rows(x)
                master.add_rows(viol)
                new_rows = viol.shape[0]
            if added == 0 and new_rows == 0 and not moved:
                status = "converged"
                break
    except KeyboardInterrupt:
        interrupts.note()
        status = "interrupted"
    value = best if best > -math.inf else None
    return PathBound(
        None if value is None else round_up(value), value, status, time.perf_counter() - started, it,
        len(master.paths), len(master.rows), lp.value, best_u, relax,
    )


def _add_priced(relax: PathRelaxation, master: _Master, pricing: Pricing, mu: float, limit: int | None = None) -> int:
    """Add the cheapest path ending with each request whose reduced cost is below the
    convexity dual ``mu``; return how many were new."""
    ends = np.flatnonzero(pricing.end_value - mu < -1e-7)
    ends = ends[np.argsort(pricing.end_value[ends])][:limit]
    return sum(master.add_path(relax.pricer.path(pricing, int(m))) for m in ends)


def _seed_from_lp(relax: PathRelaxation, master: _Master, x: np.ndarray, samples: int,
                  rng: np.random.Generator) -> None:
    """Paths repaired from completion rounds drawn from the LP solution, per request."""
    prob = np.zeros((relax.data.n_groups, relax.T + 1))
    prob[relax.col_group, relax.col_round] = np.maximum(x, 0.0)
    total = prob.sum(axis=1, keepdims=True)
    if np.any(total <= 0):
        return
    cdf = np.cumsum(prob / total, axis=1)[relax.group]
    for _ in range(samples):
        wish = (cdf < rng.random((cdf.shape[0], 1))).sum(axis=1)
        master.add_path(relax.repair(wish))
