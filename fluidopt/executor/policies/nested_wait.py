"""Nested WAIT ([WAIT] arXiv 2504.11320, Algorithm 2): segments, lengths unknown.

The service iterations are cut at boundaries b_0 = 0 < b_1 < … < b_K; segment k covers
iterations (b_{k−1}, b_k] and has an integer threshold n_k. A request that has generated
g tokens is at **stage** g; the next iteration it runs is g + 1, so it belongs to the
segment containing g + 1. A request paused at a boundary, g = b_k, waits in the **entry
queue** of segment k + 1 (segment 1's entry queue is the waiting queue, stage 0).
Requests classify themselves: those that finish inside a segment leave, the others reach
the next boundary. The rule: find the largest k such that every segment k' ≤ k has at
least n_{k'} requests in its entry queue; if there is none, idle; otherwise the batch
takes min(n_{k'}, count) requests from every stage of segments 1…k, and the later
segments pause with their caches (``fluid-and-wait.md`` §4).

Two options the paper does not have (project's, both off by default):
``advance_resident`` is the analogue of the authors' simulator variant of WAIT (resident
stages of every segment advance in every batch, up to n_k per stage; only admission
waits for n_1 requests in the waiting queue), and ``reserve`` keeps R KV tokens free at
admission.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fluidopt.errors import InputError
from fluidopt.executor.policies.wait import admission_reserve, cap_batch, first_per_group, fit_new
from fluidopt.executor.policy import Decision, Policy, StateView, register
from fluidopt.threshold_file import Segment, Thresholds, load_thresholds

if TYPE_CHECKING:
    from fluidopt.deployment import Deployment
    from fluidopt.workload import Workload

_EMPTY = np.empty(0, dtype=np.int64)


def segments_from(spec: Thresholds | str | Path | Sequence[Sequence[int]]) -> tuple[Segment, ...]:
    """Segments from a thresholds object/file (policy ``nested-wait``) or ``[(b_k, n_k), ...]``.

    Raises
    ------
    InputError
        Wrong policy in the file, boundaries not strictly increasing, thresholds < 1.
    """
    source = None
    if isinstance(spec, (str, Path)):
        source = str(spec)
        spec = load_thresholds(spec)
    if isinstance(spec, Thresholds):
        if spec.policy != "nested-wait":
            raise InputError(
                f"nested-wait needs a thresholds file for policy 'nested-wait' (this one is for {spec.policy!r})",
                source=source,
            )
        return spec.segments
    try:
        pairs = [(int(end), int(n)) for end, n in spec]
    except (TypeError, ValueError):
        raise InputError(
            "nested-wait: segments must be a thresholds file or a list of (end, threshold) pairs"
        ) from None
    segs, start = [], 1
    for end, n in pairs:
        segs.append(Segment(start, end, n))
        start = end + 1
    return Thresholds("nested-wait", segments=tuple(segs)).segments  # validates


@register
class NestedWait(Policy):
    """Nested WAIT: the rule of [WAIT] Algorithm 2 with output lengths unknown.

    Parameters
    ----------
    segments
        A :class:`~fluidopt.threshold_file.Thresholds` (policy ``nested-wait``), the path
        of a thresholds file, or a list of ``(b_k, n_k)`` pairs: segment end (service
        iterations, inclusive) and threshold.
    drain
        Once no arrival remains (``next_arrival`` infinite), every segment is active and
        each stage gives min(n_k, count) requests, so a finite workload finishes (the
        paper's stream never ends; project's choice). Default True.
    memory_guard
        Admit only the waiting requests (arrival order) that keep the next iteration
        within C (:func:`~fluidopt.executor.policies.wait.fit_new`); project's choice,
        default True. Without it a batch that does not fit has its newest admissions
        evicted and re-admitted at once, and residents paused at a boundary can hold the
        memory while segment 1 cycles forever. With the guard, a capacity too small for
        the thresholds shows up as idling (until an arrival or the drain phase) instead.
    advance_resident
        Resident stages of every segment advance in every batch (min(n_k, count) per
        stage), whether or not the entry queues hold n_k; only the admission of new
        requests waits until n_1 of them wait. The analogue for Nested WAIT of the
        authors' simulator variant of WAIT (``wait``'s ``advance_resident``); project's
        option, default False (the paper's Algorithm 2). Under Algorithm 2 the server
        idles whenever fewer than n_1 requests wait, so when arrivals are sparse on the
        scale of an iteration (λ·ΔT ≪ 1, e.g. a chat trace on one GPU) residents advance
        about once per arrival and a request of o tokens takes about o·n_1/λ seconds.
    reserve
        Admission reserve R (KV tokens): with ``memory_guard``, new requests are admitted
        only while the next iteration ends at or below C − R, so the residents' decode
        growth has R tokens of room before the engine must evict. ``None`` (default):
        the thresholds file's ``reserve`` (0 for a list of pairs). Sized by
        calibration (``fluidopt.calibrate.admission_reserve``).

    Choices the paper leaves open:

    - A request still running after b_K stays in segment K (the last segment extends
      to infinity; its stages beyond b_K are capped by n_K).
    - Within a stage, residents are taken earliest admitted first; in the waiting queue
      (stage 0, which also holds evicted requests, which restart from scratch) in
      arrival order. An entry queue at a boundary is ordered by admission too (the
      order in which requests reached the boundary is not tracked).
    - Future memory is not checked (the thresholds and safety buffer are meant to keep
      the batch within C); only the next iteration is guarded (``memory_guard``). When the
      running residents alone overflow, the engine evicts by the default victim rule
      (most recently admitted first). ``overflow_free`` is False.
    - With deployment caps (``max_batch``, ``max_tokens``), the batch is truncated:
      residents first, then new requests while they fit.
    - ``steady`` only in the drain phase, when nothing waits and every resident stage
      fits under the thresholds of all the segments still ahead of it.
    - The policy never reads the true lengths (``sees_output`` False).
    """

    name = "nested-wait"
    sees_output = False
    overflow_free = False
    param_help = {
        "segments": "a thresholds file (fluidopt calibrate --policy nested-wait) or a list [[end, n], ...]"
    }

    def __init__(
        self,
        segments: Thresholds | str | Path | Sequence[Sequence[int]],
        drain: bool = True,
        memory_guard: bool = True,
        advance_resident: bool = False,
        reserve: int | None = None,
    ) -> None:
        self.memory_guard = bool(memory_guard)
        self.advance_resident = bool(advance_resident)
        if reserve is None and isinstance(segments, (str, Path)):
            segments = load_thresholds(segments)
        self.reserve = admission_reserve("nested-wait", reserve, segments)
        segs = segments_from(segments)
        self.ends = np.array([s.end for s in segs], dtype=np.int64)  # b_1..b_K
        self.n = np.array([s.threshold for s in segs], dtype=np.int64)  # n_1..n_K
        self.drain = bool(drain)
        # min threshold over segments k..K, for the steady test
        self._n_ahead = np.minimum.accumulate(self.n[::-1])[::-1]

    def reset(self, workload: Workload, deployment: Deployment) -> None:
        pass

    def segment_of(self, stage: np.ndarray) -> np.ndarray:
        """0-based segment of the next iteration (stage + 1); the last one extends."""
        k = np.searchsorted(self.ends, stage + 1, side="left")
        return np.minimum(k, self.ends.size - 1)

    def entry_counts(self, state: StateView) -> np.ndarray:
        """Requests in the entry queue of every segment (waiting ones in segment 1's)."""
        res = np.asarray(state.resident, dtype=np.int64)
        g = state.generated[res].astype(np.int64)
        counts = np.zeros(self.ends.size, dtype=np.int64)
        counts[0] = len(state.waiting) + int((g == 0).sum())
        at_boundary = np.searchsorted(self.ends, g)  # position of g among b_1..b_K
        hit = (at_boundary < self.ends.size - 1) & (self.ends[np.minimum(at_boundary, self.ends.size - 1)] == g)
        np.add.at(counts, at_boundary[hit] + 1, 1)
        return counts

    def active_segments(self, state: StateView) -> int:
        """How many leading segments are active (0: idle)."""
        if self.drain and not np.isfinite(state.next_arrival):
            return int(self.ends.size)
        short = np.flatnonzero(self.entry_counts(state) < self.n)
        return int(short[0]) if short.size else int(self.ends.size)

    def decide(self, state: StateView) -> Decision:
        res = np.asarray(state.resident, dtype=np.int64)
        wait = np.asarray(state.waiting, dtype=np.int64)
        # residents first (admission order, as the engine lists them), then the waiting
        # queue (arrival order)
        cand = np.concatenate([res, wait])
        stage = np.concatenate([state.generated[res].astype(np.int64), np.zeros(wait.size, dtype=np.int64)])
        seg = self.segment_of(stage)
        if self.advance_resident:
            k = int(self.ends.size)
            drain = self.drain and not np.isfinite(state.next_arrival)
            admit = drain or len(wait) + int((stage[: res.size] == 0).sum()) >= self.n[0]
            act = np.ones(cand.size, dtype=bool)
            act[res.size :] = admit
        else:
            k = self.active_segments(state)
            if k == 0:
                return Decision(run=_EMPTY)
            act = seg < k
        cand, stage, seg = cand[act], stage[act], seg[act]
        keep = first_per_group(stage, self.n[seg])
        run = cand[keep]
        n_res = int((keep[: int(act[: res.size].sum())]).sum())  # residents come first in cand
        if self.memory_guard and run.size > n_res:
            run = np.concatenate([run[:n_res], fit_new(state, run[:n_res], run[n_res:], self.reserve)])
        if run.size == 0:
            return Decision(run=_EMPTY)
        run = cap_batch(run, n_res, state)
        steady = False
        if k == self.ends.size and wait.size == 0 and run.size == res.size and res.size:
            counts = np.bincount(stage)
            occupied = np.flatnonzero(counts)
            steady = bool(np.all(counts[occupied] <= self._n_ahead[self.segment_of(occupied)]))
        return Decision(run=run, steady=steady)

    def params(self) -> dict[str, Any]:
        return {
            "segments": [[int(b), int(n)] for b, n in zip(self.ends, self.n)],
            "drain": self.drain,
            "memory_guard": self.memory_guard,
            "advance_resident": self.advance_resident,
            "reserve": self.reserve,
        }
