"""List schedules of unit-time requests: serial insertion in a priority order.

The *serial schedule-generation scheme* (the RCPSP name) takes requests one at a time
in a priority order and starts each at the earliest epoch t ≥ a_i at which its ramp
s_i + 1, …, s_i + o_i fits under the memory already placed. Every schedule it builds is
feasible by construction (it never lowers memory already committed), so any priority
order gives an upper bound on the optimal Σ c_i; the quality depends only on the order.
Good orders come from the Lagrangian prices (``fluidopt.bounds.lagrangian``): the
per-request best start t_i*(λ) ranks requests as the LP relaxation would.

Feasibility test of a start t, on the load g(r) = load_r + r already placed:
request i fits at t iff load_r + (s_i + r − t) ≤ C for r = t + 1 … t + o_i, i.e.
max_{t < r ≤ t + o_i} g(r) ≤ C − s_i + t. The window maxima for every t at once are
one ``scipy.ndimage.maximum_filter1d`` pass (van Herk's algorithm, O(length)), so placing
one request costs O(scan length) and a whole schedule O(n · makespan) in compiled code.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d

from fluidopt.bounds.ramp import RampInstance


class MemoryBoard:
    """Memory committed so far, rounds 1 … (grows as needed), and earliest fitting starts.

    Parameters
    ----------
    capacity
        C, tokens.
    rounds
        Initial length (rounds); the board grows when a ramp reaches past its end.
    """

    def __init__(self, capacity: int, rounds: int = 1024) -> None:
        self.capacity = int(capacity)
        self.g = np.arange(rounds + 2, dtype=np.int64)  # g[r] = load_r + r, r = 0 … rounds + 1
        self.end = 0  # last round with memory committed

    def _reserve(self, rounds: int) -> None:
        if rounds + 2 > self.g.shape[0]:
            size = max(rounds + 2, 2 * self.g.shape[0])
            grown = np.arange(size, dtype=np.int64)
            grown[: self.g.shape[0]] = self.g
            self.g = grown

    def earliest(self, arrival: int, prompt: int, output: int) -> int:
        """Earliest start t ≥ ``arrival`` at which the ramp fits (always exists: after
        the last committed round the board is empty)."""
        last = max(int(arrival), self.end)
        self._reserve(last + output)
        seg = self.g[arrival + 1 : last + output + 1]  # rounds arrival + 1 … last + output
        width = int(output)
        peak = maximum_filter1d(seg, size=width, origin=-(width // 2), mode="nearest")
        t = np.arange(arrival, last + 1)
        ok = peak[: t.shape[0]] - t <= self.capacity - int(prompt)
        k = int(np.argmax(ok))
        return int(arrival) + k  # ok[-1] holds: its window is empty

    def copy(self) -> MemoryBoard:
        other = MemoryBoard.__new__(MemoryBoard)
        other.capacity, other.g, other.end = self.capacity, self.g.copy(), self.end
        return other

    def place(self, start: int, prompt: int, output: int) -> None:
        """Commit the ramp of a request started at ``start``."""
        self._reserve(start + output)
        self.g[start + 1 : start + output + 1] += int(prompt) + np.arange(1, output + 1, dtype=np.int64)
        self.end = max(self.end, int(start) + int(output))


def serial_schedule(inst: RampInstance, order: np.ndarray) -> np.ndarray:
    """Start epochs of the serial list schedule in priority ``order`` (positions)."""
    return SerialSchedule(inst, order).starts


class SerialSchedule:
    """A serial list schedule that keeps checkpoints of its board.

    Rebuilding it for another order (:meth:`reorder`) restarts from the last checkpoint
    before the first position where the orders differ, since the placements before that
    position are the same.

    Parameters
    ----------
    inst
        The instance.
    order
        Priority order (positions).
    every
        Placements between checkpoints.

    Attributes
    ----------
    starts
        Start epoch per request.
    tct
        Σ c_i = Σ (t_i + o_i), rounds.
    """

    def __init__(self, inst: RampInstance, order: np.ndarray, every: int = 64, *, _from: SerialSchedule | None = None,
                 _at: int = 0) -> None:
        self.inst, self.every = inst, int(every)
        self.order = np.asarray(order, dtype=np.int64)
        if _from is None:
            board = MemoryBoard(inst.capacity, int(inst.arrival.max(initial=0) + inst.output.max(initial=0)) + 1)
            self.checkpoints: list[MemoryBoard] = []
            self.starts = np.empty(inst.n, dtype=np.int64)
            begin = 0
        else:  # reuse the placements of _from before checkpoint _at
            board = _from.checkpoints[_at].copy()
            self.checkpoints = _from.checkpoints[: _at]
            self.starts = _from.starts.copy()
            begin = _at * self.every
        a, s, o = inst.arrival, inst.prompt, inst.output
        for k in range(begin, self.order.shape[0]):
            if k % self.every == 0:
                self.checkpoints.append(board.copy())
            i = int(self.order[k])
            t = board.earliest(int(a[i]), int(s[i]), int(o[i]))
            board.place(t, int(s[i]), int(o[i]))
            self.starts[i] = t
        self.tct = float(np.sum(self.starts + o))

    def reorder(self, order: np.ndarray) -> SerialSchedule:
        """The schedule of another priority order (this one is left unchanged)."""
        order = np.asarray(order, dtype=np.int64)
        differ = np.flatnonzero(order != self.order)
        if differ.size == 0:
            return self
        return SerialSchedule(self.inst, order, self.every, _from=self, _at=int(differ[0]) // self.every)


def priority_order(key: np.ndarray, *tiebreaks: np.ndarray) -> np.ndarray:
    """Positions sorted by ``key`` ascending, then by each tie-break, then by position."""
    n = np.asarray(key).shape[0]
    return np.lexsort((np.arange(n), *reversed(tiebreaks), key))
