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
  workload, and each class has one projected length õ, used for both the volume order
  and the future-memory check:

  - ``projection="mean"`` (default): the class's mean output (rounded up). Not an upper
    bound, so a request can outgrow the check and the engine evicts (as MC-SF with
    noisy predictions);
  - ``projection="bound"``: the class's bound, õ = θ for short and õ = L for long
    (default L: the workload's largest output). The check is then safe and the policy
    overflow-free, but a heavy output tail makes every long request reserve the largest
    output, which can throttle admission badly (see ``benchmarks/kv_synthetic/README.md``
    and the real-trace notebook).

  Within a class the order is by prompt (the volume grows with s). The bit and the class
  statistics are computed from the true outputs (``sees_output``); nothing else of the
  truth is used.
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
    """1-bit SVF: only long (o > θ) or short is known; one projected length per class.

    Parameters
    ----------
    threshold
        θ, tokens (default: the median output of the workload, rounded down).
    projection
        ``"mean"`` (default): each class's mean output; ``"bound"``: θ for short, L for
        long (overflow-free).
    long_length
        L, the projected length of a long request, tokens (default: the class mean, or
        the largest output with ``projection="bound"``, where it must be ≥ it).
    """

    name = "svf-1bit"
    sees_output = True

    def __init__(self, threshold: int | None = None, projection: str = "mean", long_length: int | None = None) -> None:
        super().__init__()
        for value, what in ((threshold, "threshold"), (long_length, "long_length")):
            if value is not None and (int(value) != value or value < 1):
                raise InputError(f"{what} must be a positive integer (got {value!r})")
        if projection not in ("mean", "bound"):
            raise InputError(f"projection must be 'mean' or 'bound' (got {projection!r})")
        self.threshold = threshold
        self.projection = projection
        self.long_length = long_length
        self._theta = self._short = self._long = 0

    def reset(self, workload: Workload, deployment: Deployment) -> None:
        super().reset(workload, deployment)
        out = np.asarray(workload.output, dtype=np.int64)
        self._theta = int(self.threshold) if self.threshold is not None else int(np.median(out))
        long = out > self._theta
        if self.projection == "bound":
            self._short = max(self._theta, 1)
            self._long = int(self.long_length) if self.long_length is not None else int(out.max())
            if self._long < int(out.max()):
                raise InputError(
                    f"svf-1bit: long_length {self._long} is below the longest output {int(out.max())} "
                    "(with projection 'bound' the projected lengths must be upper bounds)"
                )
        else:
            self._short = int(np.ceil(out[~long].mean())) if (~long).any() else 1
            mean_long = int(np.ceil(out[long].mean())) if long.any() else self._theta + 1
            self._long = int(self.long_length) if self.long_length is not None else mean_long
        otil = np.where(long, self._long, self._short)
        self._otil = self._clip(otil, workload, deployment)
        self._volume = projected_volume(workload.prompt, self._otil)
        self.overflow_free = bool(np.all(self._otil >= out))

    def params(self) -> dict[str, Any]:
        return {"threshold": self._theta, "projection": self.projection, "short_length": self._short,
                "long_length": self._long}


__all__ = ["OneBitSVF", "SVF", "projected_volume"]
