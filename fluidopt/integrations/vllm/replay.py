"""Offline replay of a workload through a vLLM scheduler class, driven step by step.

No model runs: the scheduler is built on a model *configuration* (a two-layer Llama shipped
in ``tiny_llama/config.json``, no weights), each scheduled step counts as one unit of time,
and every request that completes its prefill in a step is handed one sampled token. The
requests are a fluidopt workload in the system model's terms: request (s, o) becomes a
vLLM request of s + 1 prompt tokens and ``max_tokens = o`` with ``ignore_eos`` (see
:mod:`fluidopt.integrations.vllm.state` for why s + 1), its point prediction ``pred``
(when the workload has one) in ``extra_args``. Arrivals are added when the clock reaches
them, as the executor's unit-time model registers them; once the last one is in, the
scheduler is told that no more will come (WAIT's drain rule).

The result is a :class:`~fluidopt.integrations.vllm.parity.Trace`, comparable with
:func:`~fluidopt.integrations.vllm.parity.executor_trace`.
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from fluidopt.integrations.vllm.parity import Step, Trace

try:
    import torch
    from vllm.config import CacheConfig, ModelConfig, SchedulerConfig, VllmConfig
    from vllm.sampling_params import SamplingParams
    from vllm.v1.kv_cache_interface import FullAttentionSpec, KVCacheConfig, KVCacheGroupSpec
    from vllm.v1.outputs import ModelRunnerOutput
    from vllm.v1.request import Request
    from vllm.v1.structured_output import StructuredOutputManager
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"fluidopt.integrations.vllm.replay needs vLLM: pip install 'fluidopt[vllm]' [{exc}]") from exc

_TOKEN = 7  # the token every step samples (not the tiny model's EOS, 2)


def tiny_model_dir() -> str:
    """Folder of the shipped tiny Llama configuration (no weights: ``load_format="dummy"``)."""
    return str(resources.files("fluidopt.integrations.vllm").joinpath("tiny_llama"))


@lru_cache(maxsize=4)
def _model_config(model: str) -> ModelConfig:
    # building it reads the config and probes the platform: seconds, so once per model
    return ModelConfig(model=model, skip_tokenizer_init=True)


def build_scheduler(
    scheduler_cls: type,
    *,
    num_blocks: int,
    block_size: int,
    additional_config: dict[str, Any] | None = None,
    max_num_seqs: int = 256,
    max_num_batched_tokens: int = 8192,
    model: str | None = None,
) -> Any:
    """A scheduler of ``scheduler_cls`` with ``num_blocks`` KV blocks (one is vLLM's null
    block) of ``block_size`` tokens; prefix caching off (every prompt is distinct here)."""
    mc = _model_config(model or tiny_model_dir())
    sc = SchedulerConfig(
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
        max_model_len=mc.max_model_len,
        is_encoder_decoder=False,
        enable_chunked_prefill=True,
    )
    cc = CacheConfig(block_size=block_size, enable_prefix_caching=False)
    cc.num_gpu_blocks = num_blocks
    vc = VllmConfig(model_config=mc, scheduler_config=sc, cache_config=cc, additional_config=additional_config or {})
    spec = FullAttentionSpec(
        block_size=block_size,
        num_kv_heads=mc.get_num_kv_heads(vc.parallel_config),
        head_size=mc.get_head_size(),
        dtype=torch.float32,
    )
    kvc = KVCacheConfig(num_blocks=num_blocks, kv_cache_tensors=[], kv_cache_groups=[KVCacheGroupSpec(["attn"], spec)])
    return scheduler_cls(vc, kvc, StructuredOutputManager(vc), block_size=block_size, log_stats=False)


def _request(rid: int, s: int, o: int, arrival: float, pred: int | None) -> Request:
    extra = None if pred is None else {"fluidopt_pred": int(pred)}
    sp = SamplingParams(max_tokens=int(o), ignore_eos=True, extra_args=extra)
    return Request(str(rid), [3 + (k % 900) for k in range(int(s) + 1)], sp, None, arrival_time=float(arrival))


def replay(
    workload: Any,
    scheduler_cls: type,
    *,
    num_blocks: int,
    block_size: int,
    additional_config: dict[str, Any] | None = None,
    max_num_seqs: int = 256,
    max_steps: int = 1_000_000,
) -> Trace:
    """Drive ``schedule()`` / ``update_from_output()`` over ``workload`` in unit time.

    Raises
    ------
    RuntimeError
        The scheduler stalls (nothing scheduled, nothing left to arrive) or runs past
        ``max_steps``.
    """
    cfg = {"fluidopt": {"max_wait": None}}
    for key, value in (additional_config or {}).items():
        cfg[key] = {**cfg.get(key, {}), **value} if key == "fluidopt" else value
    sched = build_scheduler(
        scheduler_cls, num_blocks=num_blocks, block_size=block_size, additional_config=cfg, max_num_seqs=max_num_seqs
    )
    now = [0.0]
    sched.clock = lambda: now[0]
    ids = np.asarray(workload.id, dtype=np.int64)
    arrival = np.asarray(workload.arrival, dtype=float)
    order = np.lexsort((ids, arrival)).tolist()
    pred = None if workload.pred is None else np.asarray(workload.pred, dtype=np.int64)
    trace = Trace("vllm")
    p, n = 0, len(order)
    steps = 0
    pending: list[str] = []  # preempted in a step that scheduled nothing
    while True:
        clock = now[0]
        while p < n and arrival[order[p]] <= clock:
            i = order[p]
            sched.add_request(
                _request(ids[i], workload.prompt[i], workload.output[i], arrival[i], None if pred is None else pred[i])
            )
            p += 1
        sched.arrivals_closed = p == n
        if not sched.has_unfinished_requests():
            if p == n:
                return trace
            now[0] = float(math.ceil(arrival[order[p]]))
            continue
        before = {rid: req.num_preemptions for rid, req in sched.requests.items()}
        out = sched.schedule()
        scheduled = list(out.num_scheduled_tokens)
        sampled = []
        for rid in scheduled:
            req = sched.requests[rid]
            sampled.append([_TOKEN] if req.num_computed_tokens >= req.num_tokens else [])
        sched.update_from_output(
            out,
            ModelRunnerOutput(
                req_ids=scheduled, req_id_to_index={r: k for k, r in enumerate(scheduled)}, sampled_token_ids=sampled
            ),
        )
        preempted = [rid for rid, k in before.items() if rid in sched.requests and sched.requests[rid].num_preemptions > k]
        steps += 1
        if steps > max_steps:
            raise RuntimeError(f"{scheduler_cls.__name__} ran past {max_steps} steps")
        if not scheduled:
            if preempted:  # the whole batch was preempted: decide again at the same clock
                pending.extend(preempted)
                continue
            if pending:  # preemptions without an iteration (the executor records them alike)
                trace.steps[clock] = Step(preempted=tuple(sorted(int(r) for r in pending)))
                pending = []
            if p == n:
                raise RuntimeError(f"{scheduler_cls.__name__} stalled at t={clock:g} with requests left")
            nxt = float(math.ceil(arrival[order[p]]))
            now[0] = nxt if nxt > clock else clock + 1.0
            continue
        admitted = [d.req_id for d in out.scheduled_new_reqs] + sorted(out.scheduled_cached_reqs.resumed_req_ids)
        completed = [rid for rid in before if rid not in sched.requests]
        for rid in completed:
            trace.completion[int(rid)] = clock + 1.0
        trace.steps[clock] = Step(*(tuple(sorted(int(r) for r in x)) for x in (admitted, pending + preempted, completed)))
        pending = []
        now[0] = clock + 1.0
