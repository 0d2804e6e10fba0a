"""Ctrl-C and killed commands: a solver stops within seconds with its best answer and
the command exits 130; a sweep's worker processes end with their parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def start(*args: str, cwd: Path) -> subprocess.Popen:
    """``fluidopt ARGS`` in a child whose SIGINT acts as at a terminal."""
    return subprocess.Popen(
        [sys.executable, "-m", "fluidopt", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def workers_of(parent: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.fixture(scope="module")
def hard_instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 requests of the [KV] synthetic family: neither backend closes it in minutes."""
    from fluidopt.traces import load_workload, write_parquet

    path = tmp_path_factory.mktemp("kv") / "kv.parquet"
    write_parquet(load_workload("kv-synthetic-1", seed=3, requests=40), path)
    return path


@pytest.mark.skipif(sys.platform != "linux", reason="uses pgrep")
def test_interrupted_solve_reports_and_exits_130(hard_instance: Path, tmp_path: Path) -> None:
    proc = start("solve", "-w", str(hard_instance), "--json", cwd=tmp_path)
    # the CP-SAT search runs in a worker process: interrupt once it is searching
    assert wait_for(lambda: bool(workers_of(proc.pid)) or proc.poll() is not None, 60)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert json.loads(out)["status"] == "interrupted"  # the best schedule and bound were still reported
    assert err.strip().splitlines()[-1].startswith("fluidopt: interrupted")


def test_ctrl_c_stops_highs_within_seconds(hard_instance: Path, tmp_path: Path) -> None:
    """HiGHS took 12–17 s to notice a Ctrl-C in presolve. Now the first one stops it within
    a few seconds, or, in the two presolve passes that check nothing, a second one quits."""
    proc = start("solve", "-w", str(hard_instance), "--backend", "highs", "--json", cwd=tmp_path)
    time.sleep(5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    if not wait_for(lambda: proc.poll() is not None, 3):
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 6, err
    assert proc.returncode == 130, err
    assert "terminate called" not in err  # no abort inside HiGHS on the way out
    if out:
        assert json.loads(out)["status"] == "interrupted"


SPEC = """\
workload: sharegpt
workload_params: {rate: [3.0, 3.1, 3.2, 3.3]}
deployment: llama2-7b-a100
policies: [sarathi]
seeds: 2
"""  # 8 cells of 30,731 requests, several seconds each


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc and uses pgrep")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_sweep_workers_end_with_their_parent(tmp_path: Path, sig: int) -> None:
    (tmp_path / "s.yaml").write_text(SPEC)
    proc = start("sweep", "s.yaml", "--workers", "2", cwd=tmp_path)
    assert wait_for(lambda: len(workers_of(proc.pid)) == 2, 30), "the workers did not start"
    workers = workers_of(proc.pid)
    time.sleep(1)  # both are inside a cell
    proc.send_signal(sig)  # to the parent alone, as `kill` does
    _, err = proc.communicate(timeout=30)
    try:
        assert wait_for(lambda: not any(alive(w) for w in workers), 5), "workers outlived the sweep"
    finally:
        for w in workers:
            if alive(w):
                os.kill(w, signal.SIGKILL)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "interrupted" in err
