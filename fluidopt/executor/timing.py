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

import math

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


class ProfileTime:
    """Iteration time predicted from operator profiles (the ``profile_time`` of a deployment).

    The per-layer times of one forward pass, summed over ``layers`` layers (ms in the
    file, s here):

    - token-linear operators (projections, MLP, norms, rotary, residual add) at the
      batch's new tokens N rounded **up to a multiple of** ``token_round``: linear
      interpolation in the profiled table ``linear_ops_ms`` (per layer, summed over the
      operators), linear extrapolation past its last point;
    - decode attention for the B_dec decoding members at their mean KV (tokens cached
      before the iteration; the integer mean rounded up to a multiple of ``kv_round``):
      d1·B_dec + d2·B_dec·kv;
    - prefill attention for the prefilling members as one aggregate prompt, as Vidur
      does: chunk c = round(√Σ chunk²) after Σ kv cached tokens (each member's rounded up
      to a multiple of ``kv_round``): p1·c + p2·c² + p3·c·kv.

    The attention forms are least-squares fits to the profiled attention points (the full
    attention table was not available; see the deployment's provenance). The rounding
    choices are Vidur's (``kv_cache_prediction_granularity`` 64, tokens to multiples of 8).
    """

    __slots__ = ("layers", "token_round", "kv_round", "table", "step_ms", "p1", "p2", "p3", "d1", "d2", "unit")

    def __init__(self, spec: dict) -> None:
        self.unit = False
        self.layers = int(spec["layers"])
        self.token_round = int(spec["token_round"])
        self.kv_round = int(spec["kv_round"])
        tokens = np.asarray(spec["linear_ops_ms"]["tokens"], dtype=np.float64)
        ms = np.asarray(spec["linear_ops_ms"]["ms"], dtype=np.float64)
        # every multiple of token_round up to the table's end, precomputed (s, all layers)
        top = int(tokens[-1]) // self.token_round * self.token_round
        grid = np.arange(0, top + 1, self.token_round, dtype=np.float64)
        self.table = (self.layers * np.interp(grid, tokens, ms) / 1000.0).tolist()
        self.step_ms = float((ms[-1] - ms[-2]) / (tokens[-1] - tokens[-2]))  # extrapolation slope
        a = spec["attention_ms_per_layer"]
        self.p1, self.p2, self.p3 = (float(a["prefill"][k]) for k in ("p1", "p2", "p3"))
        self.d1, self.d2 = float(a["decode"]["d1"]), float(a["decode"]["d2"])

    def linear_ops(self, tokens: int) -> float:
        """Token-linear operators over all layers for ``tokens`` new tokens, s."""
        r = self.token_round
        k = (tokens + r - 1) // r
        if k < len(self.table):
            return self.table[k]
        extra = k * r - (len(self.table) - 1) * r
        return self.table[-1] + self.layers * self.step_ms * extra / 1000.0

    def tau(self, new_tokens: int, n_dec: int, dec_kv: int, pf_kv: int, pf_chunk_sq: int) -> float:
        """Iteration time, s.

        Parameters
        ----------
        new_tokens
            Prefill tokens plus one per decoding member.
        n_dec, dec_kv
            Decoding members and the sum of their tokens cached before the iteration.
        pf_kv, pf_chunk_sq
            Prefilling members: Σ of their cached tokens (each already rounded up to
            ``kv_round``) and Σ chunk².
        """
        t = self.linear_ops(new_tokens)
        kr = self.kv_round
        attn = 0.0
        if n_dec:
            kv = (dec_kv // n_dec + kr - 1) // kr * kr
            attn += self.d1 * n_dec + self.d2 * n_dec * kv
        if pf_chunk_sq:
            c = round(math.sqrt(pf_chunk_sq))
            attn += self.p1 * c + self.p2 * c * c + self.p3 * c * pf_kv
        return t + self.layers * attn / 1000.0

    def round_kv(self, kv: np.ndarray) -> np.ndarray:
        """Cached tokens rounded up to a multiple of ``kv_round`` (per member)."""
        kr = self.kv_round
        return (kv + kr - 1) // kr * kr
