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

**Vectorisation.** The transitions (d, j, m) with d = 1 … o_max − 1 that pass the
pairwise check are fixed by the instance; for each round t their values are gathered
from the suffix-minimum tables of rounds t − d in one ``take`` and reduced to the new
labels with ``minimum.reduceat`` over precomputed segments. Equal-round completions
(d = 0, in increasing index) chain: after the first one the check at i only involves
peaks (p_i + p_j + p_m ≤ C), so longer chains are a fixed graph on item pairs, relaxed
until nothing improves. Work per round is O(n² o_max); the table of all rounds is kept
for the backtracking of paths. Time per pricing in ``benchmarks/kv_synthetic/README.md``
(section "The path bound").

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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _segments(keys: np.ndarray) -> np.ndarray:
    """First index of every run of equal values in ``keys``."""
    if keys.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])


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
        Suffix-minimum label values per (round < ``limit``, item, marginal, index); kept
        for :meth:`PathPricer.path`.
    cost
        The round costs the DP ran with, (rounds, items).
    free, free_item, free_round
        Per round t, (rounds × 2): the least label value over rounds ≤ t and the least
        among the other items, with the item and round of each (−1: none).
    """

    end_value: np.ndarray
    end_round: np.ndarray
    table: np.ndarray
    cost: np.ndarray
    free: np.ndarray
    free_item: np.ndarray
    free_round: np.ndarray
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
        W = self.W = max(omax, C) + 1
        self.stride = n * 2 * W  # one round of the table

        # transitions j -> m at gap d = 1 … o_max − 1, in (d, m, j) order
        d, m, j = (a.ravel() for a in np.meshgrid(np.arange(1, omax), np.arange(n), np.arange(n), indexing="ij"))
        f = np.where(d < o[m], p[m] - d, 0)
        ok = (m != j) & (f <= C - p[j])
        d, m, j, f = d[ok], m[ok], j[ok], f[ok]
        u_new = np.minimum(d + C - p[j] - f, C)
        self.tr_d, self.tr_m, self.tr_j = d, m, j
        self.tr_A = np.maximum(o[m] - d, 0)
        self.tr_B = np.maximum(p[m] - d, 0)
        self.tr_U = u_new
        # flat table positions of the two queries, relative to round t (round t − d), and
        # both in one array relative to round t − o_max + 1 (the first source round)
        self.tr_qD = self._flat(j, 0, self.tr_A) - d * self.stride
        self.tr_qU = self._flat(j, 1, self.tr_B) - d * self.stride
        self.tr_q = np.concatenate((self.tr_qD, self.tr_qU)) + (omax - 1) * self.stride
        self.tr_upto = np.searchsorted(d, np.arange(omax + 1), side="right")  # transitions with d ≤ t
        # new D labels: one per (d, m) run
        self.segD = _segments(d * n + m)
        self.posD = self._flat(m[self.segD], 0, d[self.segD])
        # new U labels: one per (m, U) run
        key = m * (C + 1) + u_new
        self.permU = np.argsort(key, kind="stable")
        self.segU = _segments(key[self.permU])
        self.posU = self._flat(m[self.permU][self.segU], 1, u_new[self.permU][self.segU])
        self.permU_d = d[self.permU]
        # both reductions in one: values of the D runs, then of the U runs
        self.perm_all = np.concatenate((np.arange(d.shape[0]), self.permU))
        self.seg_all = np.concatenate((self.segD, self.segU + d.shape[0]))
        self.pos_all = np.concatenate((self.posD, self.posU))
        self.keyU_sorted = key[self.permU]
        self.tr_keyD = d * n + m
        self._arange = np.arange(d.shape[0])
        self._empty = np.zeros(0, dtype=np.int64)
        items = np.arange(n)
        self.pos_free = np.r_[self._flat(items, 0, omax), self._flat(items, 1, C)]

        # equal-round completions j -> m (j < m, p_j + p_m ≤ C): "pairs"
        pj, pm = (a.ravel() for a in np.meshgrid(items, items, indexing="ij"))
        ok = (pj < pm) & (p[pj] + p[pm] <= C)
        pj, pm = pj[ok], pm[ok]
        self.pair_j, self.pair_m = pj, pm
        self.pair_qD = self._flat(pj, 0, o[pm])
        self.pair_qU = self._flat(pj, 1, p[pm])
        self.pair_U = C - p[pj] - p[pm]
        order = np.argsort(pm, kind="stable")
        self.pair_permD, self.pair_segD = order, _segments(pm[order])
        self.pair_m_sorted = pm[order]
        self.pair_posD = self._flat(pm[order][self.pair_segD], 0, 0)
        key = pm * (C + 1) + self.pair_U
        perm = np.argsort(key, kind="stable")
        self.pair_permU, self.pair_segU = perm, _segments(key[perm])
        self.pair_keyU_sorted = key[perm]
        self.pair_posU = self._flat(pm[perm][self.pair_segU], 1, self.pair_U[perm][self.pair_segU])
        self.pair_perm_all = np.concatenate((self.pair_permD, self.pair_permU))
        self.pair_seg_all = np.concatenate((self.pair_segD, self.pair_segU + pj.shape[0]))
        self.pair_pos_all = np.concatenate((self.pair_posD, self.pair_posU))
        # chains of three: pair (i, j) -> pair (j, m) when p_i + p_j + p_m ≤ C
        a, b = (x.ravel() for x in np.meshgrid(np.arange(pj.shape[0]), np.arange(pj.shape[0]), indexing="ij"))
        ok = (pm[a] == pj[b]) & (p[pj[a]] + p[pm[a]] + p[pm[b]] <= C)
        a, b = a[ok], b[ok]
        order = np.argsort(b, kind="stable")
        self.chain_src, chain_dst = a[order], b[order]
        self.chain_seg = _segments(chain_dst)
        self.chain_dst = chain_dst[self.chain_seg]

    def _flat(self, item: np.ndarray, half: int, index: np.ndarray) -> np.ndarray:
        """Flat position in one round of the table: (item, marginal 0 = D / 1 = U, index)."""
        return (np.asarray(item) * 2 + half) * self.W + np.asarray(index)

    # ------------------------------------------------------------------ forward pass
    def price(self, cost: np.ndarray, *, every_round: bool = False) -> Pricing:
        """Cheapest path ending with each item under ``cost`` (items × rounds 0…T, ``inf``
        where an item may not complete); ``every_round``: run the DP to the last round, so
        that every item's ``end_value`` is its own optimum (by default the DP stops after
        the last negative cost, which keeps the least cost exact; module docstring)."""
        n, T, C, omax = self.n, self.T, self.C, self.omax
        cost_t = np.ascontiguousarray(np.asarray(cost, dtype=np.float64)[:, : T + 1].T)
        start = int(self.first.min()) if n else 0
        negative = np.flatnonzero((cost_t < 0).any(axis=1))
        limit = T + 1 if every_round else max(start, int(negative[-1]) + 1 if negative.shape[0] else start)
        table = np.full((limit, n, 2, self.W), np.inf)
        flat = table.reshape(-1)
        free = np.full((T + 1, 2), np.inf)
        free_item = np.full((T + 1, 2), -1, dtype=np.int64)
        free_round = np.full((T + 1, 2), -1, dtype=np.int64)
        items = np.arange(n)
        end_value = np.full(n, np.inf)
        end_round = np.full(n, -1, dtype=np.int64)
        labels = np.empty((n, 2, self.W))
        lab = labels.reshape(-1)
        n_tr = self.tr_d.shape[0]
        for t in range(start, limit):
            ct = cost_t[t]
            labels.fill(np.inf)
            k = n_tr if t >= omax else int(self.tr_upto[t])
            if k:
                base = t * self.stride
                if k == n_tr:
                    both = flat[base - (omax - 1) * self.stride:].take(self.tr_q)
                    val = np.minimum(both[:k], both[k:])
                    lab[self.pos_all] = np.minimum.reduceat(val.take(self.perm_all), self.seg_all)
                else:  # early rounds: only gaps d ≤ t have a source round
                    val = np.minimum(flat.take(self.tr_qD[:k] + base), flat.take(self.tr_qU[:k] + base))
                    n_seg = int(np.searchsorted(self.segD, k))
                    lab[self.posD[:n_seg]] = np.minimum.reduceat(val, self.segD[:n_seg])
                    early = np.where(self.permU_d <= t, val.take(np.minimum(self.permU, k - 1)), np.inf)
                    lab[self.posU] = np.minimum.reduceat(early, self.segU)
            if t >= omax:  # after a free gap, from the best label of another item, or a new path
                r = t - omax
                g = np.minimum(np.where(free_item[r, 0] == items, free[r, 1], free[r, 0]), 0.0)
                lab[self.pos_free] = np.minimum(lab.take(self.pos_free), np.concatenate((g, g)))
            else:
                lab[self.pos_free] = np.minimum(lab.take(self.pos_free), 0.0)
            labels += ct[:, None, None]
            suffix = np.minimum.accumulate(labels[:, :, ::-1], axis=2)[:, :, ::-1]
            if self.pair_j.shape[0]:
                suffix = self._equal_round(labels, suffix, ct)
            table[t] = suffix
            best = suffix[:, 0, 0]
            better = best < end_value
            end_value[better] = best[better]
            end_round[better] = t
            if n:
                j1 = int(end_value.argmin())
                v1 = end_value[j1]
                end_value[j1] = np.inf
                j2 = int(end_value.argmin())
                end_value[j1] = v1
                if np.isfinite(v1):
                    free[t, 0], free_item[t, 0], free_round[t, 0] = v1, j1, end_round[j1]
                if j2 != j1 and np.isfinite(end_value[j2]):
                    free[t, 1], free_item[t, 1], free_round[t, 1] = end_value[j2], j2, end_round[j2]
        if n and limit <= T:  # single entries at rounds ≥ limit, where no cost is negative
            late = cost_t[limit:]
            at = late.argmin(axis=0)
            value = late[at, items]
            better = value < end_value
            end_value[better] = value[better]
            end_round[better] = limit + at[better]
        return Pricing(end_value, end_round, table, cost_t, free, free_item, free_round, limit)

    def _equal_round(self, labels: np.ndarray, suffix: np.ndarray, ct: np.ndarray) -> np.ndarray:
        """Add the labels of completions in the same round (d = 0) and return the new
        suffix minima. Pair (j, m) values from j's other labels, then chains."""
        sf = suffix.reshape(-1)
        pair = np.minimum(sf.take(self.pair_qD), sf.take(self.pair_qU)) + ct.take(self.pair_m)
        if not np.isfinite(pair).any():
            return suffix
        if self.chain_src.shape[0]:
            ct_dst = ct.take(self.pair_m.take(self.chain_dst))
            for _ in range(self.n):
                ext = np.minimum.reduceat(pair.take(self.chain_src), self.chain_seg) + ct_dst
                better = ext < pair.take(self.chain_dst)
                if not better.any():
                    break
                pair[self.chain_dst[better]] = ext[better]
        lab = labels.reshape(-1)
        pos = self.pair_pos_all
        lab[pos] = np.minimum(lab.take(pos), np.minimum.reduceat(pair.take(self.pair_perm_all), self.pair_seg_all))
        return np.minimum.accumulate(labels[:, :, ::-1], axis=2)[:, :, ::-1]

    # ------------------------------------------------------------------ backtracking
    def path(self, pricing: Pricing, item: int) -> np.ndarray:
        """The cheapest path ending with ``item`` as an array of (item, round) rows in
        path order (empty if there is none). Its cost is ``pricing.end_value[item]``."""
        t = int(pricing.end_round[item])
        if t < 0:
            return np.zeros((0, 2), dtype=np.int64)
        if t >= pricing.limit:  # a single entry past the DP's rounds
            return np.array([[int(item), t]], dtype=np.int64)
        S, cost, C, omax = pricing.table, pricing.cost, self.C, self.omax
        m, half, k = int(item), 0, 0
        value = S[t, m, 0, 0]
        out = []
        while True:
            out.append((m, t))
            row = S[t, m, half]
            k = k + int(np.flatnonzero(row[k:] == value)[-1])  # the label itself, not a suffix
            c = cost[t, m]
            step = self._predecessor(pricing, t, m, half, k, value, c)
            if step is None:
                break
            t, m, half, k, value = step
        return np.asarray(out[::-1], dtype=np.int64).reshape(-1, 2)

    def _predecessor(self, pricing: Pricing, t: int, m: int, half: int, k: int, value: float,
                     c: float) -> tuple[int, int, int, int, float] | None:
        """(round, item, marginal, index, value) of the label the label (t, m, half, k) of
        ``value`` was extended from; ``None`` when it starts the path. Candidates are
        re-evaluated exactly as in the forward pass, so the one it used matches bit for bit."""
        C, omax, p, o, S = self.C, self.omax, self.p, self.o, pricing.table
        empty = self._empty
        if half == 0:
            sel = self._arange[slice(*np.searchsorted(self.tr_keyD, (k * self.n + m, k * self.n + m + 1)))] \
                if 0 < k < omax else empty
            pairs = self.pair_permD[slice(*np.searchsorted(self.pair_m_sorted, (m, m + 1)))] if k == 0 else empty
        else:
            key = m * (C + 1) + k
            sel = self.permU[slice(*np.searchsorted(self.keyU_sorted, (key, key + 1)))]
            if t < omax:
                sel = sel[self.tr_d[sel] <= t]
            pairs = self.pair_permU[slice(*np.searchsorted(self.pair_keyU_sorted, (key, key + 1)))]
        n_pairs = pairs.shape[0]
        ts = np.concatenate((t - self.tr_d[sel], np.full(n_pairs, t)))
        j = np.concatenate((self.tr_j[sel], self.pair_j[pairs]))
        a = np.concatenate((self.tr_A[sel], np.full(n_pairs, o[m])))
        b = np.concatenate((self.tr_B[sel], np.full(n_pairs, p[m])))
        via_d, via_u = S[ts, j, 0, a], S[ts, j, 1, b]
        hit = np.flatnonzero(np.minimum(via_d, via_u) + c == value)
        if hit.shape[0]:
            q = int(hit[0])
            if via_d[q] <= via_u[q]:
                return int(ts[q]), int(j[q]), 0, int(a[q]), float(via_d[q])
            return int(ts[q]), int(j[q]), 1, int(b[q]), float(via_u[q])
        if (half == 0 and k == omax) or (half == 1 and k == C):
            r = t - omax
            col = int(pricing.free_item[r, 0] == m) if r >= 0 else 0
            g = min(pricing.free[r, col], 0.0) if r >= 0 else 0.0
            if g + c == value:
                if g == 0.0:
                    return None
                return int(pricing.free_round[r, col]), int(pricing.free_item[r, col]), 0, 0, float(g)
        raise RuntimeError(f"path backtracking lost the label ({t}, {m}, {half}, {k})")  # pragma: no cover


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
