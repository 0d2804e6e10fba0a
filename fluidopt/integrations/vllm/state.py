"""What a fluidopt policy sees of a vLLM scheduler: the live requests as a StateView.

Pure fluidopt (no vLLM import), so the translation is tested without vLLM installed.

**Token convention.** vLLM writes a sampled token's KV in the *next* iteration: a request
with p prompt tokens holds p + k − 1 KV tokens in the iteration that produces output
token k (p in its prefill). The system model counts the first output token's KV at the
end of the prefill iteration: s + k. So a vLLM request with p prompt tokens is the
system model's request with **s = p − 1** (a one-token prompt is counted as s = 1, one
token more than vLLM holds). Under this mapping both count the same KV in every
iteration, block by block, and the executor run on s = p − 1 is the one to compare with.

**Recompute preemption.** A preempted vLLM request keeps its output tokens and
re-prefills prompt + outputs together (the executor's ``preemption: recompute``). Its
effective prompt is s + kept (kept: the outputs it had when it was last admitted), its
``generated`` counts the tokens of the current run, as in the executor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fluidopt.deployment import Deployment, unit_deployment
from fluidopt.executor.policy import StateView
from fluidopt.workload import Workload


@dataclass
class LiveRequest:
    """What the adapter knows of one request, in vLLM's own terms.

    Attributes
    ----------
    key
        vLLM request id.
    seq
        Arrival order among the scheduler's requests (breaks arrival-time ties, as the
        workload id does in the executor).
    arrival
        Arrival time, s (vLLM's ``arrival_time``).
    prompt_tokens
        p, the request's own prompt tokens.
    output_tokens
        Output tokens produced so far over all runs (with async scheduling, in-flight
        ones included).
    computed
        vLLM's ``num_computed_tokens`` (tokens with KV in the current run).
    predicted
        õ, the predicted total output length, tokens ≥ 1.
    resident
        Holds KV now (running or paused by the policy).
    kept
        Output tokens it had when last admitted (re-prefilled with the prompt).
    admitted_at
        Clock at its last admission, s (NaN when waiting).
    admit_rank
        Order of its last admission among all admissions (ties within a step follow the
        policy's run order).
    evictions
        Preemptions so far.
    served_at
        Clock when it last ran in a decision (its arrival before), s.
    """

    key: str
    seq: int
    arrival: float
    prompt_tokens: int
    output_tokens: int
    computed: int
    predicted: int
    resident: bool = False
    kept: int = 0
    admitted_at: float = math.nan
    admit_rank: int = -1
    evictions: int = 0
    served_at: float = math.nan

    @property
    def prompt(self) -> int:
        """s = p − 1 (at least 1): the system model's prompt of this request, tokens."""
        return max(self.prompt_tokens - 1, 1)


def _ro(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def build_view(
    live: list[LiveRequest],
    *,
    clock: float,
    iteration: int,
    deployment: Deployment,
    kv_used: int,
    next_arrival: float,
    sees_output: bool,
) -> tuple[Workload, StateView]:
    """The workload and state a policy decides on; positions index ``live``.

    ``live`` must be in (arrival, seq) order: that is the executor's waiting order.
    ``Workload.output`` and ``pred`` hold the predicted lengths (the only lengths an
    engine has); ``prompt`` the requests' own s. ``kv_used`` and the deployment's
    capacity are in block tokens.
    """
    n = len(live)
    arrival = np.fromiter((r.arrival for r in live), float, n)
    s = np.fromiter((r.prompt for r in live), np.int64, n)
    pred = np.fromiter((r.predicted for r in live), np.int64, n)
    out = np.fromiter((r.output_tokens for r in live), np.int64, n)
    kept = np.fromiter((r.kept if r.resident else r.output_tokens for r in live), np.int64, n)
    computed = np.fromiter((r.computed for r in live), np.int64, n)
    resident = np.fromiter((r.resident for r in live), bool, n)
    ids = np.fromiter((r.seq for r in live), np.int64, n)
    workload = Workload(arrival=arrival, prompt=s, output=pred, id=ids, pred=pred, name="vllm", source="vllm")
    prompt_eff = s + kept
    generated = np.where(resident, out - kept, 0)
    # a member still prefilling has generated nothing in this run; its prompt progress is
    # what vLLM has computed (capped at s_eff: the last prompt token's KV is the sampled one's)
    prefilled = np.where(resident, np.where(generated > 0, prompt_eff, np.minimum(computed, prompt_eff)), 0)
    admitted_at = np.fromiter((r.admitted_at if r.resident else math.nan for r in live), float, n)
    rank = np.fromiter((r.admit_rank for r in live), np.int64, n)
    res_idx = np.flatnonzero(resident)
    v = StateView()
    v.clock = float(clock)
    v.iteration = int(iteration)
    v.capacity = int(deployment.require_capacity())
    v.kv_used = int(kv_used)
    v.waiting = _ro(np.flatnonzero(~resident))
    v.resident = _ro(res_idx[np.argsort(rank[res_idx], kind="stable")])
    v.next_arrival = float(next_arrival)
    v.arrival = _ro(arrival)
    v.prompt = _ro(prompt_eff)
    v.id = _ro(ids)
    v.pred_lo = v.pred_hi = v.type = None
    v.pred = _ro(pred)
    v.output = _ro(np.maximum(pred - kept, 1)) if sees_output else None
    v.generated = _ro(generated)
    v.prefilled = _ro(prefilled)
    v.admitted_at = _ro(admitted_at)
    v.evictions = _ro(np.fromiter((r.evictions for r in live), np.int64, n))
    v.deployment = deployment
    return workload, v


def engine_deployment(
    *, num_blocks: int, block_size: int, max_num_seqs: int | None, max_num_batched_tokens: int | None
) -> Deployment:
    """The deployment a policy plans against inside vLLM (unit time; memory in block tokens).

    C = (num_blocks − 1)·block_size (vLLM reserves one null block); ``max_tokens`` is
    vLLM's ``max_num_batched_tokens`` only when chunked prefill is off (``None`` given):
    with it on, vLLM chunks a long prompt instead of refusing it. Preemption is
    ``recompute`` and the victim order the policy's, as in vLLM.
    """
    dep = unit_deployment((num_blocks - 1) * block_size)
    return dep.with_settings(
        name="vllm",
        description="vLLM's KV cache as a fluidopt policy plans inside the engine",
        block_size=block_size,
        max_batch=max_num_seqs,
        max_tokens=max_num_batched_tokens,
        preemption="recompute",
    )
