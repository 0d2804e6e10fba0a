"""Amax and Amin: MC-SF under interval predictions ([ROB] arXiv 2508.14544).

Every request comes with a prediction interval [ℓ_i, u_i] ∋ o_i (tokens). Both policies
are MC-SF (:mod:`fluidopt.executor.policies.mcsf`) with a particular predicted length:

- **Amax** uses the upper end, õ_i = u_i. Since o_i ≤ u_i no resident outlives its
  predicted end, so the future-memory check is never wrong and it never evicts.
- **Amin** uses a pseudo-length that starts at the lower end, õ_i = ℓ_i, and is raised
  when a running request reaches it without finishing; overflows are resolved by
  evicting the requests that have done the least work. It never reads the truth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fluidopt.executor.policies.mcsf import _FutureCheckPolicy, require_interval
from fluidopt.executor.policy import Decision, StateView, register

if TYPE_CHECKING:
    from fluidopt.deployment import Deployment
    from fluidopt.workload import Workload


@register
class Amax(_FutureCheckPolicy):
    """Amax ([ROB]): MC-SF with õ_i = u_i (``pred_hi``), candidates by (u, arrival, id).

    Needs the columns ``pred_lo``/``pred_hi`` (InputError otherwise). Overflow-free:
    the workload guarantees o_i ≤ u_i, so every predicted end is an upper bound.
    """

    name = "amax"
    overflow_free = True

    def reset(self, workload: Workload, deployment: Deployment) -> None:
        super().reset(workload, deployment)
        _, hi = require_interval(workload, self.name)
        self._otil = self._clip(hi, workload, deployment)

    def params(self) -> dict[str, Any]:
        return {"lengths": "pred_hi"}


@register
class Amin(_FutureCheckPolicy):
    """Amin ([ROB]): MC-SF with an adaptive pseudo-length that starts at ℓ_i (``pred_lo``).

    At every decision, before admission:

    1. **Raise.** A resident that has generated g ≥ õ_i tokens and is still running has
       shown that ℓ was too low: õ_i ← g + 1 (project's choice, "at least what it has
       shown": it is assumed to finish in the next iteration). Because the raise uses
       the current g, it gives the same value whether or not the engine called the
       policy at every iteration in between.
    2. **Admit** as MC-SF with the current õ, candidates in ascending (õ, arrival, id);
       stop at the first failure. If the residents alone already fail the check at
       some future point (possible after raises), nothing is admitted.
    3. **Evict** (by the engine, through :meth:`victims`) only when the next iteration
       would overflow: ascending generated tokens (least work lost first), ties latest
       started first, then larger index first. An evicted request keeps its raised õ
       and restarts from scratch (it re-enters the candidate order with that õ).

    Uses only ℓ (``pred_lo``; the column pair must be present, InputError otherwise);
    ``overflow_free`` is False. ``steady`` is returned only when nothing is waiting.
    """

    name = "amin"
    overflow_free = False

    def reset(self, workload: Workload, deployment: Deployment) -> None:
        super().reset(workload, deployment)
        lo, _ = require_interval(workload, self.name)
        # the pseudo-lengths, raised in place during the run
        self._otil = self._clip(lo, workload, deployment)

    def decide(self, state: StateView) -> Decision:
        res = np.asarray(state.resident, dtype=np.int64)
        if res.size:
            g = state.generated[res]
            short = g >= self._otil[res]
            if short.any():
                self._otil[res[short]] = g[short] + 1
        return super().decide(state)

    def victims(self, state: StateView, candidates: np.ndarray) -> np.ndarray:
        """Eviction order: ascending generated, then latest started, then larger index."""
        cand = np.asarray(candidates, dtype=np.int64)
        order = np.lexsort((-cand, -state.admitted_at[cand], state.generated[cand]))
        return cand[order]

    @property
    def pseudo_lengths(self) -> np.ndarray:
        """The current pseudo-lengths õ (tokens), per request (a copy)."""
        return self._otil.copy()

    def params(self) -> dict[str, Any]:
        return {"lengths": "pred_lo", "raise": "generated + 1"}
