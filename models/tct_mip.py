"""Total-completion-time MIP (hindsight optimum), time-indexed; spec ``completion-time.md`` §1.

Unit-time model. Requests are grouped: group g holds ``count[g]`` identical requests
(same arrival a_g, prompt s_g and output o_g tokens); without aggregation every group has
count 1. Variable y[g,t] ∈ {0, …, count[g]} is the number of requests of group g that
start at decision epoch t, for ``est[g] ≤ t ≤ lst[g]`` (a request started at t holds
s_g + j KV tokens at the end of round t + j and completes at c = t + o_g).

- start once:  Σ_t y[g,t] = count[g]                                         for every g
- memory:      Σ_g Σ_{t : t < r ≤ t + o_g} (s_g + r − t) · y[g,t] ≤ C          for every r in ``rounds``
- objective:   minimise Σ_g Σ_t (t + o_g) · y[g,t]                     (= Σ c_i, rounds)

Optional valid rows (a strengthening of the LP relaxation; every integer point keeps
them): **peak cliques** — for groups with a peak interval [c − L_g, c + R_g − 1] around
their completion c = t + o_g (``fluidopt.bounds.peaks``, which proves that these
intervals are pairwise disjoint in every feasible schedule):

- peak:        Σ_g Σ_{t : t + o_g − L_g ≤ r ≤ t + o_g + R_g − 1} y[g,t] ≤ 1          for every round r

Why the optimum bounds every policy of the executor (unit-time model): take any schedule,
even one that pauses or evicts. Keep only each request's last, successful run and
replace it by a contiguous run that ends at the same completion time c_i. At every round
the contiguous run holds no more memory than the original (the original still had to
emit as many tokens before c_i, so its footprint in each round is at least the
contiguous run's), and the dropped runs only free memory. The result is a feasible
point of this program with the same Σ c_i, so no policy beats its optimum.

Two builds of the same program:

- :func:`build` — a readable Pyomo ``ConcreteModel`` (the reference; export it to
  ``.lp``/``.mps`` with ``model.write``);
- :func:`build_arrays` — the same matrix assembled with numpy/scipy sparse in
  :class:`MipArrays` (columns group-major, epochs ascending; rows: the start-once
  equalities, then the memory rows in ``rounds`` order). Measured on a 20-request [KV]
  instance with the serial horizon (9,995 binaries, 270k nonzeros): 0.12 s against
  8.4 s for the Pyomo build (on a loaded 2-core machine).

Column and row names are shared (``y(g_t)``, ``start(g)``, ``memory(r)``, as Pyomo writes
them with symbolic labels) so the two can be compared entry by entry. Neither build
decides the start windows, the constrained rounds or the grouping: that is data
preparation (``fluidopt.tct``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class TctData:
    """Input of the formulation (all times in rounds, memory in KV tokens).

    Attributes
    ----------
    capacity
        KV capacity C, tokens.
    arrival, prompt, output, count
        Per group: arrival round a_g, prompt s_g, output o_g (tokens), number of
        identical requests (int64 arrays of equal length).
    est, lst
        Per group: earliest and latest start epoch (inclusive); ``est ≥ a_g`` and
        ``lst + o_g`` is the group's deadline.
    rounds
        Rounds r at which the memory constraint is written (int64, ascending).
    members
        Per group, the workload positions of its requests (used only to map a solution
        back to requests; the build ignores it).
    peak_left, peak_right
        Per group, the sides L_g, R_g ≥ 0 of its peak interval (rounds; L + R = 0: not
        in the cliques); ``None``: no peak rows.
    """

    capacity: int
    arrival: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    count: np.ndarray
    est: np.ndarray
    lst: np.ndarray
    rounds: np.ndarray
    members: tuple[np.ndarray, ...] = field(default=())
    peak_left: np.ndarray | None = None
    peak_right: np.ndarray | None = None

    @property
    def n_groups(self) -> int:
        return int(self.arrival.shape[0])

    @property
    def window(self) -> np.ndarray:
        """Number of start epochs per group, lst − est + 1."""
        return self.lst - self.est + 1

    @property
    def col_offset(self) -> np.ndarray:
        """First column of each group (length n_groups + 1)."""
        return np.concatenate([[0], np.cumsum(self.window)]).astype(np.int64)

    @property
    def n_cols(self) -> int:
        return int(self.window.sum())

    def column_epochs(self) -> tuple[np.ndarray, np.ndarray]:
        """(group, start epoch) of every column, in column order."""
        w = self.window
        group = np.repeat(np.arange(self.n_groups), w)
        epoch = np.arange(self.n_cols) - np.repeat(self.col_offset[:-1], w) + np.repeat(self.est, w)
        return group, epoch

    def peak_entries(self) -> tuple[np.ndarray, np.ndarray]:
        """(round, column) of every entry of the peak rows (before rows that cannot bind
        are dropped): column (g, t) covers rounds t + o_g − L_g … t + o_g + R_g − 1."""
        if self.peak_left is None or self.peak_right is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        group, epoch = self.column_epochs()
        L = np.asarray(self.peak_left, dtype=np.int64)[group]
        R = np.asarray(self.peak_right, dtype=np.int64)[group]
        width = L + R
        cols = np.repeat(np.arange(group.shape[0]), width)
        first = np.cumsum(width) - width
        offset = np.arange(int(width.sum())) - np.repeat(first, width)
        rounds = np.repeat(epoch + self.output[group] - L, width) + offset
        return rounds, cols

    def peak_rows(self) -> np.ndarray:
        """Rounds that get a peak row: those whose columns can hold more than one request
        (two groups, or one group of identical requests)."""
        rounds, cols = self.peak_entries()
        if rounds.shape[0] == 0:
            return rounds
        group = self.column_epochs()[0][cols]
        out = []
        order = np.lexsort((group, rounds))
        r_sorted, g_sorted = rounds[order], group[order]
        for r, lo, hi in zip(*_runs(r_sorted)):
            gs = np.unique(g_sorted[lo:hi])
            if gs.shape[0] >= 2 or self.count[gs[0]] >= 2:
                out.append(r)
        return np.asarray(out, dtype=np.int64)


@dataclass
class MipArrays:
    """A MIP in matrix form: minimise c·x subject to row_lo ≤ A x ≤ row_hi, col_lo ≤ x ≤ col_hi.

    Attributes
    ----------
    c
        Objective coefficients (rounds per started request).
    A
        Constraint matrix (CSR).
    row_lo, row_hi, col_lo, col_hi
        Bounds (``inf`` for none).
    integrality
        1 for integer columns, 0 for continuous.
    col_names, row_names
        Names shared with the Pyomo reference.
    """

    c: np.ndarray
    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    integrality: np.ndarray
    col_names: list[str] | None = None
    row_names: list[str] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.A.shape


def _runs(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(value, first index, end index) of every run of equal values in a sorted array."""
    if sorted_values.shape[0] == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], sorted_values.shape[0]]
    return sorted_values[starts], starts, ends


def _validate(data: TctData) -> None:
    if np.any(data.lst < data.est):
        g = int(np.flatnonzero(data.lst < data.est)[0])
        raise ValueError(f"group {g} has an empty start window [{data.est[g]}, {data.lst[g]}]")
    if np.any(data.est < np.ceil(data.arrival)):
        raise ValueError("a start window begins before its group's arrival")


def build(data: TctData) -> Any:
    """The readable Pyomo reference model of the time-indexed MIP.

    Parameters
    ----------
    data
        Groups, start windows and constrained rounds (see :class:`TctData`).

    Returns
    -------
    pyomo.environ.ConcreteModel
        Variables ``y[g, t]``, constraints ``start[g]`` and ``memory[r]``, objective
        ``tct`` (rounds).
    """
    import pyomo.environ as pyo

    _validate(data)
    G = range(data.n_groups)
    s, o, n = data.prompt, data.output, data.count
    m = pyo.ConcreteModel(name="tct_mip")
    m.G = pyo.Set(initialize=list(G), ordered=True)
    m.GT = pyo.Set(
        dimen=2,
        ordered=True,
        initialize=[(g, t) for g in G for t in range(int(data.est[g]), int(data.lst[g]) + 1)],
    )
    m.R = pyo.Set(initialize=[int(r) for r in data.rounds], ordered=True)

    def _bounds(m: Any, g: int, t: int) -> tuple[int, int]:
        return (0, int(n[g]))

    m.y = pyo.Var(m.GT, domain=pyo.NonNegativeIntegers, bounds=_bounds)

    def _start(m: Any, g: int) -> Any:
        return sum(m.y[g, t] for t in range(int(data.est[g]), int(data.lst[g]) + 1)) == int(n[g])

    m.start = pyo.Constraint(m.G, rule=_start)

    def _memory(m: Any, r: int) -> Any:
        # request started at t is resident in rounds t+1 … t+o with footprint s + (r − t)
        terms = [
            (int(s[g]) + r - t) * m.y[g, t]
            for g in G
            for t in range(max(int(data.est[g]), r - int(o[g])), min(int(data.lst[g]), r - 1) + 1)
        ]
        if not terms:
            return pyo.Constraint.Skip
        return sum(terms) <= int(data.capacity)

    m.memory = pyo.Constraint(m.R, rule=_memory)
    peak_rounds = data.peak_rows()
    if peak_rounds.shape[0]:
        L, R = data.peak_left, data.peak_right
        m.P = pyo.Set(initialize=[int(r) for r in peak_rounds], ordered=True)

        def _peak(m: Any, r: int) -> Any:
            # column (g, t) covers rounds t + o_g − L_g … t + o_g + R_g − 1
            return sum(
                m.y[g, t]
                for g in G
                if L[g] + R[g] >= 1
                for t in range(max(int(data.est[g]), r - int(o[g]) - int(R[g]) + 1),
                               min(int(data.lst[g]), r - int(o[g]) + int(L[g])) + 1)
            ) <= 1

        m.peak = pyo.Constraint(m.P, rule=_peak)
    m.tct = pyo.Objective(expr=sum((t + int(o[g])) * m.y[g, t] for (g, t) in m.GT), sense=pyo.minimize)
    return m


def build_arrays(data: TctData, *, names: bool = False) -> MipArrays:
    """The same MIP as :func:`build`, assembled directly as sparse arrays.

    Parameters
    ----------
    data
        Groups, start windows and constrained rounds.
    names
        Also produce column/row names (slow for big models; for tests and export).

    Returns
    -------
    MipArrays
        Columns group-major with epochs ascending; rows ``start(g)`` for every group,
        then ``memory(r)`` for every round of ``data.rounds`` that has an entry, then
        ``peak(r)`` for every round of :meth:`TctData.peak_rows`.
    """
    _validate(data)
    G = data.n_groups
    group, epoch = data.column_epochs()
    n_cols = group.shape[0]
    s, o = data.prompt.astype(np.int64), data.output.astype(np.int64)
    c = (epoch + o[group]).astype(np.float64)

    # memory entries: column k (group g, start t) has s_g + j in round t + j, j = 1 … o_g
    lengths = o[group]
    total = int(lengths.sum())
    col_of_entry = np.repeat(np.arange(n_cols), lengths)
    first = np.cumsum(lengths) - lengths
    j = np.arange(total) - np.repeat(first, lengths) + 1
    r = epoch[col_of_entry] + j
    coef = s[group][col_of_entry] + j
    rounds = np.asarray(data.rounds, dtype=np.int64)
    row_of_round = np.full(int(max(r.max(initial=0), rounds.max(initial=0))) + 2, -1, dtype=np.int64)
    row_of_round[rounds] = np.arange(rounds.shape[0])
    mem_row = row_of_round[r]
    keep = mem_row >= 0
    # drop rounds that no column touches (Pyomo skips them too)
    used = np.zeros(rounds.shape[0], dtype=bool)
    used[mem_row[keep]] = True
    renumber = np.cumsum(used) - 1
    mem_rows = rounds[used]
    rows = np.concatenate([group, G + renumber[mem_row[keep]]])
    cols = np.concatenate([np.arange(n_cols), col_of_entry[keep]])
    vals = np.concatenate([np.ones(n_cols), coef[keep].astype(np.float64)])
    n_rows = G + mem_rows.shape[0]
    peak_rounds = data.peak_rows()
    if peak_rounds.shape[0]:
        p_round, p_col = data.peak_entries()
        where = np.searchsorted(peak_rounds, p_round)
        hit = (where < peak_rounds.shape[0]) & (peak_rounds[np.minimum(where, peak_rounds.shape[0] - 1)] == p_round)
        rows = np.concatenate([rows, n_rows + where[hit]])
        cols = np.concatenate([cols, p_col[hit]])
        vals = np.concatenate([vals, np.ones(int(hit.sum()))])
    n_peak = int(peak_rounds.shape[0])
    A = sp.csr_matrix((vals, (rows, cols)), shape=(n_rows + n_peak, n_cols))
    count = data.count.astype(np.float64)
    row_lo = np.concatenate([count, np.full(mem_rows.shape[0] + n_peak, -np.inf)])
    row_hi = np.concatenate([count, np.full(mem_rows.shape[0], float(data.capacity)), np.ones(n_peak)])
    col_lo = np.zeros(n_cols)
    col_hi = count[group]
    out = MipArrays(c, A, row_lo, row_hi, col_lo, col_hi, np.ones(n_cols, dtype=np.int8))
    if names:
        out.col_names = [f"y({g}_{t})" for g, t in zip(group.tolist(), epoch.tolist())]
        out.row_names = (
            [f"start({g})" for g in range(G)]
            + [f"memory({r})" for r in mem_rows.tolist()]
            + [f"peak({r})" for r in peak_rounds.tolist()]
        )
    return out


def solution_starts(data: TctData, values: np.ndarray) -> np.ndarray:
    """Start epoch of every request (workload positions) from a column vector.

    Identical requests of a group get the group's start epochs in ascending order of
    position. Values are rounded to the nearest integer.

    Returns
    -------
    numpy.ndarray
        int64 start epochs indexed by workload position (−1 for positions not in
        ``data.members``).
    """
    n = int(sum(len(mm) for mm in data.members))
    starts = np.full(n, -1, dtype=np.int64)
    group, epoch = data.column_epochs()
    counts = np.rint(np.asarray(values)).astype(np.int64)
    for g, members in enumerate(data.members):
        lo, hi = data.col_offset[g], data.col_offset[g + 1]
        ep = np.repeat(epoch[lo:hi], np.maximum(counts[lo:hi], 0))
        if ep.shape[0] != len(members):
            raise ValueError(f"group {g}: solution starts {ep.shape[0]} requests, expected {len(members)}")
        starts[np.sort(members)] = ep
    return starts


def start_vector(data: TctData, starts: np.ndarray) -> np.ndarray | None:
    """Column vector of a schedule given by start epochs per workload position.

    Returns ``None`` if some start lies outside its group's window (the schedule cannot
    be expressed in this model, e.g. it ends after a deadline).
    """
    x = np.zeros(data.n_cols)
    for g, members in enumerate(data.members):
        t = np.asarray(starts)[np.asarray(members)]
        if np.any(t < data.est[g]) or np.any(t > data.lst[g]):
            return None
        np.add.at(x, data.col_offset[g] + (t - data.est[g]), 1.0)
    return x

