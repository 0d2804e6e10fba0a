"""The engine's time-model part: the duration τ of one iteration from its batch aggregates.

The engine describes an iteration by B (sequences in the batch), ΣKV (their
end-of-iteration footprints, tokens), N_new (new tokens: prefill tokens plus one per
decoding member) and Σ chunk² (tokens²), and asks this part for τ in seconds (rounds for
the unit model). Stretches of identical iterations (``Decision.steady``) differ only in
ΣKV, which grows by the same number of tokens every iteration; :meth:`IterationTime.stretch`
splits τ into the parts that stay fixed over a stretch so the engine's stretch loops add
one product per iteration, in the same float-operation order as :meth:`IterationTime.tau`
(the results are bit-identical to running the iterations one by one).
"""

from __future__ import annotations

import numpy as np

from fluidopt.deployment import TimeModel


class IterationTime:
    """τ = c0 + c_seq·B + c_kv·ΣKV + c_new·N_new + c_pf2·Σ chunk² (s); 1 for the unit model.

    The same expression and operation order as :meth:`TimeModel.iteration_time`.
    """

    __slots__ = ("unit", "c0", "c_seq", "c_kv", "c_new", "c_pf2", "kind")

    def __init__(self, model: TimeModel) -> None:
        self.kind = model.kind
        self.unit = bool(model.is_unit)
        self.c0, self.c_seq, self.c_kv = model.c0, model.c_seq, model.c_kv
        self.c_new, self.c_pf2 = model.c_new, model.c_pf2

    def tau(self, batch: int, kv_run: int, new_tokens: int, chunk_sq: int) -> float:
        """Duration of one iteration, s."""
        if self.unit:
            return 1.0
        return self.c0 + self.c_seq * batch + self.c_kv * kv_run + self.c_new * new_tokens + self.c_pf2 * chunk_sq

    def stretch(self, batch: int, new_tokens: int, chunk_sq: int) -> tuple[float, float, float]:
        """(base, tail, pf2): τ of a stretch iteration is ``base + c_kv·ΣKV + tail + pf2``."""
        if self.unit:
            return 0.0, 0.0, 0.0
        return self.c0 + self.c_seq * batch, self.c_new * new_tokens, self.c_pf2 * chunk_sq

    def stretch_taus(self, base: float, kv_run: np.ndarray, tail: float, pf2: float) -> np.ndarray:
        """τ of stretch iterations whose run footprints are ``kv_run`` (array), s."""
        if self.unit:
            return np.ones(kv_run.shape[0])
        return base + self.c_kv * kv_run + tail + pf2
