"""Exact pricing over next-2 paths: the cheapest pseudo-schedule for given round costs.

The subproblem of the path relaxation (:mod:`fluidopt.bounds.paths`). Times are rounds,
memory KV tokens. Items i (requests) have peak p_i = s_i + o_i, output o_i and a window
[first_i, last_i] of completion rounds; a cost w[i, c] (any real, ``inf`` outside the
window) is paid for completing item i in round c.

**Paths.** A path is a sequence (i_1, c_1), (i_2, c_2), … with c non-decreasing, equal
rounds in increasing item index, no item twice in a row, c_l in i_l's window, and the
**next-2 rule** at every position l:

    p_{i_l} + Σ_{q = l+1, l+2 ; c_q − c_l < o_{i_q}} (p_{i_q} − (c_q − c_l)) ≤ C,

the memory check of round c_l with only the next two completions as residents (an item
completing c_q − c_l rounds later holds p − (c_q − c_l) tokens in round c_l if it has
started by then, i.e. if c_q − c_l < o). Items may repeat (not consecutively) or be
missing. :func:`next_two_violations` checks a path against this definition directly.

**Dynamic programme.** With f_m(d) = p_m − d for d < o_m and 0 otherwise (what item m,
completing d rounds after another completion, holds in that round), appending m at gap
d ≥ 0 after a path ending (…, i, j) with gap D = c_j − c_i is feasible iff

- at j: p_j + f_m(d) ≤ C (pairwise; the position after m is checked when it comes), and
- at i: p_i + f_j(D) + f_m(D + d) ≤ C, which holds iff D ≥ o_m − d or U ≥ p_m − d with
  U = D + C − p_i − f_j(D).

So the state of a label at (round t, last item j) is the pair (D, U), and a query only
asks "D ≥ A or U ≥ B": the best label of (t, j) under it is the smaller of a suffix
minimum over D and one over U. Labels therefore keep two marginals, D ∈ [0, o_max] and
U ∈ [0, C] (both capped: past o_max resp. C every query passes), and the DP is exact.
Gaps d ≥ o_max are unconstrained (f = 0 on both sides), so they go through a running
minimum over the labels of rounds ≤ t − o_max (kept for the best item and the best
other one, so that no item follows itself; the "free" start, also the start of a
path). A new label after a gap d < o_max gets D = d and U = d + C − p_j − f_m(d);
after a free gap D = o_max, U = C.

**Compiled loop.** The transitions (d, j, m) with d = 1 … o_max − 1 that pass the
pairwise check are fixed by the instance and grouped by source (d, j), so that each
round reads every source row (the labels of round t − d, item j) once and scatters it
to the items it may precede; then come the free gaps. Equal-round completions (d = 0)
are added last, item by item in increasing index, from the finished labels of the lower
items of the same round, which is exactly the order a path lists them in. The loop
keeps values only (minima, no branches on them); a path is read back from its last label
by finding, at each step, the candidate whose value plus the round's cost equals the
label, with the same floating-point operations as the forward pass, so the match is
exact. Compiled with numba (the vectorised numpy version it replaced took 3–5× as long,
with the same least costs and paths); work per round is O(n² o_max). Time per pricing
in ``benchmarks/kv_synthetic/README.md`` (section "The path bound").

**Rounds without a negative cost at the end.** Dropping the last entry of a path leaves
a path (the rule at the earlier positions only loses a resident). So if every cost of
rounds ≥ t₀ is ≥ 0, a path with an entry before t₀ costs at least its prefix of entries
before t₀, and a path with all its entries at ≥ t₀ costs at least its first entry alone.
The DP therefore runs over rounds < t₀ only (t₀ = one past the last round with a
negative cost; with the LP's multipliers on [KV] instances of 47–57 requests, 46–67% of
the window rounds), and each item's single entry at rounds ≥ t₀ competes as a path of
its own. The least cost over all paths (:attr:`Pricing.best`) stays exact; an item's
``end_value`` is then the cost of the cheapest path ending with it *among these*, which
is all the column generation needs: the paths left out are dearer than one of their
prefixes.

**Paths through an entry** (:meth:`PathPricer.through`, for the fixing of
:mod:`fluidopt.bounds.path_fixing`). A label (D, U) of (t, j) may continue with m at gap
d iff D ≥ A = o_m − d or U ≥ B = p_m − d, and the continuation's own labels then have
the state the forward pass gives them. So the least cost of the entries after (j, t)
under the label is min(h_A(D), h_B(U)), where h_A(x) (h_B(y)) is the least cost of a
continuation with A ≤ x (B ≤ y), stopping (cost 0) and the free gaps included: prefix
minima, filled backwards over the rounds by the same transitions (higher items first
within a round, as they may follow j in it). The least cost of a path through (j, t) is
then min over the labels of forward + continuation = min over x of (forward suffix
minimum at x + backward prefix minimum at x): a label counted at a larger index only
gets a smaller continuation, so the joint minimum is attained on the diagonal. An entry
occurs at most once in a path (equal rounds go in increasing index), so this is the
least cost of a path containing it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit


@dataclass
class Pricing:
    """One pricing result.

    Attributes
    ----------
    end_value
        Per item, the least cost of a path that ends with it, among the paths with all
        entries before ``limit`` and the single entries at or after it (``inf``: none;
        module docstring).
    end_round
        Round of that last completion (−1: none).
    table
        Suffix-minimum label values per (round − ``start``, item, marginal index: D, then
        U); kept for :meth:`PathPricer.path`.
    cost
        The round costs the DP ran with, (rounds, items).
    free_value, free_item, free_round
        Per round − ``start`` (× 2): the least end value so far of the best item and of
        the best other one, the item and the round of each (−1: none).
    start, limit
        The DP's first round and one past its last.
    """

    end_value: np.ndarray
    end_round: np.ndarray
    table: np.ndarray
    cost: np.ndarray
    free_value: np.ndarray
    free_item: np.ndarray
    free_round: np.ndarray
    start: int
    limit: int

    @property
    def best(self) -> float:
        """The least cost of any path (``inf`` if there is none)."""
        return float(self.end_value.min()) if self.end_value.shape[0] else np.inf


class PathPricer:
    """Cheapest next-2 path for given costs (module docstring).

    Parameters
    ----------
    capacity
        C, tokens.
    peak, output
        p_i and o_i per item, tokens (o_i ≥ 1, p_i ≤ C).
    first, last
        Earliest and latest completion round per item.
    """

    def __init__(self, capacity: int, peak: np.ndarray, output: np.ndarray, first: np.ndarray,
                 last: np.ndarray) -> None:
        C = self.C = int(capacity)
        p = self.p = np.asarray(peak, dtype=np.int64)
        o = self.o = np.asarray(output, dtype=np.int64)
        self.first = np.asarray(first, dtype=np.int64)
        self.last = np.asarray(last, dtype=np.int64)
        n = self.n = int(p.shape[0])
        self.T = int(self.last.max()) if n else 0
        omax = self.omax = int(o.max()) if n else 1
        self.width = omax + 1 + C + 1  # D ∈ [0, o_max], then U ∈ [0, C]
        items = np.arange(n)

        # transitions j -> m at gap d = 1 … o_max − 1 that pass the pairwise check, and
        # at d = 0 for j < m; per transition the queries A, B and the new U
        d, j, m = (a.ravel() for a in np.meshgrid(np.arange(0, omax), items, items, indexing="ij"))
        f = np.where(d < o[m], p[m] - d, 0)
        ok = (m != j) & (f <= C - p[j]) & ((d > 0) | (j < m))
        d, j, m, f = d[ok], j[ok], m[ok], f[ok]
        A, B, U = np.maximum(o[m] - d, 0), np.maximum(p[m] - d, 0), np.minimum(d + C - p[j] - f, C)
        # d ≥ 1 grouped by source (d, j), one int32 row (m, A, B, U) each: read every round
        gap = d > 0
        self.src_ptr = np.searchsorted(((d - 1) * n + j)[gap], np.arange((omax - 1) * n + 1)).astype(np.int64)
        self.src = np.stack([m, A, B, U], axis=1)[gap].astype(np.int32)
        # d = 0 grouped by target m (j < m: the lower items come first in a round)
        order = np.argsort(m[~gap], kind="stable")
        self.eq_ptr = np.searchsorted(m[~gap][order], np.arange(n + 1)).astype(np.int64)
        self.eq = np.stack([j, A, B, U], axis=1)[~gap][order].astype(np.int32)
        # d = 0 grouped by source j, for the backward pass: rows (m, A, B, U)
        self.eqs_ptr = np.searchsorted(j[~gap], np.arange(n + 1)).astype(np.int64)
        self.eqs = np.stack([m, A, B, U], axis=1)[~gap].astype(np.int32)
        # all of them by target m, for the backtracking: rows (d, j, A, B, U)
        order = np.argsort(m, kind="stable")
        self.in_ptr = np.searchsorted(m[order], np.arange(n + 1)).astype(np.int64)
        self.into = np.stack([d, j, A, B, U], axis=1)[order].astype(np.int64)

    # ------------------------------------------------------------------ forward pass
    def price(self, cost: np.ndarray, *, every_round: bool = False) -> Pricing:
        """Cheapest path ending with each item under ``cost`` (items × rounds 0…T, ``inf``
        where an item may not complete); ``every_round``: run the DP to the last round, so
        that every item's ``end_value`` is its own optimum (by default the DP stops after
        the last negative cost, which keeps the least cost exact; module docstring)."""
        n, T = self.n, self.T
        cost_t = np.ascontiguousarray(np.asarray(cost, dtype=np.float64)[:, : T + 1].T)
        start = int(self.first.min()) if n else 0
        negative = np.flatnonzero((cost_t < 0).any(axis=1))
        limit = T + 1 if every_round else max(start, int(negative[-1]) + 1 if negative.shape[0] else start)
        rounds = max(limit - start, 0)
        end_value = np.full(n, np.inf)
        end_round = np.full(n, -1, dtype=np.int64)
        table = np.empty((rounds, n, self.width))
        free_value = np.full((rounds, 2), np.inf)
        free_item = np.full((rounds, 2), -1, dtype=np.int64)
        free_round = np.full((rounds, 2), -1, dtype=np.int64)
        if n and rounds:
            _forward(cost_t, start, self.omax, self.C, self.src_ptr, self.src, self.eq_ptr, self.eq, table,
                     end_value, end_round, free_value, free_item, free_round)
        if n and limit <= T:  # single entries at rounds ≥ limit, where no cost is negative
            late = cost_t[limit:]
            at = late.argmin(axis=0)
            value = late[at, np.arange(n)]
            better = value < end_value
            end_value[better] = value[better]
            end_round[better] = limit + at[better]
        return Pricing(end_value, end_round, table, cost_t, free_value, free_item, free_round, start, limit)

    # ------------------------------------------------------------------ through an entry
    def through(self, cost: np.ndarray) -> np.ndarray:
        """Per (item, round 0…T), the least cost of a path that contains that entry
        (``inf`` outside the windows): the forward labels of the entry joined with the
        least cost of a continuation from the same label state (module docstring,
        "Paths through an entry"). Runs the DP over every round, forwards and
        backwards."""
        n, T = self.n, self.T
        out = np.full((n, T + 1), np.inf)
        if n == 0:
            return out
        forward = self.price(cost, every_round=True)
        rounds = forward.table.shape[0]
        back = np.empty_like(forward.table)
        _backward(forward.cost, forward.start, self.omax, self.src_ptr, self.src, self.eqs_ptr, self.eqs, back)
        out[:, forward.start:forward.start + rounds] = (forward.table + back).min(axis=2).T
        return out

    # ------------------------------------------------------------------ backtracking
    def path(self, pricing: Pricing, item: int) -> np.ndarray:
        """The cheapest path ending with ``item`` as an array of (item, round) rows in
        path order (empty if there is none). Its cost is ``pricing.end_value[item]``."""
        if pricing.end_round[item] < 0:
            return np.zeros((0, 2), dtype=np.int64)
        if pricing.end_round[item] >= pricing.limit:  # a single entry past the DP's rounds
            return np.array([[int(item), int(pricing.end_round[item])]], dtype=np.int64)
        path = _backtrack(pricing.table, pricing.cost, pricing.start, self.omax, self.in_ptr, self.into,
                          pricing.free_value, pricing.free_item, pricing.free_round,
                          int(pricing.end_round[item]) - pricing.start, int(item))
        if path.shape[0] == 0:  # pragma: no cover - the forward pass and this one disagree
            raise RuntimeError(f"path backtracking lost the label of item {item}")
        return path


@njit(cache=True)
def _best_two(values):  # pragma: no cover - compiled
    """Indices of the smallest and the second smallest finite value (−1: none)."""
    j1, j2 = -1, -1
    for m in range(values.shape[0]):
        if values[m] == np.inf:
            continue
        if j1 < 0 or values[m] < values[j1]:
            j1, j2 = m, j1
        elif j2 < 0 or values[m] < values[j2]:
            j2 = m
    return j1, j2


@njit(cache=True)
def _forward(cost_t, start, omax, C, src_ptr, src, eq_ptr, eq, table, end_value, end_round, free_value,
             free_item, free_round):  # pragma: no cover - compiled
    """The DP of the module docstring over the rounds of ``table`` from ``start`` on:
    fills the suffix minima, the per-item ends and the free-gap minima. Minima only, no
    branches on values: the backtracking finds the predecessors again."""
    rounds, n, width = table.shape
    W1 = omax + 1
    inf = np.inf
    raw = np.empty((n, width))
    for ti in range(rounds):
        t = start + ti
        raw[:, :] = inf
        # gaps d = 1 … o_max − 1: each source row read once
        for d in range(1, min(omax, ti + 1)):
            si = ti - d
            for j in range(n):
                row = table[si, j]
                if row[0] == inf:
                    continue
                for k in range(src_ptr[(d - 1) * n + j], src_ptr[(d - 1) * n + j + 1]):
                    m = src[k, 0]
                    v = min(row[src[k, 1]], row[W1 + src[k, 2]])
                    raw[m, d] = min(raw[m, d], v)
                    u = W1 + src[k, 3]
                    raw[m, u] = min(raw[m, u], v)
        # after a free gap, from the best label of another item, or a new path
        r = ti - omax
        for m in range(n):
            g = 0.0
            if r >= 0:
                g = min(free_value[r, 1 if free_item[r, 0] == m else 0], 0.0)
            raw[m, omax] = min(raw[m, omax], g)
            raw[m, width - 1] = min(raw[m, width - 1], g)
        # equal-round completions from the finished lower items, then costs and suffix minima
        for m in range(n):
            c = cost_t[t, m]
            for k in range(eq_ptr[m], eq_ptr[m + 1]):
                row = table[ti, eq[k, 0]]
                v = min(row[eq[k, 1]], row[W1 + eq[k, 2]])
                raw[m, 0] = min(raw[m, 0], v)
                u = W1 + eq[k, 3]
                raw[m, u] = min(raw[m, u], v)
            run = inf
            for x in range(W1 - 1, -1, -1):
                run = min(run, raw[m, x] + c)
                table[ti, m, x] = run
            run = inf
            for x in range(width - 1, W1 - 1, -1):
                run = min(run, raw[m, x] + c)
                table[ti, m, x] = run
            if table[ti, m, 0] < end_value[m]:
                end_value[m], end_round[m] = table[ti, m, 0], t
        # the two best items so far, for the free gaps of round t + o_max
        j1, j2 = _best_two(end_value)
        if j1 >= 0:
            free_value[ti, 0], free_item[ti, 0], free_round[ti, 0] = end_value[j1], j1, end_round[j1]
        if j2 >= 0:
            free_value[ti, 1], free_item[ti, 1], free_round[ti, 1] = end_value[j2], j2, end_round[j2]


@njit(cache=True)
def _backward(cost_t, start, omax, src_ptr, src, eqs_ptr, eqs, back):  # pragma: no cover - compiled
    """The continuations' DP, backwards over the rounds of ``back`` (same shape as the
    forward table): ``back[t, j, x]`` is the least cost of the entries after (j, t) among
    the continuations a label of (j, t) with D ≥ x (x ≤ o_max) resp. U ≥ x − o_max − 1
    may take, stopping (cost 0) included; prefix minima over the continuations'
    requirements A = o_m − d resp. B = p_m − d."""
    rounds, n, width = back.shape
    W1 = omax + 1
    inf = np.inf
    raw = np.empty(width)
    item_best = np.full(n, inf)  # per item, least cost of a continuation that starts with it after a free gap
    free_value = np.full((rounds + 1, 2), inf)
    free_item = np.full((rounds + 1, 2), -1, dtype=np.int64)
    for ti in range(rounds - 1, -1, -1):
        t = start + ti
        for j in range(n - 1, -1, -1):  # higher items first: they may follow j in the same round
            raw[:] = inf
            base = 0.0  # stop here
            r = ti + omax  # or continue after a free gap, with another item
            if r < rounds:
                base = min(base, free_value[r, 1 if free_item[r, 0] == j else 0])
            for d in range(1, min(omax, rounds - ti)):
                row_ptr = (d - 1) * n + j
                for k in range(src_ptr[row_ptr], src_ptr[row_ptr + 1]):
                    m = src[k, 0]
                    nxt = back[ti + d, m]
                    v = cost_t[t + d, m] + min(nxt[d], nxt[W1 + src[k, 3]])
                    raw[src[k, 1]] = min(raw[src[k, 1]], v)
                    raw[W1 + src[k, 2]] = min(raw[W1 + src[k, 2]], v)
            for k in range(eqs_ptr[j], eqs_ptr[j + 1]):
                m = eqs[k, 0]
                nxt = back[ti, m]
                v = cost_t[t, m] + min(nxt[0], nxt[W1 + eqs[k, 3]])
                raw[eqs[k, 1]] = min(raw[eqs[k, 1]], v)
                raw[W1 + eqs[k, 2]] = min(raw[W1 + eqs[k, 2]], v)
            run = base
            for x in range(W1):
                run = min(run, raw[x])
                back[ti, j, x] = run
            run = base
            for x in range(W1, width):
                run = min(run, raw[x])
                back[ti, j, x] = run
        # a continuation may start with (m, t) after a free gap: its label has D = o_max
        for m in range(n):
            item_best[m] = min(item_best[m], cost_t[t, m] + back[ti, m, omax])
        j1, j2 = _best_two(item_best)
        if j1 >= 0:
            free_value[ti, 0], free_item[ti, 0] = item_best[j1], j1
        if j2 >= 0:
            free_value[ti, 1], free_item[ti, 1] = item_best[j2], j2


@njit(cache=True)
def _backtrack(table, cost_t, start, omax, in_ptr, into, free_value, free_item, free_round, ti,
               m):  # pragma: no cover - compiled
    """(item, round) rows of the cheapest path ending with item m in round start + ti, in
    path order (empty if the forward pass's minima are not found again). Each label's
    predecessor is the candidate whose value plus the cost equals it, computed with the
    same operations as in the forward pass, so the match is exact."""
    n, width = table.shape[1], table.shape[2]
    W1 = omax + 1
    items, rounds = [], []
    x, val = 0, table[ti, m, 0]
    while True:
        items.append(m)
        rounds.append(start + ti)
        c = cost_t[start + ti, m]
        k = x  # the label itself: the last index of the half with the suffix's value
        for y in range(x, W1 if x < W1 else width):
            if table[ti, m, y] == val:
                k = y
        found = False
        for q in range(in_ptr[m], in_ptr[m + 1]):
            d, j = into[q, 0], into[q, 1]
            if (k != d) if k < W1 else (k - W1 != into[q, 4]):
                continue
            if ti - d < 0:
                continue
            a = table[ti - d, j, into[q, 2]]
            b = table[ti - d, j, W1 + into[q, 3]]
            v = min(a, b)
            if v + c == val:
                ti, m, x, val = ti - d, j, into[q, 2] if a <= b else W1 + into[q, 3], v
                found = True
                break
        if found:
            continue
        if k == omax or k == width - 1:  # after a free gap, or the start
            r = ti - omax
            g, col = 0.0, 0
            if r >= 0:
                col = 1 if free_item[r, 0] == m else 0
                g = min(free_value[r, col], 0.0)
            if g + c == val:
                if g == 0.0:
                    break
                ti, m, x, val = free_round[r, col] - start, free_item[r, col], 0, g
                continue
        return np.zeros((0, 2), dtype=np.int64)
    out = np.empty((len(items), 2), dtype=np.int64)
    for q in range(len(items)):
        out[q, 0] = items[len(items) - 1 - q]
        out[q, 1] = rounds[len(items) - 1 - q]
    return out


def next_two_violations(path: np.ndarray, capacity: int, peak: np.ndarray, output: np.ndarray) -> list[str]:
    """Why a path (rows (item, round)) breaks the definition of a next-2 path (empty:
    it does not), ignoring windows: rounds must not decrease, equal rounds go in
    increasing item index, no item twice in a row, and the next-2 rule at every position."""
    seq = np.asarray(path, dtype=np.int64).reshape(-1, 2)
    p, o = np.asarray(peak), np.asarray(output)
    problems = []
    for l in range(seq.shape[0]):
        i, c = seq[l]
        load = int(p[i])
        for q in range(l + 1, min(seq.shape[0], l + 3)):
            m, cm = seq[q]
            if q == l + 1 and (cm < c or m == i or (cm == c and m < i)):
                problems.append(f"position {q}: ({m}, {cm}) cannot follow ({i}, {c})")
            if cm - c < o[m]:
                load += int(p[m] - (cm - c))
        if load > capacity:
            problems.append(f"position {l}: round {c} holds {load} > C = {capacity} with the next two")
    return problems
