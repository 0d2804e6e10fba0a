"""The engine's preemption part: who is evicted on an overflow and what eviction costs.

On an overflow the engine takes a victim order — the policy's
(:meth:`~fluidopt.executor.policy.Policy.victims`, default) or a fixed rule of the
deployment (``victim``: latest arrival or latest admission first, :func:`victim_order`) —
and evicts its shortest prefix whose end-of-iteration holdings free enough memory. An
evicted request loses its KV, its prompt progress is reset, and it returns to the waiting
queue with its original arrival. What happens to its generated tokens is the deployment's
``preemption`` mode:

- ``restart`` (system model, default): they are discarded (``wasted_tokens``) and
  generated again;
- ``recompute`` (vLLM, Vidur): they are kept; the request's effective prompt grows by
  them and its remaining output shrinks by as much, so its next run re-prefills prompt +
  generated tokens together and that prefill emits the next token.
"""

from __future__ import annotations

import numpy as np

from fluidopt.errors import PolicyError

_WAITING = 1
_sum = np.add.reduce


class Preemption:
    """Eviction of residents; works on the engine's per-request arrays in place.

    Parameters
    ----------
    prompt, output, prefilled, generated, wasted, evictions, admitted_at, status
        The engine's per-request arrays (tokens, counts, s, status codes); ``prompt`` and
        ``output`` are the effective ones (changed by ``recompute``).
    held
        Tokens each resident holds under block allocation (``None``: the footprint).
    recompute
        Keep generated tokens (``recompute``) instead of discarding them (``restart``).
    """

    __slots__ = (
        "prompt", "output", "prefilled", "generated", "wasted", "evictions", "admitted_at", "status", "held",
        "recompute",
    )

    def __init__(
        self,
        prompt: np.ndarray,
        output: np.ndarray,
        prefilled: np.ndarray,
        generated: np.ndarray,
        wasted: np.ndarray,
        evictions: np.ndarray,
        admitted_at: np.ndarray,
        status: np.ndarray,
        held: np.ndarray | None = None,
        recompute: bool = False,
    ) -> None:
        self.prompt = prompt
        self.output = output
        self.held = held
        self.recompute = recompute
        self.prefilled = prefilled
        self.generated = generated
        self.wasted = wasted
        self.evictions = evictions
        self.admitted_at = admitted_at
        self.status = status

    @staticmethod
    def prefix(policy: str, victims: np.ndarray, end_footprint: np.ndarray, need: int) -> tuple[int, int]:
        """How many of ``victims`` (in order) go, and the memory they free (tokens).

        ``end_footprint`` holds each victim's end-of-iteration footprint; the shortest
        prefix freeing at least ``need`` tokens is evicted.
        """
        cs = np.cumsum(end_footprint)
        m = int(np.searchsorted(cs, need, side="left")) + 1
        if m > victims.shape[0]:
            raise PolicyError(f"{policy}: victims() does not free enough KV ({need} tokens needed)")
        return m, int(cs[m - 1])

    def evict(self, idx: np.ndarray) -> tuple[int, int]:
        """Evict ``idx``: lose KV (and generated tokens under ``restart``), back to waiting.

        Returns (KV tokens freed, how many of them were still prefilling).
        """
        gen = self.generated[idx]
        pre = self.prefilled[idx]
        n_prefilling = int(np.count_nonzero(pre < self.prompt[idx]))
        if self.held is None:
            freed = int(_sum(pre)) + int(_sum(gen))
        else:
            freed = int(_sum(self.held[idx]))
            self.held[idx] = 0
        if self.recompute:
            self.prompt[idx] += gen
            self.output[idx] -= gen
        else:
            self.wasted[idx] += gen
        self.evictions[idx] += 1
        self.prefilled[idx] = 0
        self.generated[idx] = 0
        self.admitted_at[idx] = np.nan
        self.status[idx] = _WAITING
        return freed, n_prefilling


def victim_order(rule: str, candidates: np.ndarray, rank: np.ndarray, admitted_at: np.ndarray) -> np.ndarray:
    """Residents ``candidates`` in eviction order under a deployment's ``victim`` rule.

    ``latest-arrival``: latest (arrival, id) first (``rank`` is the position in that
    order); ``latest-admission``: latest admission first, ties larger index first.
    """
    if rule == "latest-arrival":
        return candidates[np.argsort(-rank[candidates], kind="stable")]
    return candidates[np.lexsort((-candidates, -admitted_at[candidates]))]
