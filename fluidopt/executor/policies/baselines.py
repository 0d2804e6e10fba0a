"""Baseline policies: FCFS, vLLM-like, Sarathi-like, shortest-first, α-protection.

All of them run every model of ``system-model.md`` (unit, linear-kv, affine). Memory
quantities are KV tokens; "projected" usage means the end-of-iteration sum of footprints
if the iteration ran as decided (each decoding resident grows by one token, an admitted
request with whole-prompt prefill ends its first iteration at s + 1). None of them looks
further ahead than the next iteration, so all of them can overflow; the engine then evicts
by :meth:`Policy.victims` (default: most recently admitted first, recomputed on restart).

Every baseline respects the deployment's ``max_batch`` and ``max_tokens`` caps (counted
as the deployment's ``token_budget`` says: the plain sum, or the prompts padded to the
longest), and
returns ``Decision(steady=True)`` whenever its rule guarantees the same decision until
the next arrival or completion (nothing was admitted; Sarathi: also until a prompt's
last chunk): the usage only grows between those events, so an admission test that
failed keeps failing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fluidopt.errors import InputError
from fluidopt.executor.policy import Decision, Policy, StateView, register

_EMPTY = np.empty(0, dtype=np.int64)


def _positive_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if int(value) != value or value < 1:
        raise InputError(f"{what} must be a positive integer (got {value!r})")
    return int(value)


def _fraction(value: Any, what: str) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise InputError(f"{what} must be in [0, 1) (got {value})")
    return value


class _WholePrefill(Policy):
    """Shared machinery of the whole-prompt-prefill baselines.

    Subclasses give the admission order (:meth:`_candidates`) and the usage limit
    (:meth:`_limit`). The rule: all residents run (each decodes one token); waiting
    requests are admitted in candidate order while the projected end-of-iteration usage
    ``kv_used + |resident| + Σ (s_j + 1)`` stays ≤ the limit and the caps hold; the
    first candidate that does not fit stops admission (no skipping ahead). A reserve
    below C (watermark, α) protects the growth of residents; when nothing is resident
    and nothing admitted yet, the first candidate is tested against C itself, so a
    request with s_j + 1 above the reserved limit is not starved forever.

    Under the deployment's engine settings: with ``block_size`` b > 1 a new request counts
    ⌈(s_j + 1)/b⌉·b tokens (the blocks it will hold); with ``token_budget="padded"`` the
    admitted prompts count against ``max_tokens`` as their number × the longest.
    """

    #: Candidates in arrival order: an arrival queues behind a first candidate that did
    #: not fit, so a steady decision with a non-empty queue holds through arrivals.
    _fcfs_candidates = True

    def __init__(self, max_batch: int | None = None) -> None:
        self.max_batch = _positive_int(max_batch, "max_batch")
        self._batch_cap: int | None = None
        self._token_cap: int | None = None
        self._padded = False
        self._block = 1

    def reset(self, workload: Any, deployment: Any) -> None:
        caps = [c for c in (self.max_batch, deployment.max_batch) if c is not None]
        self._batch_cap = min(caps) if caps else None
        self._token_cap = deployment.max_tokens
        self._padded = getattr(deployment, "token_budget", "sum") == "padded"
        self._block = int(getattr(deployment, "block_size", 1))
        if self._token_cap is not None and int(np.max(workload.prompt)) + 1 > self._token_cap:
            raise InputError(
                f"policy {self.name!r} prefills whole prompts, but a prompt of {int(np.max(workload.prompt))} "
                f"tokens does not fit the deployment's max_tokens {self._token_cap}"
            )

    def params(self) -> dict[str, Any]:
        return {"max_batch": self.max_batch}

    def _candidates(self, state: StateView) -> np.ndarray:
        return state.waiting

    def _limit(self, state: StateView) -> float:
        return float(state.capacity)

    def _admit(self, state: StateView, used: int, n_res: int, new_tokens: int) -> list[int]:
        """Admit candidates in order while ``used`` (projected usage) fits the limit."""
        cand = self._candidates(state)
        admitted: list[int] = []
        if cand.shape[0] == 0:
            return admitted
        limit = self._limit(state)
        bcap, tcap = self._batch_cap, self._token_cap
        padded = self._padded
        longest = 0  # padded budget: the admitted prompts count padded to the longest
        b = self._block  # block allocation: a new request holds ⌈(s + 1)/b⌉ blocks
        prompt = state.prompt
        for j in cand.tolist() if cand.shape[0] <= 64 else cand:
            s = int(prompt[j])
            need = s + 1 if b == 1 else -(-(s + 1) // b) * b
            # the reserve protects residents' growth: with none, the capacity is the limit
            if used + need > (limit if n_res or admitted else state.capacity):
                break
            if bcap is not None and n_res + len(admitted) + 1 > bcap:
                break
            if tcap is not None:
                if padded:
                    if (len(admitted) + 1) * max(longest, s) > tcap:
                        break
                elif new_tokens + s > tcap:
                    break
            admitted.append(int(j))
            used += need
            new_tokens += s
            longest = max(longest, s)
        return admitted

    def decide(self, state: StateView) -> Decision:
        res = state.resident
        n_res = res.shape[0]
        admitted = self._admit(state, state.kv_used + n_res, n_res, n_res)
        if not admitted:
            return self._steady(state)
        return Decision(run=np.concatenate([res, np.asarray(admitted, dtype=np.int64)]))

    def _steady(self, state: StateView) -> Decision:
        """Run the residents, admit nothing; through arrivals when the queue's head did not fit."""
        through = self._fcfs_candidates and state.waiting.shape[0] > 0
        return Decision(run=state.resident, steady=True, through_arrivals=through)


@register
class FCFS(_WholePrefill):
    """First come, first served, no future check.

    Rule: every resident runs (one decode token each); waiting requests are admitted in
    (arrival, id) order while the projected end-of-iteration usage
    ``kv_used + |resident| + Σ_admitted (s_j + 1)`` is ≤ C and the batch caps hold; the
    first one that does not fit blocks the queue (strict FCFS). Whole-prompt prefill in
    the admitting iteration, which also runs the decodes. On overflow the engine evicts
    the most recently admitted first.

    Parameters
    ----------
    max_batch
        Optional cap on sequences per iteration (also bounded by the deployment's).
    """

    name = "fcfs"


@register
class VLLM(_WholePrefill):
    """vLLM-like scheduler (vLLM v0 default scheduler with recompute preemption).

    Rule: FCFS admission of whole prompts while, after admission, the free KV stays at
    or above the watermark reserve: ``kv_used + Σ_admitted (s_j + 1) ≤ (1 − watermark)·C``
    (tokens; +1 is the first output token written by the prefill). Prefills are
    prioritised: an iteration that admits new requests runs **only** those prefills and
    pauses the decoding residents (they keep their KV), as vLLM v0's scheduler does when
    it schedules prompts; otherwise every resident decodes. Admission also stops at the
    first request that does not fit, at ``max_batch`` sequences in total (vLLM's
    ``max_num_seqs``) and at the deployment's ``max_tokens`` prefill tokens per iteration
    (``max_num_batched_tokens``). On overflow during decoding the engine evicts the most
    recently admitted first; the evicted request restarts from scratch (recompute) and,
    keeping its arrival time, goes back to the head of the FCFS queue.

    Parameters
    ----------
    watermark
        Fraction of C kept free at admission (default 0.01, vLLM's default).
    max_batch
        Optional cap on resident sequences (also bounded by the deployment's).
    """

    name = "vllm"

    def __init__(self, watermark: float = 0.01, max_batch: int | None = None) -> None:
        super().__init__(max_batch=max_batch)
        self.watermark = _fraction(watermark, "watermark")

    def params(self) -> dict[str, Any]:
        return {"watermark": self.watermark, "max_batch": self.max_batch}

    def _limit(self, state: StateView) -> float:
        return state.capacity - self.watermark * state.capacity

    def decide(self, state: StateView) -> Decision:
        res = state.resident
        n_res = res.shape[0]
        # a prefill-only iteration: residents are paused, so they do not grow
        admitted = self._admit(state, state.kv_used, n_res, 0)
        if admitted:
            return Decision(run=np.asarray(admitted, dtype=np.int64))
        return self._steady(state)


@register
class ShortestFirst(_WholePrefill):
    """Shortest (predicted) output first, without a future-memory check.

    Rule: as :class:`FCFS`, but candidates are ordered by the point prediction ``pred``
    when the workload has one, else by the true output length (hence ``sees_output``);
    ties by (arrival, id). Admission stops at the first candidate that does not fit
    (as MC-SF does), so a long request cannot be starved by skipping, and a short one
    behind a long one waits. No look-ahead: later growth can overflow, and the engine
    then evicts the most recently admitted first.
    """

    name = "sf"
    sees_output = True
    _fcfs_candidates = False  # a shorter arrival can fit where the first candidate did not

    def _candidates(self, state: StateView) -> np.ndarray:
        w = state.waiting
        if w.shape[0] <= 1:
            return w
        key = state.pred if state.pred is not None else state.output
        return w[np.argsort(key[w], kind="stable")]


@register
class AlphaGreedy(_WholePrefill):
    """α-protection greedy ([KV]'s baseline; the project's reading).

    Rule: every resident runs; waiting requests are admitted FCFS while the projected
    end-of-iteration usage ``kv_used + |resident| + Σ_admitted (s_j + 1)`` stays
    ≤ (1 − α)·C — the top α·C tokens are protected for the growth of running requests.
    The first request that does not fit stops admission. When growth still overflows C,
    the engine evicts the most recently admitted residents until the iteration fits.

    Parameters
    ----------
    alpha
        Protected fraction of C (default 0.1).
    max_batch
        Optional cap on sequences per iteration.
    """

    name = "alpha-greedy"

    def __init__(self, alpha: float = 0.1, max_batch: int | None = None) -> None:
        super().__init__(max_batch=max_batch)
        self.alpha = _fraction(alpha, "alpha")

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "max_batch": self.max_batch}

    def _limit(self, state: StateView) -> float:
        return (1.0 - self.alpha) * state.capacity


@register
class AlphaBeta(AlphaGreedy):
    """α-protection β-clearing ([KV]'s baseline; the project's reading).

    Rule: as :class:`AlphaGreedy` while the next iteration fits. When running every
    resident one more iteration would overflow (``kv_used + |resident| > C``), the
    policy clears memory instead: it evicts residents, most recently admitted first,
    until the projected usage of the rest, ``Σ (footprint + 1)``, is ≤ (1 − β)·C (a
    fraction β of C is free after the iteration), admits nothing, and runs the rest.
    The last resident in victim order (the earliest admitted) is never evicted by the
    clearing, so the batch is never emptied: otherwise a lone request with
    footprint + 1 > (1 − β)·C would be evicted and readmitted forever.

    Parameters
    ----------
    alpha
        Protected fraction of C at admission (default 0.1).
    beta
        Fraction of C to free when clearing (default 0.2).
    max_batch
        Optional cap on sequences per iteration.
    """

    name = "alpha-beta"

    def __init__(self, alpha: float = 0.1, beta: float = 0.2, max_batch: int | None = None) -> None:
        super().__init__(alpha=alpha, max_batch=max_batch)
        self.beta = _fraction(beta, "beta")

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "beta": self.beta, "max_batch": self.max_batch}

    def decide(self, state: StateView) -> Decision:
        res = state.resident
        n_res = res.shape[0]
        if state.kv_used + n_res <= state.capacity:
            return super().decide(state)
        order = self.victims(state, res)
        target = (1.0 - self.beta) * state.capacity
        projected = state.kv_used + n_res
        fp = state.footprint(order) + 1
        # smallest prefix of the victim order whose removal brings projected ≤ target
        freed = np.cumsum(fp)
        k = int(np.searchsorted(freed, projected - target, side="left")) + 1
        k = min(k, order.shape[0] - 1)  # keep the last one in victim order running
        evict = order[:k]
        keep = res[~np.isin(res, evict)]  # admission order
        return Decision(run=keep, evict=evict)


@register
class Sarathi(Policy):
    """Sarathi-like scheduler: chunked prefill under a per-iteration token budget.

    Rule, per iteration (budget = ``token_budget`` new tokens):

    1. every decoding resident runs (one token each, always in the batch);
    2. residents still prefilling continue, in admission order, each with
       ``min(remaining prompt, chunk_size, budget left)`` tokens; those that get no budget
       are paused;
    3. FCFS admission into the budget left: request j takes a first chunk
       ``min(s_j, chunk_size, budget left)`` and is admitted only if the KV reserved for
       the whole prompts stays ≤ (1 − watermark)·C, where reserved =
       Σ_decoding (footprint + 1) + Σ_prefilling (s + 1) + Σ_admitted (s_j + 1)
       (tokens; Sarathi-Serve, like vLLM, allocates a request's whole prompt when it is
       first scheduled). Admission stops at the first request that does not fit, at
       ``max_batch`` residents, or when the budget is spent. With nothing resident the
       first request is tested against C itself (nothing to protect), so a prompt above
       the watermark limit is not starved.

    A request's prompt can thus span several iterations; the one that finishes it emits
    token 1. Decode growth can still overflow C; the engine then evicts the most recently
    admitted first (recompute). The budget is capped by the deployment's ``max_tokens``.

    A decision that admits nothing (and runs no prompt's last chunk) is ``steady``: until
    a completion, an arrival or a prompt's last chunk, the decodes and hence the budget
    are the same, every chunk is the same, and a failed admission keeps failing (the
    reserved KV grows by the decodes, the batch cap is unchanged). It holds through
    arrivals when no budget is left for admission or the queue's head was tested.
    It also covers the iteration with a prompt's last chunk (``Decision.last_chunk``)
    when the budget that chunk frees changes nothing: no budget-cut chunk follows the
    finishing prompt, and the queue is empty or its head fails the reservation or
    batch-cap test (see :meth:`_last_chunk_holds`).

    Parameters
    ----------
    chunk_size
        Maximum prefill tokens per request per iteration (default: the deployment's
        ``chunk_size``, else 512).
    token_budget
        New tokens per iteration (default: ``chunk_size``).
    watermark
        Fraction of C kept free at admission (default 0.01).
    max_batch
        Optional cap on resident sequences (also bounded by the deployment's).
    """

    name = "sarathi"

    def __init__(
        self,
        chunk_size: int | None = None,
        token_budget: int | None = None,
        watermark: float = 0.01,
        max_batch: int | None = None,
    ) -> None:
        self.chunk_size = _positive_int(chunk_size, "chunk_size")
        self.token_budget = _positive_int(token_budget, "token_budget")
        self.watermark = _fraction(watermark, "watermark")
        self.max_batch = _positive_int(max_batch, "max_batch")
        self._chunk = 512
        self._budget = 512
        self._batch_cap: int | None = None
        self._pad_cap: int | None = None

    def reset(self, workload: Any, deployment: Any) -> None:
        self._chunk = self.chunk_size or deployment.chunk_size or 512
        budget = self.token_budget or self._chunk
        self._pad_cap = None
        if deployment.max_tokens is not None:
            if getattr(deployment, "token_budget", "sum") == "padded":
                # the prefill chunks count padded to the longest (decodes do not): each of
                # k prefilling members may take at most max_tokens // k tokens
                self._pad_cap = deployment.max_tokens
            else:
                budget = min(budget, deployment.max_tokens)
        self._budget = budget
        caps = [c for c in (self.max_batch, deployment.max_batch) if c is not None]
        self._batch_cap = min(caps) if caps else None

    def params(self) -> dict[str, Any]:
        return {
            "chunk_size": self._chunk,
            "token_budget": self._budget,
            "watermark": self.watermark,
            "max_batch": self.max_batch,
        }

    def decide(self, state: StateView) -> Decision:
        res = state.resident
        n_res = res.shape[0]
        waiting = state.waiting
        n_wait = waiting.shape[0]
        prompt = state.prompt
        rem = prompt[res] - state.prefilled[res]
        part = rem.nonzero()[0]  # residents still prefilling, in admission order
        n_partial = part.shape[0]
        budget = self._budget - (n_res - n_partial)
        if n_partial == 0 and (n_wait == 0 or budget <= 0):
            return Decision(run=res, steady=True, through_arrivals=budget <= 0)
        chunk_cap = self._chunk
        chunks: list[int] = []  # of the first len(chunks) prefilling residents
        last_chunk = False  # a prompt finishes in this iteration
        rem_part = rem[part].tolist() if n_partial else []
        pad = self._pad_cap  # padded budget: k prefilling members × the longest chunk ≤ pad
        longest = 0
        pad_full = False
        if n_partial:
            for r in rem_part:
                if budget <= 0:
                    break
                c = min(r, chunk_cap, budget)
                if pad is not None:
                    c = min(c, pad)
                    if (len(chunks) + 1) * max(longest, c) > pad:
                        pad_full = True
                        break
                    longest = max(longest, c)
                chunks.append(c)
                budget -= c
                last_chunk |= c == r
        # no budget left for admission, or the queue's head is tested below: an arrival
        # (at the tail) changes nothing while nothing is admitted
        through = budget <= 0 or n_wait > 0
        admitted: list[int] = []
        adm_chunks: list[int] = []
        if budget > 0 and n_wait and not pad_full:
            # whole prompts reserved: Σ_res (s + generated) + 1 each = kv_used + Σ rem + |res|
            reserved = state.kv_used + sum(rem_part) + n_res
            cap = state.capacity
            limit = cap - self.watermark * cap
            bcap = self._batch_cap
            for j in waiting[:budget].tolist():  # each admission takes ≥ 1 budget token
                s = int(prompt[j])
                if reserved + s + 1 > (limit if n_res or admitted else cap):
                    break
                if bcap is not None and n_res + len(admitted) + 1 > bcap:
                    break
                c = min(s, chunk_cap, budget)
                if pad is not None:
                    c = min(c, pad)
                    if (len(chunks) + len(admitted) + 1) * max(longest, c) > pad:
                        break
                    longest = max(longest, c)
                admitted.append(j)
                adm_chunks.append(c)
                reserved += s + 1
                budget -= c
                if budget <= 0:
                    break
        if not chunks and not admitted:
            # decodes only; steady unless a paused prefill is waiting for budget (it
            # resumes as soon as the decodes leave some)
            if n_partial == 0:
                return Decision(run=res, steady=True, through_arrivals=through)
            return Decision(run=res[rem == 0])
        if len(chunks) < n_partial:
            # the budget (or the padded budget) ran out: the later prefilling residents
            # pause (nothing admitted)
            keep = rem == 0
            keep[part[: len(chunks)]] = True
            chunk = np.zeros(n_res, dtype=np.int64)
            chunk[part[: len(chunks)]] = chunks
            return Decision(run=res[keep], chunk=chunk[keep], steady=not last_chunk, through_arrivals=True)
        chunk = np.zeros(n_res + len(admitted), dtype=np.int64)
        if chunks:
            chunk[part] = chunks
        if admitted:
            chunk[n_res:] = adm_chunks
            run = np.empty(n_res + len(admitted), dtype=np.int64)  # cheaper than concatenate
            run[:n_res] = res
            run[n_res:] = admitted
        else:
            run = res
        # nothing admitted: the same batch and chunks recur until a completion, an
        # arrival or a prompt's last chunk (see the class docstring); a last chunk now
        # would end the stretch at once
        steady = not admitted and not last_chunk
        # (a padded budget can bind differently once a chunk shrinks: no last-chunk promise)
        last = steady and pad is None and self._last_chunk_holds(state, chunks, rem_part, budget, n_res)
        return Decision(run=run, chunk=chunk, steady=steady, through_arrivals=through, last_chunk=last)

    def _last_chunk_holds(
        self, state: StateView, chunks: list[int], rem_part: list[int], budget: int, n_res: int
    ) -> bool:
        """Whether, for a steady decision where every prefilling resident has a chunk, the
        iteration that finishes the first prompt(s) is this decision with each chunk capped
        at its remaining prompt (``Decision.last_chunk``).

        That iteration frees budget (a finishing prompt takes less than its chunk). Nothing
        changes only if (1) no later member's chunk was cut by the budget — only the last
        member's can be, so it must not come after a finisher — and (2) the freed budget
        admits nothing: the queue is empty (the engine runs that iteration only if
        nothing arrived meanwhile), or its head fails the reservation or batch-cap test,
        which keeps failing (reserved KV grows by the decodes).
        """
        c_last = chunks[-1]
        if c_last < self._chunk and len(chunks) > 1:
            # the last member's chunk was cut by the budget: no earlier member may finish first
            ks = [(r - 1) // c for r, c in zip(rem_part, chunks)]
            if min(ks[:-1]) <= ks[-1]:
                return False
        waiting = state.waiting
        if waiting.shape[0] == 0:
            return True
        if budget > 0:
            return True  # the head was tested above and did not fit
        # the head was not tested (no budget left): test it now
        s = int(state.prompt[waiting[0]])
        reserved = state.kv_used + sum(rem_part) + n_res
        cap = state.capacity
        if reserved + s + 1 > cap - self.watermark * cap:
            return True
        bcap = self._batch_cap
        return bcap is not None and n_res + 1 > bcap
