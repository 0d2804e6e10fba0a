"""Sorted-F ([VAR] arXiv 2508.06133): batches of small F(X) = (Σ_{i∈X} o_i) / |X|².

F rewards batches that are large and made of short requests: a batch of k requests
with total output O finishes its requests at mean time about O/k per request and
serves k of them, so O/k² is a per-request cost. [VAR] prove a constant competitive
ratio for the offline problem (all requests at time 0, heterogeneous prompts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fluidopt.errors import InputError
from fluidopt.executor.policies.mcsf import FutureMemoryCheck, admission_caps
from fluidopt.executor.policy import Decision, Policy, StateView, register

if TYPE_CHECKING:
    from fluidopt.deployment import Deployment
    from fluidopt.workload import Workload

_EMPTY = np.empty(0, dtype=np.int64)


def batch_peak(prompt: np.ndarray, output: np.ndarray) -> int:
    """Peak KV footprint (tokens) of requests all started in the same iteration.

    In iteration k every request with o ≥ k holds s + k tokens; the peak is at one of
    the completion points k = o_i.
    """
    order = np.argsort(output, kind="stable")
    o = output[order].astype(np.int64)
    s = prompt[order].astype(np.int64)
    ssuf = np.cumsum(s[::-1])[::-1]
    alive = np.arange(o.size, 0, -1)
    return int((ssuf + alive * o).max()) if o.size else 0


def form_batches(
    prompt: np.ndarray,
    output: np.ndarray,
    capacity: int,
    max_batch: int | None = None,
    max_tokens: int | None = None,
) -> list[tuple[np.ndarray, float]]:
    """Sorted-F's batches over the given requests (positions into the arrays).

    ``prompt`` and ``output`` must already be in the candidate order (ascending output,
    ties by arrival and id). Repeatedly: among the prefixes of the remaining requests
    that are memory-feasible (:func:`batch_peak` ≤ C; at most ``max_batch`` long and
    with at most ``max_tokens`` prompt tokens in total when given), take the one with the
    smallest F (ties: the longer prefix), remove it, continue.

    Returns
    -------
    list of (positions, F)
        Batches in formation order; positions index the input arrays.

    Raises
    ------
    InputError
        A single request does not fit in the capacity (or its prompt in ``max_tokens``).
    """
    n = output.shape[0]
    o = output.astype(np.int64)
    s = prompt.astype(np.int64)
    batches: list[tuple[np.ndarray, float]] = []
    start = 0
    while start < n:
        oo, ss = o[start:], s[start:]
        m = oo.size if max_batch is None else min(oo.size, max_batch)
        if max_tokens is not None:
            m = min(m, int(ss.cumsum().searchsorted(max_tokens, side="right")))
            if m == 0:
                raise InputError(f"a prompt of {int(ss[0])} tokens exceeds the deployment's max_tokens {max_tokens}")
        # Sorted by o, the peak of prefix k is at a completion point o_j (j < k), where
        # requests j..k−1 are alive: Σ_{i=j}^{k−1} s_i + (k − j)·o_j = S_k + k·o_j − c_j
        # with S the prefix sums of s and c_j = j·o_j + S_j. It only grows with k, so
        # the feasible prefixes are 1..K: bisect.
        big_s = np.concatenate([[0], ss[:m].cumsum()])
        c = np.arange(m) * oo[:m] + big_s[:m]
        lo, hi = 0, m  # invariant: prefix lo feasible (0 trivially), prefixes > hi infeasible
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if big_s[mid] + int((mid * oo[:mid] - c[:mid]).max()) <= capacity:
                lo = mid
            else:
                hi = mid - 1
        if lo == 0:
            raise InputError(
                f"a request needs {int(ss[0] + oo[0])} KV tokens, more than the capacity {capacity}"
            )
        k = np.arange(1, lo + 1, dtype=np.float64)
        f = oo[:lo].cumsum() / k**2
        best = int(lo - 1 - np.argmin(f[::-1]))  # smallest F, ties: longest prefix
        batches.append((np.arange(start, start + best + 1), float(f[best])))
        start += best + 1
    return batches


@register
class SortedF(Policy):
    """Sorted-F ([VAR]), the project's online reading (``completion-time.md`` §2).

    Plan: sort the waiting requests by (o, arrival, id); repeatedly cut the
    memory-feasible prefix with the smallest F(X) = Σo/|X|² (:func:`form_batches`);
    order the batches by ascending F (ties: formation order). Run: every started
    request runs to completion (no preemption); at each decision, start the head batch
    of the plan when all its requests pass MC-SF's future-memory check together with
    the residents (true lengths), then try the next batch, and stop at the first that
    does not fit (batches never overtake one another).

    Choices:

    - **Memory-feasible** means: the batch's peak footprint when all its requests start
      in the same iteration is ≤ C (:func:`batch_peak`); within ``max_batch`` and
      ``max_tokens`` when the deployment has them. So every batch fits alone and is
      eventually started.
    - Only prefixes of the length-sorted list are considered ("greedy over requests
      sorted by o"); equal F: the longer prefix.
    - **Online arrivals**: when a request arrives (a waiting request not in the plan,
      including one returned by an eviction), the whole plan is rebuilt over all
      waiting requests; started batches are never revisited.
    - A batch starts atomically: all its requests or none. With deployment caps
      (``max_batch``, ``max_tokens``) the head batch also waits for enough free slots
      and prefill tokens (batches are formed within both caps, so each can start once
      the batch is empty).
    - Uses the true output lengths (``sees_output``); overflow-free.
    """

    name = "sorted-f"
    sees_output = True
    overflow_free = True

    def __init__(self) -> None:
        self._output = _EMPTY
        self._plan: list[np.ndarray] = []
        self._in_plan = np.zeros(0, dtype=bool)
        self.replans = 0

    def reset(self, workload: Workload, deployment: Deployment) -> None:
        self._output = np.asarray(workload.output, dtype=np.int64)
        self._plan = []
        self._in_plan = np.zeros(len(workload), dtype=bool)
        self.replans = 0

    def plan(self, state: StateView) -> list[np.ndarray]:
        """Rebuild the plan over the waiting requests; returns the batches in run order."""
        wait = np.asarray(state.waiting, dtype=np.int64)
        cand = wait[np.argsort(self._output[wait], kind="stable")]  # (o, arrival, id)
        dep = state.deployment
        formed = form_batches(
            state.prompt[cand],
            self._output[cand],
            state.capacity,
            getattr(dep, "max_batch", None),
            getattr(dep, "max_tokens", None),
        )
        order = sorted(range(len(formed)), key=lambda b: formed[b][1])  # stable: ties keep formation order
        self._plan = [cand[formed[b][0]] for b in order]
        self._in_plan[:] = False
        self._in_plan[wait] = True
        self.replans += 1
        return self._plan

    def decide(self, state: StateView) -> Decision:
        res = np.asarray(state.resident, dtype=np.int64)
        wait = np.asarray(state.waiting, dtype=np.int64)
        if wait.size == 0:
            self._plan = []
            return Decision(run=res, steady=bool(res.size))
        if not self._in_plan[wait].all():
            self.plan(state)
        g = state.generated[res]
        check = FutureMemoryCheck(
            np.maximum(self._output[res] - g, 1), state.prompt[res] + g, state.capacity
        )
        room, tokens = admission_caps(state, res)
        started: list[np.ndarray] = []
        while self._plan:
            batch = self._plan[0]
            need = int(state.prompt[batch].sum())
            if batch.size > room or need > tokens or not self._fits(check, batch, state):
                break
            started.append(batch)
            room -= batch.size
            tokens -= need
            self._plan.pop(0)
        if not started:
            return Decision(run=res)
        return Decision(run=np.concatenate([res, *started]))

    def _fits(self, check: FutureMemoryCheck, batch: np.ndarray, state: StateView) -> bool:
        """Add the whole batch to ``check`` or leave it unchanged.

        Adding only raises loads, so the batch fits iff every prefix of it fits
        (:meth:`FutureMemoryCheck.admit_prefix` admits all of it); on a failure the
        accepted part is undone.
        """
        snap = check.snapshot()
        if check.admit_prefix(self._output[batch], state.prompt[batch]) == batch.size:
            return True
        check.restore(snap)
        return False

    def params(self) -> dict[str, Any]:
        return {"lengths": "truth", "batches": "smallest-F feasible prefix", "replan": "on arrival"}
