"""Limited-memory quasi-Newton minimisation over the non-negative orthant.

A small projected L-BFGS for the price search of ``fluidopt.bounds.lagrangian``: the
two-loop recursion on the free coordinates (those not held at 0 by a gradient pointing
outwards) and a backtracking Armijo search along the projected path max(0, x + α·d).
It uses numpy only: scipy's L-BFGS-B calls a multi-threaded BLAS whose thread start-up
costs milliseconds per iteration on a loaded machine, which dominates on small
instances. Any point it visits is feasible (x ≥ 0), which is all the bound needs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np


def minimise_nonnegative(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    *,
    iterations: int,
    memory: int = 20,
    tolerance: float = 1e-9,
) -> np.ndarray:
    """Approximately minimise ``fun`` over x ≥ 0, starting at max(x0, 0).

    Parameters
    ----------
    fun
        Returns (value, gradient) at x.
    x0
        Start point.
    iterations
        Number of quasi-Newton steps (each takes one or more evaluations).
    memory
        Correction pairs kept.
    tolerance
        Stop when a step changes the value by less than this fraction of |value|.

    Returns
    -------
    numpy.ndarray
        The last accepted point. Exceptions raised by ``fun`` (e.g. a time limit)
        propagate; callers keep their own best point.
    """
    x = np.maximum(np.asarray(x0, dtype=np.float64), 0.0)
    f, g = fun(x)
    pairs: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=memory)
    for _ in range(int(iterations)):
        free = (x > 0) | (g < 0)
        q = np.where(free, g, 0.0)
        if not q.any():
            break
        alphas = []
        for s, y, rho in reversed(pairs):
            a = rho * float(s @ q)
            alphas.append(a)
            q = q - a * y
        if pairs:
            s, y, _ = pairs[-1]
            q = q * (float(s @ y) / float(y @ y))
        else:  # first step: move the largest coordinate by ~1% of the scale of x
            scale = float(np.max(np.abs(x))) or 1.0
            q = q * (0.01 * scale / float(np.max(np.abs(q))))
        for (s, y, rho), a in zip(pairs, reversed(alphas)):
            b = rho * float(y @ q)
            q = q + (a - b) * s
        d = np.where(free, -q, 0.0)
        if float(d @ g) >= 0:  # not a descent direction: restart from the gradient
            pairs.clear()
            scale = float(np.max(np.abs(x))) or 1.0
            d = np.where(free, -g, 0.0) * (0.01 * scale / float(np.max(np.abs(g))))
        step = 1.0
        while True:
            xn = np.maximum(x + step * d, 0.0)
            fn, gn = fun(xn)
            if fn <= f + 1e-4 * float(g @ (xn - x)):
                break
            step *= 0.5
            if step < 1e-10:
                return x
        s, y = xn - x, gn - g
        sy = float(s @ y)
        if sy > 1e-12 * float(np.sqrt((s @ s) * (y @ y))):
            pairs.append((s, y, 1.0 / sy))
        converged = abs(f - fn) <= tolerance * max(1.0, abs(f))
        x, f, g = xn, fn, gn
        if converged:
            break
    return x
