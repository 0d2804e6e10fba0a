"""SVF and 1-bit SVF: smallest projected KV volume first (Kong, Qi, Ye, Zhou,
"Geometry-aware online scheduling for LLM serving", arXiv 2606.22327; the project's reading).

Both are MC-SF (:mod:`fluidopt.executor.policies.mcsf`) with another candidate order: a
waiting request's **projected KV volume** V = õ·s + õ(õ+1)/2 (token·iterations; the
volume of ``system-model.md`` with the predicted output õ in place of o) is its sort key,
smallest first, ties by (arrival, id). Admission is MC-SF's: one at a time in that order
while the future-memory check passes with the predicted lengths, stopping at the first
that fails; no preemption.

The reading implemented here, and where the paper (as summarised for this project) is
silent:

- **SVF** takes õ from the workload's point prediction ``pred`` when it has one, else the
  true output (as MC-SF does; ``params()['lengths']`` says which). It is overflow-free iff
  õ ≥ o for every request. Unlike MC-SF's order (õ alone), the volume orders a short
  output with a long prompt behind a slightly longer output with a short prompt.
- **1-bit SVF** knows one bit per request: long (o > θ) or short. The paper's bit has no
  stated threshold or class lengths; here θ defaults to the median output of the
  workload, a short request is projected at õ = θ and a long one at õ = L (default: the
  workload's largest output, i.e. the class bound an oracle bit carries). Both are upper
  bounds of the true length, so the future-memory check stays safe and the policy is
  overflow-free; its order is short before long whenever the volumes say so (within a
  class: by prompt). The bit is computed from the true outputs (``sees_output``); nothing
  else of the truth is used.
- Shared MC-SF choices (clipping õ to C − s, caps, under-predicted residents) are those of
  :class:`~fluidopt.executor.policies.mcsf._FutureCheckPolicy`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fluidopt.errors import InputError
from fluidopt.executor.policies.mcsf import MCSF, _FutureCheckPolicy
from fluidopt.executor.policy import StateView, register

if TYPE_CHECKING:
    from fluidopt.deployment import Deployment
    from fluidopt.workload import Workload


def projected_volume(prompt: np.ndarray, otil: np.ndarray) -> np.ndarray:
    """V = õ·s + õ(õ+1)/2 (token·iterations), exact in int64."""
    s = np.asarray(prompt, dtype=np.int64)
    o = np.asarray(otil, dtype=np.int64)
    return o * s + o * (o + 1) // 2


class _VolumeFirst:
    """Mixin: candidates by projected volume, smallest first (``_volume`` set in reset)."""

    _volume = np.empty(0, dtype=np.int64)

    def _key(self, state: StateView, wait: np.ndarray) -> np.ndarray | None:
        return self._volume[wait]


@register
class SVF(_VolumeFirst, MCSF):
    """SVF: MC-SF's lengths and check, candidates by smallest V = õ·s + õ(õ+1)/2."""

    name = "svf"

    def reset(self, workload: Workload, deployment: Deployment) -> None:
        super().reset(workload, deployment)
        self._volume = projected_volume(workload.prompt, self._otil)


@register
class OneBitSVF(_VolumeFirst, _FutureCheckPolicy):
    """1-bit SVF: only long (o > θ) or short is known; õ = θ or L, volume order, MC-SF's check.

    Parameters
    ----------
    threshold
        θ, tokens (default: the median output of the workload, rounded down).
    long_length
        L, the projected length of a long request, tokens (default: the largest output).
    """

    name = "svf-1bit"
    sees_output = True
    overflow_free = True

    def __init__(self, threshold: int | None = None, long_length: int | None = None) -> None:
        super().__init__()
        for value, what in ((threshold, "threshold"), (long_length, "long_length")):
            if value is not None and (int(value) != value or value < 1):
                raise InputError(f"{what} must be a positive integer (got {value!r})")
        self.threshold = threshold
        self.long_length = long_length
        self._theta = 0
        self._long = 0

    def reset(self, workload: Workload, deployment: Deployment) -> None:
        super().reset(workload, deployment)
        out = np.asarray(workload.output, dtype=np.int64)
        self._theta = int(self.threshold) if self.threshold is not None else int(np.median(out))
        self._long = int(self.long_length) if self.long_length is not None else int(out.max())
        if self._long < int(out.max()):
            raise InputError(
                f"svf-1bit: long_length {self._long} is below the longest output {int(out.max())} "
                "(the projected lengths must be upper bounds)"
            )
        long = out > self._theta
        otil = np.where(long, self._long, max(self._theta, 1))
        self._otil = self._clip(otil, workload, deployment)
        self._volume = projected_volume(workload.prompt, self._otil)

    def params(self) -> dict[str, Any]:
        return {"threshold": self._theta, "long_length": self._long}


__all__ = ["OneBitSVF", "SVF", "projected_volume"]
