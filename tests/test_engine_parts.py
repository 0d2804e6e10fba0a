"""The engine's parts, each alone: time model, batch limits, KV allocator, preemption."""

from __future__ import annotations

import numpy as np
import pytest

from fluidopt.deployment import TimeModel, load_deployment
from fluidopt.errors import PolicyError
from fluidopt.executor.kv import TokenKV
from fluidopt.executor.limits import BatchLimits
from fluidopt.executor.preemption import Preemption
from fluidopt.executor.timing import IterationTime


def test_iteration_time_equals_the_deployment_model_bit_for_bit() -> None:
    tm = load_deployment("llama2-7b-a100").time
    it = IterationTime(tm)
    rng = np.random.default_rng(0)
    for _ in range(200):
        b, kv, new, sq = (int(x) for x in rng.integers(1, 10_000, 4))
        assert it.tau(b, kv, new, sq) == tm.iteration_time(b, kv, new, sq)
        base, tail, pf2 = it.stretch(b, new, sq)
        # a stretch iteration's τ, from its fixed parts, is the same float
        assert base + it.c_kv * kv + tail + pf2 == it.tau(b, kv, new, sq)
        assert it.stretch_taus(base, np.array([kv, kv + 7]), tail, pf2)[0] == it.tau(b, kv, new, sq)


def test_unit_time_is_one() -> None:
    it = IterationTime(TimeModel.unit())
    assert it.tau(5, 100, 7, 9) == 1.0
    assert it.stretch_taus(*it.stretch(3, 2, 1)[:1], np.arange(4), 0.0, 0.0).tolist() == [1.0] * 4


def test_batch_limits() -> None:
    lim = BatchLimits(max_batch=4, max_tokens=10)
    assert lim.allows(4, 10) and not lim.allows(5, 1) and not lim.allows(1, 11)
    with pytest.raises(PolicyError, match="p: batch of 5 exceeds the deployment's max_batch 4"):
        lim.check("p", 5, 1)
    with pytest.raises(PolicyError, match="11 new tokens exceed"):
        lim.check("p", 1, 11)
    BatchLimits(None, None).check("p", 10**6, 10**9)  # no caps: no error
    # padded: the prefilling members count, padded to the longest chunk; decodes do not
    pad = BatchLimits(max_batch=None, max_tokens=10, padded=True)
    assert pad.allows(100, 103, prefilling=2, longest=5) and not pad.allows(3, 7, prefilling=3, longest=4)
    with pytest.raises(PolicyError, match="3 × 4 padded prefill tokens exceed"):
        pad.check("p", 3, 7, 3, 4)


def test_token_kv_room() -> None:
    kv = TokenKV(100)
    assert kv.room(90, 3) == 3  # 93, 96, 99 fit; 102 does not
    assert kv.room(100, 1) == 0


def test_preemption_restart_and_prefix() -> None:
    prompt = np.array([5, 5, 5])
    prefilled = np.array([5, 3, 5])
    generated = np.array([2, 0, 4])
    wasted = np.zeros(3, dtype=np.int64)
    evictions = np.zeros(3, dtype=np.int64)
    admitted = np.array([0.0, 1.0, 2.0])
    status = np.full(3, 2, dtype=np.int8)
    p = Preemption(prompt, np.array([9, 9, 9]), prefilled, generated, wasted, evictions, admitted, status)
    freed, n_pf = p.evict(np.array([0, 1]))
    assert (freed, n_pf) == (7 + 3, 1)
    assert wasted.tolist() == [2, 0, 0] and evictions.tolist() == [1, 1, 0]
    assert prefilled.tolist() == [0, 0, 5] and generated.tolist() == [0, 0, 4]
    assert np.isnan(admitted[:2]).all() and status.tolist() == [1, 1, 2]
    # shortest prefix of the victim order that frees the need
    assert Preemption.prefix("p", np.array([2, 0]), np.array([9, 7]), 10) == (2, 16)
    assert Preemption.prefix("p", np.array([2, 0]), np.array([9, 7]), 9) == (1, 9)
    with pytest.raises(PolicyError, match="does not free enough"):
        Preemption.prefix("p", np.array([2]), np.array([9]), 10)
