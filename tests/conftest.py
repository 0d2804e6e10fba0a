"""Shared test helpers."""

from __future__ import annotations

import json
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fluidopt.cli.core import run
from fluidopt.deployment import unit_deployment
from fluidopt.executor.policy import StateView

REPO = Path(__file__).resolve().parents[1]


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def sigint() -> None:
    """Skip a test that sends itself SIGINT where Python would not turn it into
    KeyboardInterrupt: off the main thread, or in a process started with SIGINT ignored
    (a background job of a non-interactive shell)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGINT is delivered to the main thread only")
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is ignored in this process (started in the background)")


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """A completion-time instance in our CSV schema, small enough to close in a second.

    Three requests (s = 1, o = 2) at round 0; with C = 5 the optimum starts them at 0, 1, 2
    (loads 2, 3+2, 3+2, 3) and Σ c = 2 + 3 + 4 = 9; two together would need 3 + 3 = 6 > 5.
    """
    path = tmp_path / "small.csv"
    path.write_text("id,arrival,prompt,output\n10,0,1,2\n11,0,1,2\n12,0,1,2\n")
    return path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run ``fluidopt ARGS...`` in-process; returns exit code, stdout and stderr."""

    def _run(*args: str) -> CliResult:
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return _run


def make_view(
    capacity: int,
    prompt: list[int],
    *,
    resident: list[int] = (),
    generated: dict[int, int] | None = None,
    waiting: list[int] = (),
    arrival: list[float] | None = None,
    output: list[int] | None = None,
    iteration: int = 0,
    admitted_at: dict[int, float] | None = None,
    next_arrival: float = float("inf"),
) -> StateView:
    """A hand-built policy state (unit time, capacity C tokens).

    Residents have prefilled their prompt, emitted ``generated`` tokens and were admitted
    at ``admitted_at`` (default: their position in ``resident``).
    """
    n = len(prompt)
    v = StateView()
    v.clock = float(iteration)
    v.iteration = iteration
    v.capacity = capacity
    v.prompt = np.asarray(prompt, dtype=np.int64)
    v.arrival = np.asarray(arrival if arrival is not None else [0.0] * n, dtype=np.float64)
    v.id = np.arange(n, dtype=np.int64)
    v.generated = np.zeros(n, dtype=np.int64)
    v.prefilled = np.zeros(n, dtype=np.int64)
    v.admitted_at = np.full(n, np.nan)
    for i, g in (generated or {}).items():
        v.generated[i] = g
    for pos, i in enumerate(resident):
        v.prefilled[i] = prompt[i]
        v.admitted_at[i] = float(pos) if admitted_at is None else admitted_at[i]
    v.evictions = np.zeros(n, dtype=np.int64)
    v.resident = np.asarray(resident, dtype=np.int64)
    v.waiting = np.asarray(waiting, dtype=np.int64)
    v.kv_used = int(v.prefilled.sum() + v.generated.sum())
    v.next_arrival = next_arrival
    v.pred_lo = v.pred_hi = v.pred = v.type = None
    v.output = None if output is None else np.asarray(output, dtype=np.int64)
    v.deployment = unit_deployment(capacity)
    return v
