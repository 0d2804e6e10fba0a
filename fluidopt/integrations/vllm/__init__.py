"""fluidopt's schedulers as vLLM scheduler plug-ins (extra ``vllm``; guide: docs/vllm.md).

``vllm serve MODEL --scheduler-cls fluidopt.integrations.vllm.AsyncMCSFScheduler`` runs
MC-SF inside vLLM; WAIT, SVF and FCFS have classes of the same form (sync and async).
The scheduler classes import vLLM on first access, so :mod:`.state`, :mod:`.settings`
and :mod:`.parity` (the executor side of the parity check) work without it.
"""

from __future__ import annotations

from typing import Any

_SCHEDULERS = (
    "AsyncFCFSScheduler",
    "AsyncFluidoptScheduler",
    "AsyncMCSFScheduler",
    "AsyncSVFScheduler",
    "AsyncWaitScheduler",
    "FCFSScheduler",
    "FluidoptScheduler",
    "MCSFScheduler",
    "PolicySchedulerMixin",
    "SVFScheduler",
    "WaitScheduler",
)

__all__ = list(_SCHEDULERS)


def __getattr__(name: str) -> Any:
    # vLLM resolves --scheduler-cls with getattr on this module: import it only then
    if name in _SCHEDULERS:
        from fluidopt.integrations.vllm import scheduler

        return getattr(scheduler, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
