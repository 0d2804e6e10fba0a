"""Local search over priority keys of the serial list schedule.

A (1+1) evolutionary search: add Gaussian noise (a few rounds) to the priority keys of a
random block of consecutive requests in the incumbent order, rebuild the serial list
schedule (``fluidopt.search.list_schedule``, from the last checkpoint before the first
changed position) and keep the new keys when Σ c_i does not get worse.
Every schedule built is feasible, so the incumbent is always a valid upper bound. Before
the random steps the incumbent's own start epochs are tried as keys (rebuilding in the
order of the starts often fills holes the first pass left).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from fluidopt import interrupts

from fluidopt.bounds.ramp import RampInstance
from fluidopt.search.list_schedule import SerialSchedule, priority_order

#: Noise levels (rounds) of a perturbation, drawn uniformly per step.
SIGMAS = (0.5, 1.0, 2.0, 4.0)
#: Range of the number of consecutive requests (in the current order) a step perturbs.
BLOCK = (4, 64)


def perturbation_search(
    inst: RampInstance,
    key: np.ndarray,
    *,
    time_limit: float | None = None,
    steps: int | None = None,
    seed: int = 0,
    patience: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Improve the serial list schedule of ``key`` by random key perturbations.

    Parameters
    ----------
    inst
        The instance.
    key
        Priority key per request (smaller first; ties by volume, then position).
    time_limit
        Seconds; the search stops after the step that crosses it (at least the start
        schedule and its re-keyed version are built).
    steps
        Maximum number of random steps (default: unlimited within the time limit; one
        of ``time_limit`` and ``steps`` must be given).
    seed
        Seed of the random steps.
    patience
        Stop after this many steps in a row without a strictly better schedule
        (default: never; the time limit or ``steps`` stop it).

    Returns
    -------
    (starts, info)
        Start epochs of the best schedule and ``info`` with ``tct`` (its Σ c_i, rounds),
        ``start_tct``, ``steps``, ``improvements``, ``seconds`` and ``interrupted``
        (stopped by Ctrl-C, which returns the best schedule found instead of raising).
    """
    if time_limit is None and steps is None:
        raise ValueError("give time_limit or steps")
    started = time.perf_counter()
    deadline = math.inf if time_limit is None else started + float(time_limit)
    volume = inst.volume
    best_key = np.asarray(key, dtype=np.float64)
    best = SerialSchedule(inst, priority_order(best_key, volume))
    start_tct = best.tct
    rekey = best.starts.astype(np.float64)
    trial = best.reorder(priority_order(rekey, volume))
    if trial.tct <= best.tct:
        best, best_key = trial, rekey
    rng = np.random.default_rng(seed)
    done = improvements = last = 0
    n = inst.n
    interrupted = False
    try:
        while time.perf_counter() < deadline and (steps is None or done < steps):
            if patience is not None and done - last >= patience:
                break
            sigma = SIGMAS[int(rng.integers(len(SIGMAS)))]
            width = min(n, int(rng.integers(BLOCK[0], BLOCK[1] + 1)))
            first = int(rng.integers(0, n - width + 1))
            block = best.order[first : first + width]
            trial_key = best_key.copy()
            trial_key[block] += rng.normal(0.0, sigma, width)
            trial = best.reorder(priority_order(trial_key, volume))
            done += 1
            if trial.tct <= best.tct:
                if trial.tct < best.tct:
                    improvements, last = improvements + 1, done
                best, best_key = trial, trial_key
    except KeyboardInterrupt:  # Ctrl-C ends the search; the best schedule so far stands
        interrupts.note()
        interrupted = True
    return best.starts, {
        "tct": best.tct,
        "start_tct": start_tct,
        "steps": done,
        "improvements": improvements,
        "seconds": time.perf_counter() - started,
        "interrupted": interrupted,
    }
