"""Build time of the completion-time MIP: the array build against the Pyomo reference.

Instances: n requests all at 0, prompt 3, outputs 30 − (i mod 7), C = 200, every start
window 0 … 499, so the model has 500·n binaries (n = 200: 100,000 binaries). The array
build (``build_arrays``, then loaded into highspy by ``highs_model``) runs at every n;
the Pyomo reference (``build``) only up to ``--pyomo-max`` binaries, since it is about two
orders of magnitude slower. Times are CPU seconds (``process_time``), median of
``--repeat`` runs; the ratio Pyomo / arrays is taken in the same run.

Usage::

    python benchmarks/kv_synthetic/build.py [--sizes 20,50,200] [--pyomo-max 25000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from fluidopt.models.tct_mip import TctData, build, build_arrays
from fluidopt.solver import highs_model

WINDOW, OUT = 500, 30


def instance(n: int) -> TctData:
    """n requests of ``WINDOW`` start epochs each: ``WINDOW``·n binaries."""
    return TctData(
        capacity=200,
        arrival=np.zeros(n, dtype=np.int64),
        prompt=np.full(n, 3),
        output=np.full(n, OUT) - np.arange(n) % 7,
        count=np.ones(n, dtype=np.int64),
        est=np.zeros(n, dtype=np.int64),
        lst=np.full(n, WINDOW - 1),
        rounds=np.arange(1, WINDOW + OUT + 1),
        members=tuple(np.array([i]) for i in range(n)),
    )


def cpu_seconds(fn: Callable[[], object], repeat: int) -> float:
    """Median CPU seconds of ``repeat`` calls of ``fn``."""
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="20,50,200", help="comma-separated numbers of requests")
    p.add_argument("--pyomo-max", type=int, default=25_000, help="largest model (binaries) built with Pyomo")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()

    print(f"{'requests':>8} {'binaries':>9} {'nonzeros':>10} {'arrays s':>9} {'+highspy s':>10} {'pyomo s':>8} {'pyomo/arrays':>12}")
    for n in (int(x) for x in args.sizes.split(",")):
        data = instance(n)
        arr = build_arrays(data)
        t_arr = cpu_seconds(lambda: build_arrays(data), args.repeat)
        t_highs = cpu_seconds(lambda: highs_model(build_arrays(data)), args.repeat)
        t_pyomo = cpu_seconds(lambda: build(data), args.repeat) if arr.shape[1] <= args.pyomo_max else None
        ratio = "–" if t_pyomo is None else f"{t_pyomo / t_arr:.0f}"
        pyomo = "–" if t_pyomo is None else f"{t_pyomo:.2f}"
        print(f"{n:>8,} {arr.shape[1]:>9,} {arr.A.nnz:>10,} {t_arr:>9.3f} {t_highs:>10.3f} {pyomo:>8} {ratio:>12}")


if __name__ == "__main__":
    main()
