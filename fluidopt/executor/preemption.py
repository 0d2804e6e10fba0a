"""The engine's preemption part: who is evicted on an overflow and what eviction costs.

On an overflow the engine asks the policy for its victim order
(:meth:`~fluidopt.executor.policy.Policy.victims`) and evicts its shortest prefix whose
end-of-iteration footprints free enough memory. An evicted request is *restarted*: it
loses its KV and its generated tokens (``wasted_tokens``), its prompt progress is reset,
and it returns to the waiting queue with its original arrival (system model).
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
    prompt, prefilled, generated, wasted, evictions, admitted_at, status
        The engine's per-request arrays (tokens, counts, s, status codes).
    """

    __slots__ = ("prompt", "prefilled", "generated", "wasted", "evictions", "admitted_at", "status")

    def __init__(
        self,
        prompt: np.ndarray,
        prefilled: np.ndarray,
        generated: np.ndarray,
        wasted: np.ndarray,
        evictions: np.ndarray,
        admitted_at: np.ndarray,
        status: np.ndarray,
    ) -> None:
        self.prompt = prompt
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

    def restart(self, idx: np.ndarray) -> tuple[int, int]:
        """Evict ``idx``: lose KV and generated tokens, back to waiting.

        Returns (KV tokens freed, how many of them were still prefilling).
        """
        gen = self.generated[idx]
        pre = self.prefilled[idx]
        n_prefilling = int(np.count_nonzero(pre < self.prompt[idx]))
        freed = int(_sum(pre)) + int(_sum(gen))
        self.wasted[idx] += gen
        self.evictions[idx] += 1
        self.prefilled[idx] = 0
        self.generated[idx] = 0
        self.admitted_at[idx] = np.nan
        self.status[idx] = _WAITING
        return freed, n_prefilling
