"""Step-by-step traces of a run and their comparison: the executor against vLLM.

A :class:`Trace` lists, for every iteration (keyed by its start time in the unit-time
model), the requests admitted, preempted and completed in it. :func:`executor_trace`
records one from fluidopt's executor (block-granular KV, recompute preemption: vLLM's
mechanics, :func:`~fluidopt.integrations.vllm.state.engine_deployment`);
:func:`fluidopt.integrations.vllm.replay.replay` records one from vLLM's scheduler driven
directly. :func:`compare` lists their differences after one normalisation, a documented
vLLM mechanic:

- **Admissions that do not fit their blocks.** The executor admits what the policy
  decides and, when the iteration overflows C, evicts in victim order — the requests
  admitted in that iteration first. vLLM allocates the running requests first and leaves
  a waiting request waiting when its blocks do not fit (``allocate_slots`` fails; and no
  request is admitted in a step that preempted). So an executor admission that is
  evicted in the same iteration is, in vLLM, a request that stayed waiting: both are
  dropped from the executor's step before comparing (:attr:`Trace.rollbacks` counts them).

Pure fluidopt: the executor side runs without vLLM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fluidopt.executor.engine import simulate
from fluidopt.executor.policy import Decision, Policy, StateView
from fluidopt.integrations.vllm.state import engine_deployment


@dataclass(frozen=True)
class Step:
    """Request ids admitted, preempted and completed in one iteration (sorted)."""

    admitted: tuple[int, ...] = ()
    preempted: tuple[int, ...] = ()
    completed: tuple[int, ...] = ()


@dataclass
class Trace:
    """What happened in every iteration of a run (unit time: an iteration takes 1).

    Attributes
    ----------
    engine
        ``"executor"`` or ``"vllm"``.
    steps
        Start time of each iteration → its :class:`Step`.
    completion
        Request id → completion time.
    rollbacks
        Executor admissions evicted in their own iteration (removed from ``steps``).
    """

    engine: str
    steps: dict[float, Step] = field(default_factory=dict)
    completion: dict[int, float] = field(default_factory=dict)
    rollbacks: int = 0

    @property
    def preemptions(self) -> int:
        return sum(len(s.preempted) for s in self.steps.values())

    @property
    def admissions(self) -> int:
        return sum(len(s.admitted) for s in self.steps.values())

    def completion_order(self) -> list[int]:
        """Request ids by (completion time, id)."""
        return sorted(self.completion, key=lambda i: (self.completion[i], i))


class _Recorder(Policy):
    """Wraps a policy; records each iteration's admissions and evictions from the states
    the engine hands it (under block allocation every iteration has a decision)."""

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.name = inner.name
        self.sees_output = inner.sees_output
        self.steps: dict[float, tuple[list[int], list[int]]] = {}
        self._open: tuple[float, list[int], np.ndarray] | None = None
        self._ids = np.empty(0, dtype=np.int64)

    @property
    def overflow_free(self) -> bool:  # type: ignore[override]
        return self.inner.overflow_free

    def reset(self, workload: Any, deployment: Any) -> None:
        self.inner.reset(workload, deployment)
        self._ids = np.asarray(workload.id, dtype=np.int64)
        self.steps.clear()
        self._open = None

    def close(self, evictions: np.ndarray) -> None:
        """End the open iteration: its preempted requests are those evicted since."""
        if self._open is None:
            return
        clock, admitted, before = self._open
        self._open = None
        gone = self._ids[np.flatnonzero(np.asarray(evictions) > before)].tolist()
        # an iteration whose whole batch was evicted did not run: the next decision comes
        # at the same clock, and its events join this one's
        prev_adm, prev_gone = self.steps.get(clock, ([], []))
        self.steps[clock] = (prev_adm + admitted, prev_gone + gone)

    def decide(self, state: StateView) -> Decision:
        self.close(state.evictions)
        dec = self.inner.decide(state)
        run = np.asarray(dec.run, dtype=np.int64)
        if run.size:
            adm = run[np.isin(run, state.waiting)]
            self._open = (float(state.clock), self._ids[adm].tolist(), np.array(state.evictions))
        return dec

    def victims(self, state: StateView, candidates: np.ndarray) -> np.ndarray:
        return self.inner.victims(state, candidates)

    def params(self) -> dict[str, Any]:
        return self.inner.params()


def executor_trace(
    workload: Any, policy: Policy, *, num_blocks: int, block_size: int, max_num_seqs: int | None = None
) -> Trace:
    """Run ``policy`` in the executor with vLLM's mechanics and record its trace.

    ``num_blocks`` counts vLLM's KV blocks, its null block included: C =
    (num_blocks − 1)·block_size tokens. Unit time; recompute preemption; the policy's
    victim order.
    """
    dep = engine_deployment(
        num_blocks=num_blocks, block_size=block_size, max_num_seqs=max_num_seqs, max_num_batched_tokens=None
    )
    rec = _Recorder(policy)
    result = simulate(workload, dep, rec)
    records = result.records
    rec.close(records["evictions"].to_numpy())
    trace = Trace("executor")
    done: dict[float, list[int]] = {}
    for i, c in zip(records["id"].tolist(), records["completion"].tolist()):
        if c == c:  # finished
            trace.completion[int(i)] = float(c)
            done.setdefault(float(c) - 1.0, []).append(int(i))
    for clock, (admitted, gone) in rec.steps.items():
        back = set(admitted) & set(gone)  # admitted and evicted in the same iteration
        trace.rollbacks += len(back)
        trace.steps[clock] = Step(
            tuple(sorted(set(admitted) - back)),
            tuple(sorted(set(gone) - back)),
            tuple(sorted(done.pop(clock, []))),
        )
    for clock, ids in done.items():  # (every completion ends a recorded iteration)
        trace.steps[clock] = Step(completed=tuple(sorted(ids)))
    return trace


def compare(a: Trace, b: Trace, limit: int = 10) -> list[str]:
    """Differences between two traces, iteration by iteration (empty: they agree).

    Lists up to ``limit`` iterations whose admitted, preempted or completed sets differ
    (or that only one trace has), then completion times that differ.
    """
    out: list[str] = []
    for clock in sorted(set(a.steps) | set(b.steps)):
        sa, sb = a.steps.get(clock), b.steps.get(clock)
        if sa != sb:
            out.append(f"t={clock:g}: {a.engine} {sa} vs {b.engine} {sb}")
            if len(out) >= limit:
                return out
    for i in sorted(set(a.completion) | set(b.completion)):
        ca, cb = a.completion.get(i), b.completion.get(i)
        if ca != cb:
            out.append(f"request {i}: completes at {ca} ({a.engine}) vs {cb} ({b.engine})")
            if len(out) >= limit:
                break
    return out
