"""The ramp memory profile of a unit-time request, on raw arrays.

Unit-time model (spec ``system-model.md``, model 1): request i started at integer epoch
t ≥ a_i holds s_i + j KV tokens at the end of round t + j, j = 1 … o_i, and completes at
c_i = t + o_i. The profile s_i + 1, …, s_i + o_i is the *ramp* of the request; its sum
is the KV-time volume V_i = o_i·s_i + o_i(o_i+1)/2 (token·rounds). The trace-scale
bounds and schedules (``fluidopt.bounds.mean_busy_time``, ``fluidopt.bounds.lagrangian``,
``fluidopt.search``) work on these arrays rather than on a
:class:`~fluidopt.workload.Workload`, so they can be called on thousands of requests
without a frame in between.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fluidopt.errors import InputError


@dataclass(frozen=True)
class RampInstance:
    """A validated unit-time instance.

    Attributes
    ----------
    arrival
        Earliest start epoch a_i (rounds, int64; fractional arrivals are rounded up).
    prompt, output
        s_i and o_i, tokens (int64, ≥ 1).
    capacity
        KV capacity C, tokens.
    """

    arrival: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    capacity: int

    @property
    def n(self) -> int:
        return int(self.arrival.shape[0])

    @property
    def volume(self) -> np.ndarray:
        """V_i = o_i·s_i + o_i(o_i+1)/2, token·rounds (float64)."""
        o = self.output.astype(np.float64)
        return o * self.prompt + o * (o + 1) / 2


def ramp_instance(arrival: np.ndarray, prompt: np.ndarray, output: np.ndarray, capacity: int) -> RampInstance:
    """Validate raw arrays into a :class:`RampInstance`.

    Raises
    ------
    InputError
        Mismatched lengths, a negative or non-finite arrival, a token count that is not an
        integer ≥ 1, a capacity < 1, or a request whose peak s_i + o_i exceeds C (it can
        never run); the message names the first offending request (0-based position).
    """
    a = np.asarray(arrival, dtype=np.float64).reshape(-1)
    s = np.asarray(prompt, dtype=np.float64).reshape(-1)
    o = np.asarray(output, dtype=np.float64).reshape(-1)
    if not (a.shape == s.shape == o.shape):
        raise InputError(f"arrival, prompt and output differ in length ({a.size}, {s.size}, {o.size})")
    if int(capacity) != capacity or capacity < 1:
        raise InputError(f"capacity must be an integer ≥ 1 (got {capacity})")
    for name, x, low in (("arrival", a, 0.0), ("prompt", s, 1.0), ("output", o, 1.0)):
        bad = np.flatnonzero(~np.isfinite(x) | (x < low) | ((x != np.round(x)) if name != "arrival" else False))
        if bad.size:
            i = int(bad[0])
            what = "a finite number ≥ 0" if name == "arrival" else "an integer ≥ 1"
            raise InputError(f"request {i}: {name} must be {what} (got {x[i]})", field=name)
    over = np.flatnonzero(s + o > capacity)
    if over.size:
        i = int(over[0])
        raise InputError(
            f"request {i} needs {int(s[i])} + {int(o[i])} KV tokens, more than the capacity {int(capacity)}"
            f" ({over.size} such request(s))",
            field="output",
        )
    return RampInstance(np.ceil(a).astype(np.int64), s.astype(np.int64), o.astype(np.int64), int(capacity))


def memory_load(starts: np.ndarray, prompt: np.ndarray, output: np.ndarray, rounds: int) -> np.ndarray:
    """KV tokens held at the end of rounds 1 … ``rounds`` under contiguous runs.

    Entry r − 1 is Σ over requests with t_i < r ≤ t_i + o_i of (s_i + r − t_i), tokens;
    runs beyond ``rounds`` are cut off. Built from two difference arrays (the number of
    residents and their Σ (s_i − t_i)), O(n + rounds).
    """
    t = np.asarray(starts, dtype=np.int64)
    s = np.asarray(prompt, dtype=np.int64)
    o = np.asarray(output, dtype=np.int64)
    first = np.minimum(t + 1, rounds + 1)
    stop = np.minimum(t + o + 1, rounds + 1)
    count = np.zeros(rounds + 2, dtype=np.int64)
    offset = np.zeros(rounds + 2, dtype=np.int64)
    np.add.at(count, first, 1)
    np.add.at(count, stop, -1)
    np.add.at(offset, first, s - t)
    np.add.at(offset, stop, -(s - t))
    r = np.arange(1, rounds + 1, dtype=np.int64)
    return np.cumsum(offset)[1 : rounds + 1] + np.cumsum(count)[1 : rounds + 1] * r
