"""The contract between the engine and a policy.

At every decision point the engine calls :meth:`Policy.decide` with a read-only
:class:`StateView` and gets back a :class:`Decision`: which requests run in the next
iteration (waiting ones listed there are admitted), how many prompt tokens each
prefilling one processes, and which residents to evict voluntarily. Policies never
change state; the engine applies the decision, enforces the KV capacity at the end of
the iteration (evicting by :meth:`Policy.victims` if needed) and records events.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from fluidopt.errors import InputError

if TYPE_CHECKING:
    from fluidopt.deployment import Deployment
    from fluidopt.workload import Workload

_EMPTY = np.empty(0, dtype=np.int64)


@dataclass
class Decision:
    """What to do in the next iteration.

    Attributes
    ----------
    run
        Request indices (positions in the workload) served in the iteration. A waiting
        request listed here is admitted; a resident not listed is paused (keeps its KV).
    chunk
        Prompt tokens each entry of ``run`` processes this iteration, aligned with
        ``run``; ``None`` means the whole remaining prompt for requests still
        prefilling (decoding requests always process one new token).
    evict
        Residents to evict before the iteration (they lose their KV and generated
        tokens and return to the waiting queue).
    steady
        Promise that the same decision holds until the next arrival or completion:
        run exactly the current residents and admit nothing; or, with ``chunk``, run
        the same requests (admitting nothing) with the same chunk for every member
        still prefilling, until one of those prompts has less than its chunk left.
        Lets the engine fast-forward through decode and chunked-prefill stretches.
    through_arrivals
        With ``steady``: the promise holds through arrivals too (they join the queue
        without changing the decision, e.g. an FCFS queue whose head does not fit), so
        the stretch runs on to the next completion.
    last_chunk
        With ``steady`` and ``chunk``: when the stretch ends only because a prompt's next
        chunk would be its last (no completion, no arrival, no capacity or iteration
        limit), the promise also covers that iteration, run with every chunk capped at
        its member's remaining prompt. Saves the decision a chunked-prefill policy
        would otherwise make just to finish the prompt.
    wake_at
        With an empty ``run``: idle until this time (s); default the next arrival.
    """

    run: np.ndarray = field(default_factory=lambda: _EMPTY)
    chunk: np.ndarray | None = None
    evict: np.ndarray = field(default_factory=lambda: _EMPTY)
    steady: bool = False
    through_arrivals: bool = False
    last_chunk: bool = False
    wake_at: float | None = None


class StateView:
    """Read-only view of the executor state handed to policies.

    The engine owns one instance and updates it in place; the arrays are read-only
    numpy views (writing to them raises).

    Attributes
    ----------
    clock
        Current time, s (unit-time model: the decision epoch t).
    iteration
        Iterations run so far.
    capacity
        KV capacity C, tokens.
    kv_used
        Sum of the footprints of all residents now, tokens.
    waiting
        Indices of arrived, non-resident, unfinished requests, ordered by (arrival, id).
    resident
        Indices of resident requests, in admission order.
    next_arrival
        Arrival time of the next request not yet arrived (``inf`` if none), s.
    arrival, prompt, id, pred_lo, pred_hi, pred, type
        Per-request columns of the workload (``None`` where the workload has none).
    output
        True output lengths; ``None`` unless the policy declares ``sees_output``.
    generated
        Output tokens emitted in the request's current run (0 if not resident).
    prefilled
        Prompt tokens processed in the current run.
    admitted_at
        Clock at the start of the current run (NaN if not resident), s.
    evictions
        Times each request has been evicted so far.
    deployment
        The deployment being simulated (caps, time model).
    """

    clock: float
    iteration: int
    capacity: int
    kv_used: int
    waiting: np.ndarray
    resident: np.ndarray
    next_arrival: float
    arrival: np.ndarray
    prompt: np.ndarray
    id: np.ndarray
    pred_lo: np.ndarray | None
    pred_hi: np.ndarray | None
    pred: np.ndarray | None
    type: np.ndarray | None
    output: np.ndarray | None
    generated: np.ndarray
    prefilled: np.ndarray
    admitted_at: np.ndarray
    evictions: np.ndarray
    deployment: Deployment

    def footprint(self, idx: np.ndarray) -> np.ndarray:
        """Current KV footprint (tokens) of the given requests: prefilled + generated."""
        return self.prefilled[idx] + self.generated[idx]


class Policy(ABC):
    """Base class of all scheduling policies.

    Class attributes
    ----------------
    name
        Registry name (``fluidopt simulate --policy NAME``).
    sees_output
        The policy may read true output lengths (H-SF, WAIT with known lengths, ...).
    overflow_free
        The engine raises :class:`~fluidopt.errors.PolicyError` if the policy's decision
        would need an eviction. Instances may set it in :meth:`reset` (e.g. MC-SF is
        overflow-free only when its predictions are exact).
    param_help
        How constructor parameters whose annotation is not a plain int/float/bool/str
        are named in error messages (e.g. a thresholds file).
    """

    name: ClassVar[str] = ""
    sees_output: ClassVar[bool] = False
    overflow_free: bool = False
    param_help: ClassVar[dict[str, str]] = {}

    def reset(self, workload: Workload, deployment: Deployment) -> None:
        """Prepare for a run (validate required columns, precompute orders)."""

    @abstractmethod
    def decide(self, state: StateView) -> Decision:
        """The decision for the next iteration."""

    def victims(self, state: StateView, candidates: np.ndarray) -> np.ndarray:
        """Eviction order among ``candidates`` (residents) when the batch would overflow.

        Default: most recently admitted first (ties: larger index first).
        """
        order = np.lexsort((-candidates, -state.admitted_at[candidates]))
        return candidates[order]

    def params(self) -> dict[str, Any]:
        """Parameters recorded with every run."""
        return {}


POLICIES: dict[str, type[Policy]] = {}


def register(cls: type[Policy]) -> type[Policy]:
    """Class decorator: add a policy to the registry under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no registry name")
    POLICIES[cls.name] = cls
    return cls


def make_policy(name: str, **params: Any) -> Policy:
    """Instantiate a registered policy by name.

    Raises
    ------
    InputError
        Unknown name (listing the known ones); an unknown or missing parameter, or a
        value of the wrong kind (listing the policy's parameters with their types).
    """
    from fluidopt.params import check_keywords

    cls = policy_class(name)
    check_keywords(policy_parameters(name), params, what=f"policy {name!r}")
    try:
        return cls(**params)
    except (TypeError, ValueError, InputError) as exc:
        raise InputError(f"policy {name!r}: {exc}") from None


def policy_class(name: str) -> type[Policy]:
    """The registered class of policy ``name``; InputError listing the known ones."""
    import fluidopt.executor.policies  # noqa: F401  (fills the registry)

    if name not in POLICIES:
        raise InputError(f"unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}")
    return POLICIES[name]


def policy_parameters(name: str) -> list[Any]:
    """The keyword parameters of policy ``name`` (:class:`fluidopt.params.Parameter`)."""
    from fluidopt.params import parameters

    cls = policy_class(name)
    return parameters(cls, help=cls.param_help)
