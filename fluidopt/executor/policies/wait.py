"""WAIT ([WAIT] arXiv 2504.11320, Algorithm 1): per-type thresholds, lengths known.

Every request belongs to a type j with an integer threshold n_j ≥ 1. Requests of a type
move through stages together: stage 0 is the waiting queue and a resident that has
generated g tokens is at stage g. At each decision (the server is free: one iteration
is one batch here), type j is **eligible** when at least n_j of its requests are
waiting. The batch takes, from every eligible type, n_j new requests and up to n_j
residents of each resident stage; residents of the other types pause with their KV.
If no type is eligible the server idles until an arrival. The thresholds come from
calibration (``fluid-and-wait.md`` §3, §5) through a thresholds file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fluidopt.errors import InputError
from fluidopt.executor.policies.mcsf import fit_caps
from fluidopt.executor.policy import Decision, Policy, StateView, register
from fluidopt.threshold_file import Thresholds, load_thresholds

if TYPE_CHECKING:
    from fluidopt.deployment import Deployment
    from fluidopt.workload import Workload

_EMPTY = np.empty(0, dtype=np.int64)
_cnz = np.count_nonzero


def first_per_group(groups: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Mask keeping, within each group, the first ``limit[group]`` entries (input order).

    Parameters
    ----------
    groups
        Non-negative group key of every entry.
    limit
        Per-entry cap (the cap of the entry's group), ≥ 0.
    """
    n = groups.shape[0]
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = groups.argsort(kind="stable")
    g = groups[order]
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(g[1:], g[:-1], out=new_group[1:])
    # position within the group = index − index of the group's first entry
    first = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    keep = np.empty(n, dtype=bool)
    keep[order] = np.arange(n) - first < limit[order]
    return keep


def fit_new(state: StateView, run_res: np.ndarray, new: np.ndarray, reserve: int = 0) -> np.ndarray:
    """The longest prefix of ``new`` that keeps the next iteration within C − ``reserve``.

    End-of-iteration KV = current KV (paused residents keep theirs) + the growth of the
    running residents (rest of the prompt + 1 token each) + prompt + 1 per new request.
    If the running residents alone overflow, no new request is admitted (the engine's
    victim rule then resolves the overflow). The admission reserve R (KV tokens) leaves
    room for the residents' decode growth; it is waived when nothing is resident (the
    limit is then C), so a prompt longer than C − R is not starved.
    """
    if new.size == 0:
        return new
    prompt = state.prompt
    grow = int((prompt[run_res] - state.prefilled[run_res]).sum()) + run_res.size if run_res.size else 0
    idle = run_res.size == 0 and int(state.kv_used) == 0
    room = int(state.capacity) - (0 if idle else int(reserve)) - int(state.kv_used) - grow
    k = 0
    for s in prompt[new].tolist():  # a few requests (n_j per eligible type)
        room -= s + 1
        if room < 0:
            break
        k += 1
    return new[:k]


def admission_reserve(policy: str, reserve: int | None, thresholds: object) -> int:
    """The admission reserve R (KV tokens): ``reserve`` if given, else the thresholds
    file's (0 for thresholds given as a mapping or a list)."""
    if reserve is None:
        reserve = thresholds.reserve if isinstance(thresholds, Thresholds) else 0
    if isinstance(reserve, bool) or int(reserve) != reserve or reserve < 0:
        raise InputError(f"{policy}: reserve must be an integer number of KV tokens ≥ 0 (got {reserve!r})")
    return int(reserve)


def cap_batch(run: np.ndarray, n_res: int, state: StateView) -> np.ndarray:
    """Truncate ``run`` (``n_res`` residents first, then new requests) to the deployment's caps.

    Residents beyond ``max_batch`` are dropped (they pause); new requests are kept while
    they fit both ``max_batch`` and ``max_tokens`` (:func:`~fluidopt.executor.policies.mcsf.fit_caps`).
    """
    dep = state.deployment
    if dep is None or (getattr(dep, "max_batch", None) is None and getattr(dep, "max_tokens", None) is None):
        return run
    res = run[:n_res]
    if dep.max_batch is not None and res.size > dep.max_batch:
        res = res[: int(dep.max_batch)]
    new = run[n_res:]
    return np.concatenate([res, new[: fit_caps(state, res, new)]])


@register
class Wait(Policy):
    """WAIT: per-type thresholds, the rule of [WAIT] Algorithm 1.

    Parameters
    ----------
    thresholds
        A :class:`~fluidopt.threshold_file.Thresholds` (policy ``wait``), the path of a
        thresholds file, or a mapping ``{type label: n_j}`` that uses the workload's
        ``type`` column. With a file/object, types are assigned by the true lengths
        (``Thresholds.assign_types``: first type whose output range, and prompt range
        when given, contains the request).
    advance_resident
        The authors' simulator variant: resident stages of every type advance in every
        batch (up to n_j per stage), eligible or not; only admission waits for the
        threshold. Default False (the paper's rule: non-eligible types pause).
    memory_guard
        Admit only the new requests (in arrival order) that keep the next iteration
        within C (:func:`fit_new`). The paper relies on the thresholds (Σ n_j V_j ≤ C)
        and has no rule for a batch that does not fit; without the guard the engine
        evicts the newest admissions and they are re-admitted at once, an evict/readmit
        cycle. Project's choice, default True; False gives the raw rule.
    reserve
        Admission reserve R (KV tokens): with ``memory_guard``, new requests are admitted
        only while the next iteration ends at or below C − R, so the residents' decode
        growth has R tokens of room before the engine must evict (waived when nothing
        is resident). ``None`` (default): the thresholds file's ``reserve`` (0 for a
        mapping). Sized by calibration (``fluidopt.calibrate``).
    drain
        Once no arrival remains (``next_arrival`` is infinite), treat every type that
        still has requests as eligible and take min(n_j, count) per stage, so a finite
        workload finishes. The paper analyses an endless stream and has no such rule
        (project's choice; it only affects the tail after the last arrival). Default True.

    Choices the paper leaves open:

    - Within a type, new requests are taken in arrival order (FCFS), and within a
      resident stage the earliest admitted first. A stage normally never holds more than
      n_j requests; it can after an eviction.
    - Future memory is not checked: the thresholds are meant to keep Σ n_j V_j ≤ C. Only
      the next iteration is guarded (``memory_guard``); if the running residents alone
      overflow, the engine evicts by the default victim rule (most recently admitted
      first); ``overflow_free`` is False.
    - With deployment caps (``max_batch``, ``max_tokens``), the batch is truncated:
      residents first, then new requests while they fit (:func:`cap_batch`).
    - ``steady`` when the batch is exactly all residents and nothing is admitted, which
      then holds until the next arrival or completion.
    - Requests of no type are an InputError. The type's (prompt, output) in the file
      are not used by the policy, only the ranges and n_j. Lengths known: ``sees_output``.
    """

    name = "wait"
    sees_output = True
    overflow_free = False
    param_help = {"thresholds": "a thresholds file (fluidopt calibrate --policy wait) or a mapping {type label: n}"}

    def __init__(
        self,
        thresholds: Thresholds | str | Path | dict[Any, int],
        advance_resident: bool = False,
        drain: bool = True,
        memory_guard: bool = True,
        reserve: int | None = None,
    ) -> None:
        self.advance_resident = bool(advance_resident)
        self.drain = bool(drain)
        self.memory_guard = bool(memory_guard)
        self._source = ""
        self._by_label: dict[Any, int] | None = None
        self._thresholds: Thresholds | None = None
        if isinstance(thresholds, dict):
            if not thresholds:
                raise InputError("wait: the threshold mapping is empty")
            for label, n in thresholds.items():
                if int(n) != n or n < 1:
                    raise InputError(f"wait: threshold of type {label!r} must be an integer ≥ 1 (got {n!r})")
            self._by_label = {k: int(v) for k, v in thresholds.items()}
            self._source = "mapping"
        else:
            if isinstance(thresholds, (str, Path)):
                self._source = str(thresholds)
                thresholds = load_thresholds(thresholds)
            if not isinstance(thresholds, Thresholds):
                raise InputError(
                    "wait: thresholds must be a file, a Thresholds or a mapping "
                    f"(got {type(thresholds).__name__})"
                )
            if thresholds.policy != "wait":
                raise InputError(
                    f"wait needs a thresholds file for policy 'wait' (this one is for {thresholds.policy!r})",
                    source=self._source or None,
                )
            self._thresholds = thresholds
            self._source = self._source or "object"
        self.reserve = admission_reserve("wait", reserve, self._thresholds)
        self.labels: list[Any] = []
        self.n = _EMPTY  # n_j per type index
        self.kind = _EMPTY  # type index per request
        self._n_min = 1

    def reset(self, workload: Workload, deployment: Deployment) -> None:
        src = workload.source or workload.name
        if self._by_label is not None:
            if workload.type is None:
                raise InputError(
                    "wait: a threshold mapping needs the workload's 'type' column", source=src, field="type"
                )
            self.labels = list(self._by_label)
            index = {label: j for j, label in enumerate(self.labels)}
            kind = np.array([index.get(t, -1) for t in workload.type], dtype=np.int64)
            self.n = np.array([self._by_label[label] for label in self.labels], dtype=np.int64)
        else:
            assert self._thresholds is not None
            self.labels = [t.label for t in self._thresholds.types]
            kind = self._thresholds.assign_types(workload.prompt, workload.output)
            self.n = np.array([t.threshold for t in self._thresholds.types], dtype=np.int64)
        bad = np.flatnonzero(kind < 0)
        if bad.size:
            i = int(bad[0])
            what = (
                f"type {workload.type[i]!r} has no threshold"
                if self._by_label is not None
                else f"(prompt {workload.prompt[i]}, output {workload.output[i]}) matches no threshold type"
            )
            raise InputError(
                f"wait: request {workload.id[i]} {what} ({bad.size} such request(s))",
                source=src,
                row=i + 1,
                field="type" if self._by_label is not None else "output",
            )
        self.kind = kind
        self._n_min = int(self.n.min())

    def eligible(self, state: StateView, kw: np.ndarray | None = None) -> np.ndarray:
        """Per-type eligibility (bool array over type indices) in the current state.

        ``kw``: the types of the waiting requests, if already at hand.
        """
        m = self.n.shape[0]
        waiting = np.bincount(self.kind[state.waiting] if kw is None else kw, minlength=m)
        ok = waiting >= self.n
        if self.drain and not np.isfinite(state.next_arrival):
            ok |= waiting > 0
            ok |= np.bincount(self.kind[state.resident], minlength=m) > 0
        return ok

    def decide(self, state: StateView) -> Decision:
        res = np.asarray(state.resident, dtype=np.int64)  # in admission order (contract)
        wait = np.asarray(state.waiting, dtype=np.int64)  # in (arrival, id) order
        if self.n.size == 1:
            # one type: eligibility is the queue length, no per-type counts
            n0 = self._n_min
            ok_all = wait.size >= n0 or (
                self.drain and not math.isfinite(state.next_arrival) and (wait.size > 0 or res.size > 0)
            )
            new = wait[:n0] if ok_all and wait.size else _EMPTY
        else:
            kw = self.kind[wait]
            ok = self.eligible(state, kw)
            ok_all = bool(ok.all())
            # new requests: the first n_j waiting of every eligible type (FCFS within a type)
            take = ok.nonzero()[0]
            if take.size == 0 or wait.size == 0:
                new = _EMPTY
            else:
                new = np.concatenate([wait[kw == j][: self.n[j]] for j in take])
                if take.size > 1:
                    new.sort()  # positions in arrival order across types: any fixed order would do
        # residents: up to n_j per (type, stage), earliest admitted first
        if self.advance_resident or ok_all:
            ra = res
        else:
            ra = res[ok[self.kind[res]]] if self.n.size > 1 else _EMPTY
        k = self._n_min
        if ra.size > k:  # otherwise no (type, stage) group can exceed its n_j
            stage = state.generated[ra]
            if self.n.size == 1:
                group = stage
            else:
                ka = self.kind[ra]
                group = ka * (int(stage.max()) + 1) + stage
            gs = np.sort(group)
            if _cnz(gs[k:] == gs[:-k]):  # some group has more than min_j n_j members
                ra = ra[first_per_group(group, self.n[self.kind[ra]])]
        # every type eligible and its first n_j queued requests did not fit: arrivals
        # (behind them) change nothing
        through = ok_all and new.size > 0
        if self.memory_guard:
            new = fit_new(state, ra, new, self.reserve)
        if ra.size == 0 and new.size == 0:
            return Decision(run=_EMPTY)  # idle until an arrival makes a type eligible
        run = cap_batch(np.concatenate((ra, new)) if new.size else ra, ra.size, state)
        steady = bool(new.size == 0 and ra.size == res.size and run.size == res.size)
        return Decision(run=run, steady=steady, through_arrivals=through)

    def params(self) -> dict[str, Any]:
        return {
            "thresholds": self._source,
            "n": {str(label): int(n) for label, n in zip(self.labels, self.n)},
            "advance_resident": self.advance_resident,
            "drain": self.drain,
            "memory_guard": self.memory_guard,
            "reserve": self.reserve,
        }
