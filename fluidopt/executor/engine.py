"""The executor engine: iteration loop and exact KV-cache accounting.

The engine runs a :class:`~fluidopt.executor.policy.Policy` on a
:class:`~fluidopt.workload.Workload` and a :class:`~fluidopt.deployment.Deployment` and
records what happens to every request. It is the ground truth every bound is checked
against, so it implements the one convention of ``system-model.md`` exactly:

- A run member processes prompt tokens (its ``chunk``, default the whole remaining
  prompt); a member whose prompt is complete after this iteration emits one output token.
- End-of-iteration footprint of a resident = prefilled + generated (tokens). The sum
  over all residents (paused ones keep theirs) must be ≤ C; a completing request's
  memory counts in its last iteration and is freed afterwards.
- Over C: a policy with ``overflow_free`` raises :class:`~fluidopt.errors.PolicyError`;
  otherwise residents are evicted in ``policy.victims`` order until the sum fits (evicted
  run members drop out of the iteration). Eviction loses the KV and the generated tokens
  (``wasted_tokens``), resets the prompt progress, and sends the request back to the
  waiting queue with its original arrival.
- Caps: ``deployment.max_batch`` (run size) and ``deployment.max_tokens`` (new tokens:
  prefill tokens plus one per decoding member) are enforced after evictions; a policy
  exceeding them raises PolicyError.
- Iteration time τ = ``deployment.time`` at (B, ΣKV of the run members' end-of-iteration
  footprints, N_new, Σ chunk²); the clock advances by τ and completions/first tokens are
  stamped at the new clock.
- Unit-time model: τ = 1, decision epochs are integers, a request with arrival a is
  available from epoch ⌈a⌉; a request started at t emits token j at t + j.

Choices the spec leaves open:

- An empty ``run`` idles until ``decision.wake_at`` (must be later than the clock) or the
  next arrival, whichever is earlier. With no future arrival and no ``wake_at`` the run
  stops and the remaining requests are reported unfinished (``stop_reason="stalled"``).
  A policy that idles with ``wake_at`` more than 10,000 times in a row after the last
  arrival stops the run (``"no-progress"``); 10,000 consecutive decisions whose whole
  batch is evicted raise PolicyError (an evict/readmit loop).
- A request listed both in ``evict`` and in ``run`` is a PolicyError. ``chunk`` entries of
  decoding members are ignored; for prefilling members they must be 1…remaining prompt.
- When nothing is waiting or resident, the engine jumps to the next arrival without
  calling the policy (a policy could only return an empty batch).
- ``Decision.steady`` is honoured only when nothing is admitted or evicted and either
  ``chunk`` is given (the stretch ends before any prompt's last chunk; with
  ``Decision.last_chunk`` that chunk, capped at the remaining prompt, then runs without
  a new decision if nothing else ended the stretch and nothing arrived) or ``run`` is
  exactly the resident set with every prompt finished; otherwise the decision is
  applied for one iteration as usual. With ``through_arrivals`` the stretch runs past
  arrivals, which count in the queue integrals from the next iteration on and are
  registered when it ends.
- Run-level integrals (``kv_integral``, ``waiting_integral``, ``in_system_integral``)
  weight each iteration's end-of-iteration KV / queue sizes (after admission) by its
  duration; idle stretches add their queue sizes and no KV.

The deployment's engine settings (``docs/engine-settings.md``) change these mechanics:
``block_size`` > 1 allocates KV in blocks with the prompt reserved (each resident's
holding is kept in ``held`` and the capacity test is on the holdings; no stretches are
run), ``preemption="recompute"`` keeps an evicted request's generated tokens as prompt
(the engine's ``prompt``/``output`` arrays are then the effective ones, the records keep
the workload's), ``victim`` replaces the policy's victim order, ``token_budget="padded"``
counts ``max_tokens`` padded. The defaults are the convention above.

``iteration_time="profile"`` times iterations from operator profiles (also iteration by
iteration).

Parts the loop composes, each in its own module and testable alone: the time model
(:class:`~fluidopt.executor.timing.IterationTime`, or
:class:`~fluidopt.executor.timing.ProfileTime`), the batch limits
(:class:`~fluidopt.executor.limits.BatchLimits`), the KV allocator
(:class:`~fluidopt.executor.kv.TokenKV`, :class:`~fluidopt.executor.kv.BlockKV`) and
preemption (:class:`~fluidopt.executor.preemption.Preemption`).

Performance: the waiting queue is a buffer with a moving head (FCFS admission pops in
O(k)), residents a small array in admission order; per iteration the work is a fixed
number of numpy operations on the batch (the few members still prefilling are handled
apart from the decoding ones), and read-only views handed to the policy are rebuilt only
when the sets change. ``Decision.steady`` stretches, decode-only or chunked prefill, run
in one step (see :meth:`_Engine._fast_forward`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from fluidopt.errors import InputError, PolicyError
from fluidopt.executor.kv import BlockKV, TokenKV
from fluidopt.executor.limits import BatchLimits
from fluidopt.executor.metrics import RECORD_COLUMNS, RunResult
from fluidopt.executor.policy import Policy, StateView, make_policy
from fluidopt.executor.preemption import Preemption, victim_order
from fluidopt.executor.timing import IterationTime, ProfileTime

__all__ = ["simulate", "RunResult"]

_FUTURE, _WAITING, _RESIDENT, _DONE = 0, 1, 2, 3

try:  # the C function behind np.count_nonzero, without its Python wrapper (hot loop)
    from numpy._core.multiarray import count_nonzero as _cnz
except ImportError:  # pragma: no cover - other numpy layouts
    _cnz = np.count_nonzero
_sum = np.add.reduce  # ndarray.sum / .min without their Python wrappers (hot loop)
_min = np.minimum.reduce
_NO_PROGRESS_LIMIT = 10_000
_NO_LIMIT = 1 << 62  # "no bound" for stretch lengths (iterations)
_EMPTY = np.empty(0, dtype=np.int64)


def _ro(arr: np.ndarray) -> np.ndarray:
    """A read-only view of ``arr`` (writes through it raise)."""
    v = arr.view()
    v.flags.writeable = False
    return v


class _WaitingQueue:
    """Waiting requests ordered by rank (= position in (arrival, id) order).

    A buffer with a moving head: FCFS admissions pop from the head in O(k), arrivals
    append at the tail (they rank after everything already arrived), other removals and
    the re-insertion of evicted requests cost O(|waiting|) numpy work.
    """

    def __init__(self, n: int, rank: np.ndarray) -> None:
        self.buf = np.empty(max(n, 1), dtype=np.int64)
        self.buf_ro = _ro(self.buf)  # slices of it are read-only views for the policy
        self.lo = 0
        self.hi = 0
        self.rank = rank
        self.version = 0  # bumped on every change (the engine caches its read-only view)

    def __len__(self) -> int:
        return self.hi - self.lo

    def array(self) -> np.ndarray:
        return self.buf[self.lo : self.hi]

    def _compact(self) -> None:
        k = self.hi - self.lo
        self.buf[:k] = self.buf[self.lo : self.hi]
        self.lo, self.hi = 0, k

    def extend(self, idx: np.ndarray) -> None:
        k = idx.shape[0]
        if self.hi + k > self.buf.shape[0]:
            self._compact()
        self.buf[self.hi : self.hi + k] = idx
        self.hi += k
        self.version += 1

    def remove_admitted(self, k: int, status: np.ndarray) -> None:
        """Drop the ``k`` requests whose status just left WAITING."""
        self.version += 1
        if k == 1:  # the usual single admission: scalar test of the head
            if status[self.buf[self.lo]] != _WAITING:
                self.lo += 1
                return
        elif not _cnz(status[self.buf[self.lo : self.lo + k]] == _WAITING):
            self.lo += k
            return
        seg = self.buf[self.lo : self.hi]
        keep = seg[status[seg] == _WAITING]
        self.buf[self.lo : self.lo + keep.shape[0]] = keep
        self.hi = self.lo + keep.shape[0]

    def insert(self, idx: np.ndarray) -> None:
        self.version += 1
        merged = np.concatenate([self.buf[self.lo : self.hi], idx])
        merged = merged[np.argsort(self.rank[merged], kind="stable")]
        self.lo, self.hi = 0, merged.shape[0]
        self.buf[: self.hi] = merged


class _RichProgress:
    """A rich progress bar on stderr (requests finished of total)."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("simulate"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task("simulate", total=total)
        self._progress.start()

    def __call__(self, done: int, total: int, clock: float) -> None:
        self._progress.update(self._task, completed=done)

    def close(self) -> None:
        self._progress.stop()


def simulate(
    workload: Any,
    deployment: Any,
    policy: Policy | str,
    *,
    capacity: int | None = None,
    event_log: bool = False,
    progress: bool | Callable[[int, int, float], None] = False,
    max_iterations: int | None = None,
) -> RunResult:
    """Run ``policy`` on ``workload`` served by ``deployment``.

    Parameters
    ----------
    workload
        The requests (:class:`~fluidopt.workload.Workload`); arrival in s (rounds for
        the unit model), lengths in tokens.
    deployment
        KV capacity and iteration-time model (:class:`~fluidopt.deployment.Deployment`).
    policy
        A policy instance or a registry name (instantiated with default parameters).
    capacity
        KV capacity C in tokens, overriding the deployment's (required for ``unit``).
    event_log
        Record a per-iteration event log (``RunResult.events``).
    progress
        ``True`` for a rich progress bar on stderr, or a callable
        ``progress(finished, total, clock)`` called every few thousand decisions.
    max_iterations
        Stop after this many iterations; remaining requests are reported unfinished.

    Returns
    -------
    RunResult
        Per-request records, optional events, and run-level integrals.

    Raises
    ------
    InputError
        No capacity, or a request whose peak footprint s_i + o_i exceeds C (naming the row).
    PolicyError
        The policy broke the contract (invalid decision, cap exceeded, or an eviction
        needed by a policy that declared ``overflow_free``).
    """
    if isinstance(policy, str):
        policy = make_policy(policy)
    if capacity is not None:
        if int(capacity) != capacity or capacity < 1:
            raise InputError(f"capacity must be a positive integer (got {capacity!r})")
        deployment = deployment.with_capacity(int(capacity))
    cap = int(deployment.require_capacity())
    # with blocks, a request's peak s + o must fit in whole blocks
    workload.check_capacity(cap // deployment.block_size * deployment.block_size)
    if max_iterations is not None and max_iterations < 0:
        raise InputError(f"max_iterations must be ≥ 0 (got {max_iterations})")
    bar: _RichProgress | None = None
    callback: Callable[[int, int, float], None] | None
    if progress is True:
        bar = _RichProgress(len(workload))
        callback = bar
    elif callable(progress):
        callback = progress
    else:
        callback = None
    try:
        return _Engine(workload, deployment, policy, cap, event_log, callback, max_iterations).run()
    finally:
        if bar is not None:
            bar.close()


class _Engine:
    """One run. State arrays are indexed by request position in the workload."""

    def __init__(
        self,
        workload: Any,
        deployment: Any,
        policy: Policy,
        capacity: int,
        event_log: bool,
        progress: Callable[[int, int, float], None] | None,
        max_iterations: int | None,
    ) -> None:
        self.w = workload
        self.dep = deployment
        self.policy = policy
        self.C = capacity
        self.event_log = event_log
        self.progress = progress
        self.max_iterations = max_iterations
        n = len(workload)
        self.n = n
        self.arrival = np.asarray(workload.arrival, dtype=np.float64)
        # effective prompt / output: under recompute preemption an evicted request keeps its
        # generated tokens as prompt (the records keep the workload's own)
        self.recompute = deployment.preemption == "recompute"
        self.prompt = np.asarray(workload.prompt, dtype=np.int64)
        self.output = np.asarray(workload.output, dtype=np.int64)
        if self.recompute:
            self.prompt, self.output = self.prompt.copy(), self.output.copy()
        ids = np.asarray(workload.id, dtype=np.int64)
        self.order = np.lexsort((ids, self.arrival)).astype(np.int64)
        self.rank = np.empty(n, dtype=np.int64)
        self.rank[self.order] = np.arange(n, dtype=np.int64)
        self.arr_sorted = self.arrival[self.order]
        self.status = np.zeros(n, dtype=np.int8)
        self.generated = np.zeros(n, dtype=np.int64)
        self.prefilled = np.zeros(n, dtype=np.int64)
        self.evictions = np.zeros(n, dtype=np.int64)
        self.wasted = np.zeros(n, dtype=np.int64)
        nan = lambda: np.full(n, np.nan)  # noqa: E731
        self.admitted_at = nan()
        self.first_admitted = nan()
        self.start = nan()
        self.first_token = nan()
        self.completion = nan()
        self.stamp = np.zeros(n, dtype=np.int64)
        self.scratch = np.zeros(n, dtype=np.int64)
        self.arange = np.arange(max(n, 1), dtype=np.int64)
        self.waiting = _WaitingQueue(n, self.rank)
        self.res = _EMPTY
        self._wview_version = -1
        self._rview_src: np.ndarray | None = None
        self.next_arr = float(self.arr_sorted[0]) if n else math.inf
        self.p = 0
        self.kv = 0
        self.n_prefilling = 0  # residents whose prompt is not fully processed yet
        self.evicted_any = False
        # the parts the loop composes
        self.time = IterationTime(deployment.time)
        self.unit = self.time.unit
        self.limits = BatchLimits(deployment.max_batch, deployment.max_tokens, deployment.token_budget == "padded")
        self.capped = deployment.max_batch is not None or deployment.max_tokens is not None
        self.padded = self.limits.padded
        # block allocation: each resident's holding is kept (tokens, whole blocks)
        self.blocks = deployment.block_size > 1
        self.memory = BlockKV(capacity, deployment.block_size) if self.blocks else TokenKV(capacity)
        self.held = np.zeros(n, dtype=np.int64) if self.blocks else None
        self.preemption = Preemption(
            self.prompt,
            self.output,
            self.prefilled,
            self.generated,
            self.wasted,
            self.evictions,
            self.admitted_at,
            self.status,
            held=self.held,
            recompute=self.recompute,
        )
        self.victim_rule = deployment.victim
        # the profile-based time model needs the batch's composition: iteration by iteration
        self.profile = ProfileTime(deployment.profile_time) if deployment.iteration_time == "profile" else None
        o = deployment.cpu_overhead
        self.overhead = (o["c0"], o["c_seq"]) if o is not None and o["included"] else (0.0, 0.0)
        self.detailed = self.blocks or self.profile is not None
        # run-level integrals
        self.peak = 0
        self.kv_int = 0.0
        self.wait_int = 0.0
        self.sys_int = 0.0
        self.busy = 0.0
        self.iters = 0
        self.iter_evictions = 0
        self.events: dict[str, list[Any]] | None = (
            {k: [] for k in ("time", "duration", "batch", "kv", "new_tokens", "emitted", "evictions", "waiting")}
            if event_log
            else None
        )
        v = StateView()
        v.clock = 0.0
        v.iteration = 0
        v.capacity = capacity
        v.kv_used = 0
        v.waiting = _ro(_EMPTY)
        v.resident = _ro(_EMPTY)
        v.next_arrival = math.inf
        v.arrival = _ro(self.arrival)
        v.prompt = _ro(self.prompt)
        v.id = _ro(ids)
        for key in ("pred_lo", "pred_hi", "pred", "type"):
            col = getattr(workload, key, None)
            setattr(v, key, None if col is None else _ro(np.asarray(col)))
        v.output = _ro(self.output) if policy.sees_output else None
        v.generated = _ro(self.generated)
        v.prefilled = _ro(self.prefilled)
        v.admitted_at = _ro(self.admitted_at)
        v.evictions = _ro(self.evictions)
        v.deployment = deployment
        self.view = v

    # ------------------------------------------------------------------ helpers
    def _refresh_view(self, clock: float) -> None:
        v = self.view
        v.clock = clock
        v.iteration = self.iters
        v.kv_used = self.kv
        w = self.waiting
        if w.version != self._wview_version:
            v.waiting = w.buf_ro[w.lo : w.hi]
            self._wview_version = w.version
        if self.res is not self._rview_src:
            v.resident = _ro(self.res)
            self._rview_src = self.res
        v.next_arrival = self.next_arr

    def _evict(self, idx: np.ndarray) -> None:
        """Evict residents ``idx``: lose KV and generated tokens, back to waiting."""
        if idx.shape[0] == 0:
            return
        self.evicted_any = True
        freed, n_prefilling = self.preemption.evict(idx)
        self.n_prefilling -= n_prefilling
        self.kv -= freed
        self.res = self.res[self.status[self.res] == _RESIDENT]
        self.waiting.insert(idx)
        self.iter_evictions += int(idx.shape[0])

    def _check_unique(self, arr: np.ndarray, what: str) -> None:
        k = arr.shape[0]
        ar = self.arange[:k]
        self.stamp[arr] = ar
        if _cnz(self.stamp[arr] != ar):
            raise PolicyError(f"{self.policy.name}: duplicate request in decision.{what}")

    def _admitted_tail(self, run: np.ndarray) -> np.ndarray | None:
        """The requests ``run`` admits if it has the usual form — every resident in
        admission order, then waiting requests — else None (the general checks decide)."""
        n_res = self.res.shape[0]
        if run.shape[0] <= n_res or (n_res and _cnz(run[:n_res] != self.res)):
            return None
        tail = run[n_res:]
        if tail.shape[0] == 1:  # the usual single admission: a scalar test
            return tail if self.status[tail[0]] == _WAITING else None
        if _cnz(self.status[tail] != _WAITING):
            return None
        self._check_unique(tail, "run")
        return tail

    def _as_index(self, arr: Any, what: str) -> np.ndarray:
        a = np.asarray(arr)
        if a.ndim != 1:
            raise PolicyError(f"{self.policy.name}: decision.{what} must be a 1-D array of request indices")
        if a.dtype != np.int64:
            if a.size and not np.issubdtype(a.dtype, np.integer):
                raise PolicyError(f"{self.policy.name}: decision.{what} must hold integer request indices")
            a = a.astype(np.int64)
        # one comparison for both bounds: a negative index is huge as uint64
        if a.shape[0] and _cnz(a.view(np.uint64) >= self.n):
            raise PolicyError(f"{self.policy.name}: decision.{what} holds an index outside the workload")
        return a

    # ------------------------------------------------------------------ main loop
    def run(self) -> RunResult:
        policy = self.policy
        policy.reset(self.w, self.dep)
        n = self.n
        status = self.status
        arr_sorted = self.arr_sorted
        order = self.order
        waiting = self.waiting
        view = self.view
        clock = 0.0
        p = 0  # requests order[:p] have arrived (been registered)
        self.n_done = 0
        stop_reason = "completed"
        no_progress = 0
        steps = 0
        # (run, chunk) of a steady chunked stretch whose promise covers the prompt's last
        # chunk (``Decision.last_chunk``): run next without asking the policy
        last: tuple[np.ndarray, Any] | None = None
        start_time = float(arr_sorted[0]) if n else 0.0
        if self.unit:
            start_time = float(math.ceil(start_time))
        while self.n_done < n:
            # register arrivals up to the clock
            if self.next_arr <= clock:
                q = int(arr_sorted.searchsorted(clock, side="right"))  # the method: no Python wrapper
                new = order[p:q]
                status[new] = _WAITING
                waiting.extend(new)
                p = q
                self.p = p
                self.next_arr = float(arr_sorted[p]) if p < n else math.inf
            if waiting.hi == waiting.lo and self.res.shape[0] == 0:
                # nothing to decide: jump to the next arrival
                nxt = self.next_arr
                clock = float(math.ceil(nxt)) if self.unit else max(clock, nxt)
                continue
            if self.max_iterations is not None and self.iters >= self.max_iterations:
                stop_reason = "max_iterations"
                break
            if last is not None:
                # the iteration the policy would decide now: the same run, chunks capped
                # at the remaining prompts (the arrivals just registered change nothing)
                run, ch = last
                last = None
                ch = np.minimum(ch, self.prompt[run] - self.prefilled[run])
                view.clock = clock  # as if decided now (an overflow's victims() sees it)
                self.iter_evictions = 0
                if self._iteration(run, ch, clock):
                    clock = self.clock_after
                    no_progress = 0
                    continue
                no_progress += 1
                if no_progress > _NO_PROGRESS_LIMIT:
                    raise PolicyError(
                        f"{policy.name}: no iteration ran in {_NO_PROGRESS_LIMIT} consecutive decisions "
                        "(every batch was evicted)"
                    )
                continue
            steps += 1
            if self.progress is not None and steps % 2048 == 0:
                self.progress(self.n_done, n, clock)
            self._refresh_view(clock)
            dec = policy.decide(view)
            self.iter_evictions = 0
            evict = dec.evict
            if evict is not None and len(evict):
                ev = self._as_index(evict, "evict")
                self._check_unique(ev, "evict")
                if _cnz(status[ev] != _RESIDENT):
                    raise PolicyError(f"{policy.name}: decision.evict lists a request that is not resident")
                self._evict(ev)
            else:
                ev = _EMPTY
            run_obj = dec.run
            if run_obj is view.resident and not ev.shape[0]:
                # the resident set handed to the policy: valid, unique, nothing to admit
                run = self.res
                n_admit = 0
            else:
                run = self._as_index(run_obj, "run")
                adm = None if ev.shape[0] else self._admitted_tail(run)
                if adm is not None:
                    n_admit = adm.shape[0]
                elif run.shape[0]:
                    if ev.shape[0] and _cnz(np.isin(run, ev)):
                        raise PolicyError(f"{policy.name}: a request is both evicted and run in one decision")
                    self._check_unique(run, "run")
                    st = status[run]
                    is_wait = st == _WAITING
                    n_admit = int(_cnz(is_wait))
                    if n_admit + _cnz(st == _RESIDENT) != run.shape[0]:
                        raise PolicyError(
                            f"{policy.name}: decision.run lists a request that is neither waiting nor resident"
                        )
                    adm = run[is_wait] if n_admit else _EMPTY
            if run.shape[0] == 0:
                # idle
                targets = []
                if p < n:
                    targets.append(self.next_arr)
                if dec.wake_at is not None:
                    if not dec.wake_at > clock:
                        raise PolicyError(f"{policy.name}: wake_at {dec.wake_at} is not later than the clock {clock}")
                    targets.append(float(dec.wake_at))
                if not targets:
                    stop_reason = "stalled"
                    break
                t = min(targets)
                if self.unit:
                    t = float(math.ceil(t))
                    if t <= clock:
                        t = clock + 1.0
                dt = t - clock
                self.wait_int += dt * len(waiting)
                self.sys_int += dt * (len(waiting) + self.res.shape[0])
                clock = t
                if p >= n:
                    no_progress += 1
                    if no_progress > _NO_PROGRESS_LIMIT:
                        stop_reason = "no-progress"
                        break
                continue
            if (
                dec.steady
                and n_admit == 0
                and ev.shape[0] == 0
                and (dec.chunk is not None or (run.shape[0] == self.res.shape[0] and not self.n_prefilling))
            ):
                if self._fast_forward(run, dec.chunk, clock, dec.through_arrivals):
                    clock = self.clock_after
                    no_progress = 0
                    if dec.last_chunk and self.ff_at_last_chunk:
                        last = (run, dec.chunk)
                    continue
            if n_admit:
                status[adm] = _RESIDENT
                self.admitted_at[adm] = clock
                self._stamp_first(self.first_admitted, adm, clock)
                waiting.remove_admitted(n_admit, status)
                self.n_prefilling += n_admit  # prompts are ≥ 1 token
                self.res = np.concatenate((self.res, adm))
            ran = self._iteration(run, dec.chunk, clock)
            if ran:
                clock = self.clock_after
                no_progress = 0
            else:
                no_progress += 1
                if no_progress > _NO_PROGRESS_LIMIT:
                    raise PolicyError(
                        f"{policy.name}: no iteration ran in {_NO_PROGRESS_LIMIT} consecutive decisions "
                        "(every batch was evicted)"
                    )
        if self.progress is not None:
            self.progress(self.n_done, n, clock)
        if stop_reason == "completed" and self.n_done < n:
            stop_reason = "stalled"
        self.decisions = steps
        return self._result(clock, start_time, stop_reason)

    def _iteration(self, run: np.ndarray, chunk: Any, clock: float) -> bool:
        """Apply one iteration of ``run`` (every member resident) with prefill ``chunk``
        (``None``: whole remaining prompts); returns False if every member was evicted.

        The common case — no overflow — is accounted from the few members still
        prefilling alone: a decoding member always adds one token, and when ``run``
        holds every resident its footprints before the iteration sum to ``kv``. An
        overflow goes through :meth:`_iteration_general` (victims, then the same
        accounting on the members left).
        """
        B = run.shape[0]
        if self.n_prefilling:
            pre = self.prefilled[run]
            rem = self.prompt[run] - pre
            pf = rem.nonzero()[0]  # positions of the members still prefilling (a few)
            n_pf = pf.shape[0]
        else:
            pre = rem = None
            n_pf = 0
        if chunk is not None:
            ch_all = np.asarray(chunk)
            if ch_all.shape != run.shape:
                raise PolicyError(f"{self.policy.name}: decision.chunk must align with decision.run")
        tot_ch = csq = n_fin = 0
        if n_pf:
            rem_pf = rem[pf]
            ch_pf = rem_pf if chunk is None else ch_all[pf].astype(np.int64, copy=False)
            ch_l = ch_pf.tolist()
            rem_l = rem_pf.tolist()
            # the members still prefilling are a few: plain Python on their chunks
            for c, r in zip(ch_l, rem_l):
                if c > r or c < 1:
                    raise PolicyError(f"{self.policy.name}: a prefill chunk is outside 1..remaining prompt")
                tot_ch += c
                csq += c * c
                n_fin += c == r  # finishes its prompt: emits token 1
        n_emit = B - n_pf + n_fin
        kv_end = self.kv + tot_ch + n_emit
        gen = self.generated[run]
        if kv_end > self.C or self.detailed:
            if pre is None:
                pre = self.prefilled[run]
                rem = self.prompt[run] - pre
            ch = np.zeros(B, dtype=np.int64)
            emit = np.ones(B, dtype=bool)
            if n_pf:
                ch[pf] = ch_pf
                emit[pf] = ch_pf == rem_pf
            return self._iteration_general(run, ch, pre, gen, rem, emit, clock)
        n_new = tot_ch + B - n_pf
        if self.capped:
            self.limits.check(self.policy.name, B, n_new, n_pf, max(ch_l) if n_pf and self.padded else 0)
        # footprints before the iteration: all of kv when every resident runs
        if B == self.res.shape[0]:
            kv_run = self.kv + tot_ch + n_emit
        else:
            pre_sum = int(_sum(pre if pre is not None else self.prefilled[run]))
            kv_run = pre_sum + int(_sum(gen)) + tot_ch + n_emit
        tau = self.time.tau(B, kv_run, n_new, csq)
        new_gen = gen + 1
        finished_prompt: list[int] = []
        if n_pf:
            # scalar updates: cheaper than fancy indexing for the few members prefilling
            prefilled = self.prefilled
            for p, i, c, r in zip(pf.tolist(), run[pf].tolist(), ch_l, rem_l):
                prefilled[i] += c
                if c == r:
                    finished_prompt.append(i)
                else:
                    new_gen[p] = 0  # still prefilling: has generated nothing
            self.n_prefilling -= n_fin
        self.generated[run] = new_gen
        clock = self._account(tau, kv_end, B, n_new, n_emit, clock)
        if n_fin:
            self._stamp_first(self.first_token, np.array(finished_prompt, dtype=np.int64), clock)
        fin = new_gen == self.output[run]
        if _cnz(fin):
            self._complete(run[fin], clock)
        self.clock_after = clock
        return True

    def _stamp_first(self, col: np.ndarray, idx: np.ndarray, clock: float) -> None:
        """Stamp ``clock`` as the first admission / first token of ``idx`` where it is the
        first ever: an earlier run's (before an eviction) is kept."""
        if self.evicted_any:
            col[idx] = np.fmin(col[idx], clock)  # fmin ignores the NaN of a first time
        else:
            col[idx] = clock  # no eviction yet: every run is a request's first

    def _iteration_general(
        self,
        run: np.ndarray,
        ch: np.ndarray,
        pre: np.ndarray,
        gen: np.ndarray,
        rem: np.ndarray,
        emit: np.ndarray,
        clock: float,
    ) -> bool:
        """Apply one iteration: ``ch`` prompt tokens per member (``rem`` = prompt tokens
        still to process before it), ``emit`` whether it emits a token; evicts on
        overflow; returns False if every member was evicted."""
        new_pre = pre + ch
        new_gen = gen + emit
        tot_ch = int(ch.sum())
        n_emit = int(_cnz(emit))
        if self.blocks:
            # holdings at the end of the iteration: whole blocks, the prompt reserved
            new_held = self.memory.hold(new_pre + new_gen, self.prompt[run])
            kv_end = self.kv + int(_sum(new_held)) - int(_sum(self.held[run]))
        else:
            new_held = None
            kv_end = self.kv + tot_ch + n_emit
        if kv_end > self.C:
            run, ch, rem, new_pre, new_gen, emit, new_held, kv_end = self._overflow(
                run, ch, rem, new_pre, new_gen, emit, new_held, kv_end
            )
            if run.shape[0] == 0:
                return False
            tot_ch = int(ch.sum())
            n_emit = int(_cnz(emit))
        B = run.shape[0]
        n_new = tot_ch + B - int(_cnz(rem))
        if self.capped:
            n_pf = int(_cnz(rem))
            self.limits.check(self.policy.name, B, n_new, n_pf, int(ch.max()) if n_pf and self.padded else 0)
        kv_run = int(new_pre.sum()) + int(new_gen.sum())
        csq = int(ch @ ch) if tot_ch else 0
        if self.profile is None:
            tau = self.time.tau(B, kv_run, n_new, csq)
        else:
            tau = self._profile_tau(B, n_new, csq, ch, rem, new_pre, new_gen, emit)
        self.prefilled[run] = new_pre
        self.generated[run] = new_gen
        if new_held is not None:
            self.held[run] = new_held
        self.n_prefilling -= int(_cnz(emit & (rem > 0)))  # prompts finished
        clock = self._account(tau, kv_end, B, n_new, n_emit, clock)
        first = emit & (new_gen == 1)
        if _cnz(first):
            self._stamp_first(self.first_token, run[first], clock)
        fin = new_gen == self.output[run]
        if _cnz(fin):
            self._complete(run[fin], clock)
        self.clock_after = clock
        return True

    def _profile_tau(
        self,
        B: int,
        n_new: int,
        csq: int,
        ch: np.ndarray,
        rem: np.ndarray,
        new_pre: np.ndarray,
        new_gen: np.ndarray,
        emit: np.ndarray,
    ) -> float:
        """τ from the profile model: decoding members' cached tokens before the iteration,
        the prefilling members' (rounded each) and their chunks; plus the CPU overhead."""
        dec = rem == 0
        cached = new_pre - ch + new_gen - emit  # tokens cached before the iteration
        n_dec = int(_cnz(dec))
        dec_kv = int(_sum(cached[dec])) if n_dec else 0
        pf_kv = int(_sum(self.profile.round_kv(cached[~dec]))) if n_dec < B else 0
        tau = self.profile.tau(n_new, n_dec, dec_kv, pf_kv, csq)
        o0, o1 = self.overhead
        return tau + (o0 + o1 * B) if o0 or o1 else tau

    def _account(self, tau: float, kv_end: int, B: int, n_new: int, n_emit: int, clock: float) -> float:
        """Commit an iteration's clock, counters and integrals; returns the new clock."""
        self.kv = kv_end
        n_wait = self.waiting.hi - self.waiting.lo
        n_res = self.res.shape[0]
        self.wait_int += tau * n_wait
        self.sys_int += tau * (n_wait + n_res)
        self.kv_int += tau * kv_end
        self.busy += tau
        if kv_end > self.peak:
            self.peak = kv_end
        clock = clock + tau
        self.iters += 1
        if self.events is not None:
            e = self.events
            e["time"].append(clock)
            e["duration"].append(tau)
            e["batch"].append(B)
            e["kv"].append(kv_end)
            e["new_tokens"].append(n_new)
            e["emitted"].append(int(n_emit))
            e["evictions"].append(self.iter_evictions)
            e["waiting"].append(n_wait)
        return clock

    def _complete(self, idx: np.ndarray, clock: float) -> None:
        if idx.shape[0] == 1:
            # the usual single completion: scalar stores are much cheaper than fancy indexing
            i = int(idx[0])
            self.completion[i] = clock
            self.start[i] = self.admitted_at[i]
            self.status[i] = _DONE
            if self.blocks:
                self.kv -= int(self.held[i])
                self.held[i] = 0
            else:
                self.kv -= int(self.prompt[i]) + int(self.output[i])
            self.prefilled[i] = 0
            self.generated[i] = 0
            res = self.res
            self.res = res[res != i]
            self.n_done += 1
            return
        self.completion[idx] = clock
        self.start[idx] = self.admitted_at[idx]
        self.status[idx] = _DONE
        if self.blocks:
            self.kv -= int(_sum(self.held[idx]))
            self.held[idx] = 0
        else:
            self.kv -= int(_sum(self.prompt[idx])) + int(_sum(self.output[idx]))
        self.prefilled[idx] = 0
        self.generated[idx] = 0
        self.res = self.res[self.status[self.res] == _RESIDENT]
        self.n_done += int(idx.shape[0])

    def _overflow(
        self,
        run: np.ndarray,
        ch: np.ndarray,
        rem: np.ndarray,
        new_pre: np.ndarray,
        new_gen: np.ndarray,
        emit: np.ndarray,
        new_held: np.ndarray | None,
        kv_end: int,
    ) -> tuple[Any, ...]:
        """Evict residents in victim order until the iteration fits in C.

        The order is the policy's (``victims()``) or the deployment's ``victim`` rule. A
        policy declaring ``overflow_free`` raises here, except under block allocation,
        which its token-level planning does not see.
        """
        policy = self.policy
        if policy.overflow_free and not self.blocks:
            raise PolicyError(
                f"{policy.name} declared overflow_free but its batch would end with {kv_end} KV tokens "
                f"> capacity {self.C} at iteration {self.iters}"
            )
        res = self.res
        scratch = self.scratch
        # end-of-iteration holdings: the run's after this iteration, the paused ones' now
        if new_held is None:
            scratch[res] = self.prefilled[res] + self.generated[res]
            scratch[run] = new_pre + new_gen
        else:
            scratch[res] = self.held[res]
            scratch[run] = new_held
        if self.victim_rule == "policy":
            self._refresh_view(self.view.clock)
            cand = res.copy()
            cand.flags.writeable = False
            vict = self._as_index(policy.victims(self.view, cand), "victims")
            self._check_unique(vict, "victims")
            if vict.shape[0] and _cnz(self.status[vict] != _RESIDENT):
                raise PolicyError(f"{policy.name}: victims() returned a request that is not resident")
        else:
            vict = victim_order(self.victim_rule, res, self.rank, self.admitted_at)
        m, freed = Preemption.prefix(policy.name, vict, scratch[vict], kv_end - self.C)
        out = vict[:m]
        # the evicted residents' end-of-iteration footprints leave the sum
        kv_end -= freed
        self._evict(out)
        keep = self.status[run] == _RESIDENT
        run, ch, rem, new_pre, new_gen, emit = (a[keep] for a in (run, ch, rem, new_pre, new_gen, emit))
        return run, ch, rem, new_pre, new_gen, emit, None if new_held is None else new_held[keep], kv_end

    def _fast_forward(self, run: np.ndarray, chunk: Any, clock: float, through_arrivals: bool) -> int:
        """Run k ≥ 1 iterations of the same steady decision at once (``Decision.steady``).

        Members that finished their prompt decode one token per iteration; members still
        prefilling process their ``chunk`` entry again every iteration, so each
        iteration adds the same G = decoding members + Σ chunks tokens (and takes the
        same N_new = G new tokens). Stops at the first completion, at the first
        iteration ending at/after the next arrival (unless ``through_arrivals``: the
        arrivals then count in the queue integrals from the next iteration on and are
        registered after the stretch, as the slow path does), before the iteration
        that would finish a prompt (its chunk is then the remainder, a new decision),
        before a capacity overflow (memory only grows, so the last iteration is the one to
        check) and at ``max_iterations``. Iteration times and integrals are accumulated
        one iteration at a time with the same float operations as the slow path (a
        Python loop for short stretches, ``np.cumsum`` — sequential — for long ones),
        so the results are bit-identical. Returns k (0: use the slow path, which also
        reports an invalid decision).
        """
        self.ff_at_last_chunk = False
        if self.detailed:
            return 0  # block holdings / profile times: iteration by iteration (module docstring)
        B = run.shape[0]
        gen = self.generated[run]
        K_pf = -1
        if chunk is None:  # the caller checked: all residents, every prompt done
            dec = run
            left = self.output[run] - gen
            K = k_done = int(_min(left))  # iterations to the first completion
            gen_dec = gen
            pf = _EMPTY
            grow = n_dec = B
            csq = 0
        else:
            rem = self.prompt[run] - self.prefilled[run]
            ch = np.asarray(chunk)
            if ch.shape != run.shape:
                return 0
            pf = rem.nonzero()[0]
            ch_l = ch[pf].astype(np.int64, copy=False).tolist()
            # the members still prefilling are a few: plain Python on their chunks
            K_pf = _NO_LIMIT
            grow = B - pf.shape[0]  # decoding members: one token each
            csq = 0
            for c, r in zip(ch_l, rem[pf].tolist()):
                if c < 1 or c >= r:
                    return 0  # a prompt finishes (or the chunk is invalid): one slow iteration
                # iterations before this chunk would reach the prompt's end
                K_pf = min(K_pf, (r - 1) // c)
                grow += c
                csq += c * c
            n_dec = B - pf.shape[0]
            if n_dec:
                is_dec = rem == 0
                dec = run[is_dec]
                gen_dec = gen[is_dec]
                left = self.output[dec] - gen_dec
                k_done = int(_min(left))
                K = min(k_done, K_pf)
            else:
                dec = left = gen_dec = _EMPTY
                K = K_pf
                k_done = -1
        if self.capped and not self.limits.allows(B, grow, pf.shape[0], max(ch_l, default=0) if pf.shape[0] else 0):
            return 0
        kv0 = self.kv
        kcap = self.memory.room(kv0, grow)
        if kcap < 1:
            return 0
        if kcap < K:
            K = kcap
        if self.max_iterations is not None:
            K = min(K, self.max_iterations - self.iters)
        # the run's footprints before the stretch: all of kv when every resident runs
        kvr0 = kv0 if B == self.res.shape[0] else int(_sum(self.prefilled[run])) + int(_sum(gen))
        a_next = self.next_arr
        n_wait = self.waiting.hi - self.waiting.lo
        n_sys = n_wait + self.res.shape[0]
        stop_at = math.inf if through_arrivals else a_next
        if self.unit and stop_at < math.inf:
            K = min(K, max(1, int(math.ceil(stop_at - clock))))
        base, tail, pf2 = self.time.stretch(B, grow, csq)
        if K <= 64:
            K = self._ff_loop(B, kv0, kvr0, grow, n_dec, K, clock, stop_at, base, tail, pf2, n_wait, n_sys)
        else:
            K = self._ff_arrays(B, kv0, kvr0, grow, n_dec, K, clock, stop_at, base, tail, pf2, n_wait, n_sys)
        kv_end = kv0 + grow * K
        if kv_end > self.peak:
            self.peak = kv_end
        if n_dec:
            self.generated[dec] = gen_dec + K
        if pf.shape[0]:
            prefilled = self.prefilled
            for i, c in zip(run[pf].tolist(), ch_l):
                prefilled[i] += K * c
        self.kv = kv_end
        self.iters += K
        if K == k_done:  # the stretch ran up to the first completion
            self._complete(dec[left == K], self.clock_after)
        elif K == K_pf and self.clock_after < a_next:
            # ended only because a prompt's next chunk is its last, with no arrival (an
            # iteration limit that coincides is checked by the caller before that chunk)
            self.ff_at_last_chunk = True
        return K

    def _ff_loop(
        self,
        B: int,
        kv0: int,
        kvr0: int,
        grow: int,
        n_dec: int,
        K: int,
        t: float,
        a_next: float,
        base: float,
        tail: float,
        pf2: float,
        n_wait: int,
        n_sys: int,
    ) -> int:
        """Up to ``K`` iterations of a stretch, one by one; returns how many ran.

        ``kv0``/``kvr0``: all residents' / the run's footprints before the stretch, both
        growing by ``grow`` tokens per iteration; τ = base + c_kv·ΣKV_run + tail + pf2.
        Stops after the first iteration ending at/after ``a_next``; arrivals before
        (only with an infinite ``a_next``: a stretch through arrivals) join the queue
        counts from the next iteration on.
        """
        wait_int, sys_int, kv_int, busy = self.wait_int, self.sys_int, self.kv_int, self.busy
        ckv = self.time.c_kv
        unit = self.unit
        ev = self.events
        kv, kvr = kv0, kvr0
        arr, n, q = self.arr_sorted, self.n, self.p
        a_arr = self.next_arr  # next arrival to count in the queue
        k = 0
        while k < K:
            k += 1
            kv += grow
            kvr += grow
            tau = 1.0 if unit else base + ckv * kvr + tail + pf2
            t += tau
            wait_int += tau * n_wait
            sys_int += tau * n_sys
            kv_int += tau * kv
            busy += tau
            if ev is not None:
                ev["time"].append(t)
                ev["duration"].append(tau)
                ev["batch"].append(B)
                ev["kv"].append(kv)
                ev["new_tokens"].append(grow)
                ev["emitted"].append(n_dec)
                ev["evictions"].append(0)
                ev["waiting"].append(n_wait)
            if t >= a_next:
                break
            while t >= a_arr:  # registered at the next decision; queued from the next iteration
                n_wait += 1
                n_sys += 1
                q += 1
                a_arr = float(arr[q]) if q < n else math.inf
        self.wait_int, self.sys_int, self.kv_int, self.busy = wait_int, sys_int, kv_int, busy
        self.clock_after = t
        return k

    def _ff_arrays(
        self,
        B: int,
        kv0: int,
        kvr0: int,
        grow: int,
        n_dec: int,
        K: int,
        clock: float,
        a_next: float,
        base: float,
        tail: float,
        pf2: float,
        n_wait: int,
        n_sys: int,
    ) -> int:
        """:meth:`_ff_loop` for long stretches, in blocks of numpy operations."""
        taus_parts, times_parts = [], []
        k0, t, step = 0, clock, 256
        while k0 < K:
            m = min(K - k0, step)
            ks = np.arange(k0 + 1, k0 + m + 1, dtype=np.int64)
            tau_m = self.time.stretch_taus(base, kvr0 + grow * ks, tail, pf2)
            tm = np.cumsum(np.concatenate(([t], tau_m)))[1:]
            if tm[-1] >= a_next:
                j = int(np.searchsorted(tm, a_next, side="left"))
                taus_parts.append(tau_m[: j + 1])
                times_parts.append(tm[: j + 1])
                k0 += j + 1
                break
            taus_parts.append(tau_m)
            times_parts.append(tm)
            k0 += m
            t = float(tm[-1])
            step *= 4
        K = k0
        taus = np.concatenate(taus_parts)
        times = np.concatenate(times_parts)
        kvs = kv0 + grow * np.arange(1, K + 1, dtype=np.int64)
        waits: Any = n_wait
        systs: Any = n_sys
        if K > 1 and times[-2] >= self.next_arr:
            # a stretch through arrivals: iteration k queues those arrived by the end of k − 1
            waits = np.empty(K, dtype=np.int64)
            waits[0] = n_wait
            waits[1:] = n_wait + np.searchsorted(self.arr_sorted, times[:-1], side="right") - self.p
            systs = waits + (n_sys - n_wait)
        acc = np.empty((K + 1, 4))
        acc[0] = (self.wait_int, self.sys_int, self.kv_int, self.busy)
        acc[1:, 0] = taus * waits
        acc[1:, 1] = taus * systs
        acc[1:, 2] = taus * kvs
        acc[1:, 3] = taus
        last = np.cumsum(acc, axis=0)[-1]  # sequential per column, as the slow path adds
        self.wait_int, self.sys_int, self.kv_int, self.busy = (float(x) for x in last)
        if self.events is not None:
            e = self.events
            e["time"].extend(times.tolist())
            e["duration"].extend(taus.tolist())
            e["batch"].extend([B] * K)
            e["kv"].extend(kvs.tolist())
            e["new_tokens"].extend([grow] * K)
            e["emitted"].extend([n_dec] * K)
            e["evictions"].extend([0] * K)
            e["waiting"].extend(waits.tolist() if isinstance(waits, np.ndarray) else [n_wait] * K)
        self.clock_after = float(times[-1])
        return K

    # ------------------------------------------------------------------ result
    def _result(self, clock: float, start_time: float, stop_reason: str) -> RunResult:
        w = self.w
        finished = self.status == _DONE
        # an unfinished resident's start is the start of its current run
        start = np.where(self.status == _RESIDENT, self.admitted_at, self.start)
        records = pd.DataFrame(
            {
                "id": np.asarray(w.id, dtype=np.int64),
                "arrival": self.arrival,
                "prompt": np.asarray(w.prompt, dtype=np.int64),
                "output": np.asarray(w.output, dtype=np.int64),
                "first_admitted": self.first_admitted,
                "start": start,
                "first_token": self.first_token,
                "completion": self.completion,
                "finished": finished,
                "evictions": self.evictions,
                "wasted_tokens": self.wasted,
            },
            columns=list(RECORD_COLUMNS),
        )
        events = None
        if self.events is not None:
            events = pd.DataFrame(self.events)
            events.insert(0, "iteration", np.arange(1, len(events) + 1, dtype=np.int64))
        params = dict(self.policy.params())
        run = {
            "iterations": int(self.iters),
            "decisions": int(self.decisions),
            "start_time": start_time,
            "end_time": float(clock),
            "peak_kv": int(self.peak),
            "kv_integral": float(self.kv_int),
            "waiting_integral": float(self.wait_int),
            "in_system_integral": float(self.sys_int),
            "busy_time": float(self.busy),
            "stop_reason": stop_reason,
        }
        return RunResult(
            records=records,
            events=events,
            policy=self.policy.name,
            params=params,
            workload_name=getattr(w, "name", "workload"),
            workload_digest=w.digest(),
            workload_meta=dict(getattr(w, "meta", {}) or {}),
            deployment=self.dep.name,
            time_model="profile" if self.profile is not None else self.dep.time.kind,
            capacity=self.C,
            run=run,
        )
