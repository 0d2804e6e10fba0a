"""Warnings about a finished run that its summary metrics alone do not make plain.

**Thrashing**: a policy admits a request that the KV memory left free by the other
residents cannot carry to completion; the engine evicts it, the policy admits it again,
and so on. Nested WAIT with a capacity too small for its thresholds does this when
residents paused at a segment boundary hold the memory: on 30 requests with C = 172 it
ran 1,624 evictions in 3,295 iterations where FCFS needs none. The run still finishes
(at the latest once arrivals end and every segment drains), so the symptom is cost, not
an error; :func:`thrash_warning` names it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fluidopt.executor.metrics import RunResult

#: A run thrashes when some request was evicted at least this many times.
THRASH_EVICTIONS = 10


def thrash_warning(result: RunResult) -> str | None:
    """One line describing the thrash of ``result``, or ``None`` if it did not thrash.

    Parameters
    ----------
    result
        A finished run.

    Returns
    -------
    str or None
        Which request was evicted most often and how often, the evictions and the
        discarded tokens of the whole run.
    """
    evictions = result.records["evictions"].to_numpy()
    if evictions.size == 0 or evictions.max() < THRASH_EVICTIONS:
        return None
    worst = int(np.argmax(evictions))
    total = int(evictions.sum())
    wasted = int(result.records["wasted_tokens"].sum())
    rid = result.records["id"].iloc[worst]
    return (
        f"{result.policy} thrashed: request {rid} was evicted {int(evictions[worst]):,} times "
        f"({total:,} evictions and {wasted:,} discarded output tokens in all, for {len(evictions):,} requests); "
        "the free KV memory could not carry the re-admitted requests to completion"
        + (" while residents paused at segment boundaries held it (thresholds too large for C?)"
           if result.policy == "nested-wait" else "")
    )
