"""MC-SF, H-SF and MC-Benchmark ([KV] arXiv 2502.07115, [ROB] arXiv 2508.14544).

All three keep every started request running (no preemption) and admit waiting requests
one at a time, in a policy-specific order, while MC-SF's **future-memory check** passes;
they stop at the first candidate that fails. The check (``completion-time.md`` §2): with
the residents S and the candidate set U started now,

    Σ_{i∈S, k ≤ r_i} (b_i + k) + Σ_{j∈U, k ≤ õ_j} (s_j + k) ≤ C     for every future iteration k ≥ 1,

where r_i is the predicted number of service iterations resident i still needs, b_i its
current footprint (prompt + generated tokens) and s_j, õ_j a candidate's prompt and
predicted output length (all in tokens; k counts iterations, which are rounds in the unit
model). Between two predicted completions every term grows with k, so the check looks
only at the predicted completion points; :class:`FutureMemoryCheck` does this on a
grid of the residents' and candidates' ends: one O(|S| log |S|) sort per decision, a
scalar test for the first candidate, then O(|S ∪ U|) array work per candidate, done
for a block of candidates at once (:meth:`FutureMemoryCheck.admit_prefix`). Decisions
that would admit nothing until the next completion are marked ``steady`` so the engine
can skip them (see :class:`_FutureCheckPolicy`).

``benchmarks/executor/mcsf_check.py`` times the check against an every-round check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fluidopt.errors import InputError
from fluidopt.executor.policy import Decision, Policy, StateView, register

if TYPE_CHECKING:
    from fluidopt.deployment import Deployment
    from fluidopt.workload import Workload

_EMPTY = np.empty(0, dtype=np.int64)


class FutureMemoryCheck:
    """MC-SF's future-memory check, evaluated at predicted completion points only.

    Parameters
    ----------
    remaining
        Predicted service iterations each resident still needs, r_i ≥ 1.
    footprint
        Current KV footprint of each resident, b_i (tokens); in iteration k from now
        it holds b_i + k tokens while k ≤ r_i.
    capacity
        KV capacity C, tokens.
    points
        Predicted lengths õ of the candidates that may be tested (optional): their end
        points are laid out in advance, so a test is a few array operations.

    Notes
    -----
    The load M(k) = Σ_{alive at k} (footprint at k) is kept on a sorted grid G of
    offsets: the resident ends r_i and the candidates' ends õ_j. A candidate (õ, s) is
    alive at every k ≤ õ, so adding it raises M by s + k on the grid prefix G ≤ õ and
    nowhere else; the test is max_{G ≤ õ}(M(k) + k) + s ≤ C, and an accepted candidate
    adds s + k to that prefix (arrays hold M(k) + k). Grid points that are not
    completion points are real rounds too, so checking them never changes the answer;
    the completion points are all on the grid, so nothing is missed. A candidate whose
    end is not on the grid is inserted (slower path). Residents alone: M at offset x is
    a suffix sum over residents sorted by r (one ``searchsorted``).
    """

    __slots__ = ("capacity", "r", "n", "res_load", "bsuf", "base_ok", "grid", "lk", "u_end", "u_prompt")

    def __init__(
        self, remaining: np.ndarray, footprint: np.ndarray, capacity: int, points: np.ndarray | None = None
    ) -> None:
        # hot path (once per decision): method calls, no conversions of int64 inputs
        self.capacity = int(capacity)
        remaining = np.asarray(remaining, dtype=np.int64)
        order = remaining.argsort()  # the order among equal r does not matter
        r = remaining[order]
        b = np.asarray(footprint, dtype=np.int64)[order]
        n = r.shape[0]
        self.r, self.n = r, n
        bsuf = np.zeros(n + 1, dtype=np.int64)
        if n:
            bsuf[:n] = b[::-1].cumsum()[::-1]
        self.bsuf = bsuf  # Σ b over sorted positions ≥ p (n − p residents there)
        # M at the resident ends; a later copy of a repeated r undercounts, the first
        # copy is exact and is the largest, so maxima are exact
        self.res_load = bsuf[:n] + r * np.arange(n, 0, -1, dtype=np.int64)
        self.base_ok = bool(n == 0 or self.res_load.max() <= self.capacity)
        self.grid: np.ndarray | None = None
        self.lk = _EMPTY
        self.u_end: list[int] = []  # accepted candidates
        self.u_prompt: list[int] = []
        if points is not None:
            self.layout(points)

    def resident_load(self, x: np.ndarray | int) -> np.ndarray | int:
        """Residents' load at offsets ``x`` ≥ 1 (iterations from now), tokens."""
        if isinstance(x, (int, np.integer)):
            j = int(self.r.searchsorted(x, side="left"))
            return int(self.bsuf[j]) + int(x) * (self.n - j)
        j = self.r.searchsorted(x, side="left")
        return self.bsuf[j] + x * (self.n - j)

    def layout(self, points: np.ndarray) -> None:
        """(Re)build the grid from the resident ends, ``points`` and accepted candidates.

        Repeated values are kept (a prefix ``G ≤ õ`` covers all copies), which saves a
        ``unique``.
        """
        parts = [self.r, np.asarray(points, dtype=np.int64)]
        if self.u_end:
            parts.append(np.asarray(self.u_end, dtype=np.int64))
        g = np.concatenate(parts)
        g.sort()
        lk = self.resident_load(g) + g
        for o, s in zip(self.u_end, self.u_prompt):
            e = int(g.searchsorted(o, side="right"))
            lk[:e] += g[:e] + s
        self.grid, self.lk = g, lk

    def fits_alone(self, otil: int, prompt: int) -> bool:
        """The test for the first candidate (none accepted yet), without a grid."""
        if not self.base_ok:
            return False
        o, s, cap = int(otil), int(prompt), self.capacity
        i = int(self.r.searchsorted(o, side="right"))  # resident ends k ≤ o
        if i and int((self.res_load[:i] + self.r[:i]).max()) + s > cap:
            return False
        return self.resident_load(o) + o + s <= cap

    def try_add(self, otil: int, prompt: int) -> bool:
        """Accept the candidate (predicted output ``otil``, prompt ``prompt``) if it fits.

        Returns ``False`` and leaves the state unchanged when some completion point
        would exceed the capacity (with the residents, the accepted candidates and it).
        """
        if not self.base_ok:
            return False
        o, s = int(otil), int(prompt)
        g = self.grid
        e = 0 if g is None else int(g.searchsorted(o, side="right"))
        if e == 0 or g[e - 1] != o:  # not laid out: slower path
            self.layout(np.array([o]))
            g = self.grid
            e = int(g.searchsorted(o, side="right"))
        head = self.lk[:e]
        if int(head.max()) + s > self.capacity:
            return False
        head += g[:e]
        head += s
        self.u_end.append(o)
        self.u_prompt.append(s)
        return True

    def admit_prefix(self, otil: np.ndarray, prompt: np.ndarray, chunk: int = 64) -> int:
        """Accept candidates in the given order until the first that fails; returns how many.

        Same result as calling :meth:`try_add` in a loop, in a few array operations per
        block of ``chunk`` candidates: on the grid G of resident, accepted and candidate
        ends up to the largest candidate end (later points are not touched), row j of a block matrix holds candidate j's load at every grid point
        (s_j + k where k ≤ õ_j); its cumulative sum over rows plus the current load is
        the load with every prefix of the block, and a prefix fits iff its row maximum
        is ≤ C. Loads only grow, so the first failing prefix ends the admission. Work
        O(chunk · |G|) per block.
        """
        otil = np.asarray(otil, dtype=np.int64)
        prompt = np.asarray(prompt, dtype=np.int64)
        n = otil.size
        if not self.base_ok or n == 0:
            return 0
        # only points up to the largest candidate end are touched: the grid is complete
        # up to hi (every resident and accepted end ≤ hi is on it), which try_add relies on
        hi = int(otil.max())
        parts = [self.r[: int(self.r.searchsorted(hi, side="right"))], otil]
        if self.u_end:
            parts.append(np.asarray([u for u in self.u_end if u <= hi], dtype=np.int64))
        g = np.concatenate(parts)
        g.sort()
        load = self.resident_load(g)
        for o, s in zip(self.u_end, self.u_prompt):
            e = int(g.searchsorted(o, side="right"))
            load[:e] += g[:e] + s
        total = 0
        for lo in range(0, n, chunk):
            co, cs = otil[lo : lo + chunk], prompt[lo : lo + chunk]
            block = np.where(co[:, None] >= g[None, :], cs[:, None] + g[None, :], 0).cumsum(axis=0)
            block += load
            ok = block.max(axis=1) <= self.capacity
            k = co.size if ok.all() else int(ok.argmin())
            if k:
                load = block[k - 1]
                self.u_end.extend(co[:k].tolist())
                self.u_prompt.extend(cs[:k].tolist())
                total += k
            if k < co.size:
                break
        self.grid, self.lk = g, load + g
        return total

    def snapshot(self) -> tuple:
        """State to restore with :meth:`restore` (to undo tentative additions)."""
        return (self.grid, self.lk.copy(), len(self.u_end))

    def restore(self, snap: tuple) -> None:
        self.grid, self.lk, n_u = snap[0], snap[1], snap[2]
        del self.u_end[n_u:], self.u_prompt[n_u:]

    def blocked_delays(self, otil: int, prompt: int) -> np.ndarray:
        """For a lone candidate started d = 0 … r_min − 1 iterations from now: fails?

        Uses the residents only (valid while no candidate is accepted). Until the first
        resident completes (r_min iterations), every resident end lies after d, so the
        points the candidate touches are the resident ends k ≤ d + õ (load
        M(k) + s + k − d, a prefix maximum) and its own end d + õ (load M(d + õ) + s + õ).

        Returns
        -------
        numpy.ndarray of bool
            Entry d is True when starting the candidate d iterations from now fails.
        """
        if self.r.shape[0] == 0:
            return np.zeros(0, dtype=bool)
        o, s = int(otil), int(prompt)
        d = np.arange(int(self.r[0]), dtype=np.int64)
        x = d + o
        pm = np.maximum.accumulate(self.res_load + self.r)
        i = np.searchsorted(self.r, x, side="right")
        touched = np.where(i > 0, pm[np.maximum(i - 1, 0)] - d, np.iinfo(np.int64).min // 2)
        own = self.resident_load(x) + o
        return (np.maximum(touched, own) + s > self.capacity) | (not self.base_ok)


def naive_future_check(
    remaining: np.ndarray, footprint: np.ndarray, cand_otil: np.ndarray, cand_prompt: np.ndarray, capacity: int
) -> bool:
    """Reference check over every future iteration (for tests and the micro-benchmark).

    Builds the load of every iteration k = 1 … max end explicitly; O((|S|+|U|)·horizon).
    """
    horizon = int(max(remaining.max(initial=0), cand_otil.max(initial=0)))
    k = np.arange(1, horizon + 1)
    load = np.zeros(horizon, dtype=np.int64)
    for r, b in zip(remaining, footprint):
        load[:r] += b + k[:r]
    for o, s in zip(cand_otil, cand_prompt):
        load[:o] += s + k[:o]
    return bool(horizon == 0 or load.max() <= capacity)


class _FutureCheckPolicy(Policy):
    """Shared loop of MC-SF-style policies: run all residents, admit while the check passes.

    Subclasses set the predicted lengths ``self._otil`` (tokens, per request) in
    :meth:`reset` and choose the candidate order in :meth:`_order`.

    Choices the papers leave open (documented for every subclass):

    - A resident that has already generated ``õ`` tokens without finishing (an
      under-prediction) is treated as needing one more iteration: its remaining length
      is max(õ − generated, 1), i.e. its length is taken as "tokens seen so far + 1".
      Overflows that this causes are resolved by the engine with :meth:`victims`.
    - A resident's future footprint is prompt + generated + k (whole-prompt prefill;
      with chunked prefill this over-estimates and stays safe).
    - With deployment caps (``max_batch``, ``max_tokens``; a new request prefills its
      whole prompt in one iteration) admission also stops at the first candidate that
      does not fit them (:func:`admission_caps`). A prompt longer than ``max_tokens``
      can never be admitted by these policies.
    - A predicted length is clipped to õ ≤ C − s (:meth:`_clip`): a longer one would fail
      the check for ever and block the queue behind it, and since every request has
      s + o ≤ C (checked by the engine) the clip keeps õ ≥ o wherever it held.
    - ``steady`` is returned when nothing is waiting, and also when nothing can be
      admitted until the next completion or arrival: the caps are reached, or (only when the
      predicted lengths are upper bounds) the first candidate fails the check for every
      start delay before the first predicted completion (:meth:`FutureMemoryCheck.blocked_delays`).
    """

    #: the candidate order is ascending predicted length (False: waiting order, FCFS)
    shortest_first: bool = True
    #: on a failed check, try the next candidate instead of stopping (see MCSF)
    first_fit: bool = False

    def __init__(self) -> None:
        self._otil = _EMPTY
        self._quiet: tuple[int, int, int, int] | None = None  # (first, n_res, iter0, iter_end)

    # ------------------------------------------------------------------ hooks
    def _remaining(self, state: StateView, res: np.ndarray) -> np.ndarray:
        return np.maximum(self._otil[res] - state.generated[res], 1)

    def _key(self, state: StateView, wait: np.ndarray) -> np.ndarray | None:
        """Sort key of the waiting requests (``None``: keep the waiting order, FCFS)."""
        return self._otil[wait] if self.shortest_first else None

    def _first(self, key: np.ndarray | None) -> int:
        """Position in ``wait`` of the first candidate."""
        return 0 if key is None else int(key.argmin())  # first minimum: earliest (arrival, id)

    def _order(self, key: np.ndarray | None, wait: np.ndarray) -> np.ndarray:
        """All candidates in admission order; ``wait`` is ordered by (arrival, id)."""
        return wait if key is None else wait[key.argsort(kind="stable")]  # (key, arrival, id)

    # ------------------------------------------------------------------ decision
    def decide(self, state: StateView) -> Decision:
        res = np.asarray(state.resident, dtype=np.int64)
        wait = np.asarray(state.waiting, dtype=np.int64)
        if wait.size == 0:
            return Decision(run=res, steady=bool(res.size))
        room, tokens = admission_caps(state, res)
        if room <= 0:
            return Decision(run=res, steady=True)
        key = self._key(state, wait)
        if self.first_fit:
            return self._decide_first_fit(state, res, self._order(key, wait), room, tokens)
        first = int(wait[self._first(key)])
        q = self._quiet
        if (
            q is not None
            and q[0] == first
            and q[1] == res.size
            and q[2] <= state.iteration < q[3]
        ):
            return Decision(run=res)  # known to fail until iteration q[3] (see _blocked)
        self._quiet = None  # any fresh decision drops it: residents change only after one
        g = state.generated[res]
        check = FutureMemoryCheck(self._remaining(state, res), state.prompt[res] + g, state.capacity)
        otil, prompt = self._otil, state.prompt
        if prompt[first] > tokens:  # token budget: frees up only at a completion
            return Decision(run=res, steady=True)
        if not check.fits_alone(otil[first], prompt[first]):
            return Decision(run=res, steady=self._blocked(state, check, first, res.size))
        if room == 1 or wait.size == 1:
            return Decision(run=np.concatenate([res, [first]]))
        order = self._order(key, wait)
        # every admitted request adds s + 1 in the next iteration, when all residents
        # are alive: candidates beyond this prefix cannot all fit, so lay out only these
        free = state.capacity - check.resident_load(1)
        m = int((prompt[order] + 1).cumsum().searchsorted(free, side="right")) + 1
        if tokens < _UNCAPPED:
            room = min(room, int(prompt[order].cumsum().searchsorted(tokens, side="right")))
        cand = order[: min(m, room + 1, order.size)]
        k = check.admit_prefix(otil[cand], prompt[cand])
        return Decision(run=np.concatenate([res, cand[: min(k, room)]]))

    def _decide_first_fit(
        self, state: StateView, res: np.ndarray, order: np.ndarray, room: int, tokens: int
    ) -> Decision:
        """Admission that skips a candidate failing the check and tries the next one.

        The same check and order as :meth:`decide`; only the rule on failure differs.
        Two necessary conditions against the residents alone (room for s + 1 tokens in
        the next iteration; room at the candidate's own predicted end) discard most
        candidates in one array pass, and the rest are tested one by one. Never
        ``steady``: a candidate that fails now may pass after a later start.
        """
        check = FutureMemoryCheck(
            self._remaining(state, res), state.prompt[res] + state.generated[res], state.capacity
        )
        if not check.base_ok:
            return Decision(run=res)
        cap = state.capacity
        prompt, otil = state.prompt[order], self._otil[order]
        free = cap - check.resident_load(1)  # tokens free in the next iteration
        maybe = (prompt + 1 <= free) & (prompt <= tokens) & (check.resident_load(otil) + otil + prompt <= cap)
        cand = np.flatnonzero(maybe)
        if cand.size == 0:
            return Decision(run=res)
        check.layout(otil[cand])
        admitted: list[int] = []
        for j in cand:
            s = int(prompt[j])
            if s + 1 > free or s > tokens:
                continue
            if check.try_add(int(otil[j]), s):
                admitted.append(int(order[j]))
                free -= s + 1
                tokens -= s
                if len(admitted) >= room:
                    break
        return Decision(run=np.concatenate([res, np.asarray(admitted, dtype=np.int64)]))

    def _blocked(self, state: StateView, check: FutureMemoryCheck, first: int, n_res: int) -> bool:
        """Whether "admit nothing" holds until the next completion or arrival.

        Only with upper-bound lengths (``overflow_free``): then no resident outlives its
        predicted end, so the first completion comes within r_min iterations. When the
        first candidate would pass at some earlier delay d*, remember that the decisions
        before it are "admit nothing" (same first candidate and residents).
        """
        if not self.overflow_free or n_res == 0 or check.r[0] < 2:
            return False  # (r_min = 1: the next decision comes after one iteration anyway)
        fails = check.blocked_delays(self._otil[first], state.prompt[first])
        if fails.all():
            return True
        d_star = int(np.argmin(fails))  # first delay at which it passes
        self._quiet = (first, n_res, state.iteration, state.iteration + d_star)
        return False

    def reset(self, workload: Workload, deployment: Deployment) -> None:
        self._quiet = None

    @staticmethod
    def _clip(otil: np.ndarray, workload: Workload, deployment: Deployment) -> np.ndarray:
        """Predicted lengths õ (tokens) clipped to [1, C − s] (a new array; no upper clip
        when the deployment has no capacity yet)."""
        otil = np.maximum(np.asarray(otil, dtype=np.int64), 1)
        cap = getattr(deployment, "capacity", None)
        if cap is None:
            return otil
        return np.minimum(otil, np.maximum(int(cap) - np.asarray(workload.prompt, dtype=np.int64), 1))


_UNCAPPED = 1 << 62


def admission_caps(state: StateView, run_res: np.ndarray) -> tuple[int, int]:
    """Room left by the deployment's caps once the residents ``run_res`` are in the batch.

    Returns
    -------
    (slots, tokens)
        Sequences that may still join under ``max_batch``, and prompt tokens that new
        requests may still process under ``max_tokens`` (a running resident uses one
        token, or the rest of its prompt while prefilling); a large number when uncapped.
    """
    dep = state.deployment
    cap_b = getattr(dep, "max_batch", None) if dep is not None else None
    cap_t = getattr(dep, "max_tokens", None) if dep is not None else None
    slots = _UNCAPPED if cap_b is None else int(cap_b) - run_res.size
    if cap_t is None:
        return slots, _UNCAPPED
    left = state.prompt[run_res] - state.prefilled[run_res]
    return slots, int(cap_t) - int(np.where(left > 0, left, 1).sum())


def fit_caps(state: StateView, run_res: np.ndarray, new: np.ndarray) -> int:
    """How many of ``new`` (in order, whole prompts) fit the deployment's caps."""
    slots, tokens = admission_caps(state, run_res)
    if tokens >= _UNCAPPED:
        return max(0, min(slots, new.size))
    return max(0, min(slots, int(state.prompt[new].cumsum().searchsorted(tokens, side="right"))))


def _point_or_truth(workload: Workload) -> tuple[np.ndarray, str]:
    if workload.pred is not None:
        return np.asarray(workload.pred, dtype=np.int64), "pred"
    return np.asarray(workload.output, dtype=np.int64), "truth"


@register
class MCSF(_FutureCheckPolicy):
    """MC-SF, memory-constrained shortest first ([KV]).

    Candidates in ascending (õ, arrival, request id); admit one at a time while the
    future-memory check passes; no preemption.

    Choices:

    - õ is the workload's point prediction ``pred`` when it has one, otherwise the true
      output length (then the policy is H-SF under another name; ``params()['lengths']``
      records which). The lengths are taken from the workload in :meth:`reset`.
    - ``overflow_free`` is True iff õ ≥ o for every request (exact or upper-bound
      predictions); the engine then raises if an eviction is ever needed.
    - Under-predicted residents: remaining length max(õ − generated, 1); see
      :class:`_FutureCheckPolicy` for the other shared choices.
    - ``first_fit``: [KV] add candidates "while" the check passes, which we read as
      stopping at the first failure (default). ``first_fit=True`` is the other reading
      the text allows: a failing candidate is skipped and the next ones are still tried
      (``notebooks/kv_real_trace.py`` measures both).
    """

    name = "mc-sf"

    def __init__(self, first_fit: bool = False) -> None:
        super().__init__()
        self._source = "pred"
        self.first_fit = bool(first_fit)

    def reset(self, workload: Workload, deployment: Deployment) -> None:
        super().reset(workload, deployment)
        otil, self._source = _point_or_truth(workload)
        self._otil = self._clip(otil, workload, deployment)
        self.overflow_free = bool(np.all(self._otil >= workload.output))

    def params(self) -> dict[str, Any]:
        return {"lengths": self._source, **({"first_fit": True} if self.first_fit else {})}


@register
class HSF(_FutureCheckPolicy):
    """H-SF: MC-SF with the true output lengths (the hindsight benchmark of [ROB]).

    Overflow-free. Not always optimal when prompts differ (compare with the MIP).
    """

    name = "h-sf"
    sees_output = True
    overflow_free = True

    def reset(self, workload: Workload, deployment: Deployment) -> None:
        super().reset(workload, deployment)
        self._otil = np.asarray(workload.output, dtype=np.int64)

    def params(self) -> dict[str, Any]:
        return {"lengths": "truth"}


@register
class MCBenchmark(MCSF):
    """MC-Benchmark ([KV]'s memory-aware baseline): FCFS order with MC-SF's check.

    Candidates in (arrival, request id) order, stop at the first that fails the
    future-memory check (``first_fit=True``: skip it and try the later arrivals, as for
    MC-SF). Lengths õ as in MC-SF (``pred`` if present, else the truth);
    ``overflow_free`` iff õ ≥ o everywhere.
    """

    name = "mc-benchmark"
    shortest_first = False


def require_interval(workload: Workload, policy: str) -> tuple[np.ndarray, np.ndarray]:
    """The workload's prediction interval (pred_lo, pred_hi), or an InputError."""
    if workload.pred_lo is None or workload.pred_hi is None:
        raise InputError(
            f"policy {policy!r} needs prediction intervals (columns pred_lo, pred_hi)",
            source=workload.source or workload.name,
            field="pred_lo",
        )
    return np.asarray(workload.pred_lo, dtype=np.int64), np.asarray(workload.pred_hi, dtype=np.int64)


__all__ = [
    "FutureMemoryCheck",
    "HSF",
    "MCBenchmark",
    "MCSF",
    "naive_future_check",
    "require_interval",
]
