"""fluidopt's schedulers inside vLLM (extra ``vllm``; run by ``.ci/run-vllm``, offline).

Parity: the same request stream and KV capacity (in blocks) through the plug-in (vLLM's
``schedule()`` driven directly, :func:`~fluidopt.integrations.vllm.replay.replay`) and
through the executor with vLLM's mechanics (:func:`~fluidopt.integrations.vllm.parity.executor_trace`)
must admit, preempt and complete the same requests in every iteration, after the one
documented normalisation (an executor admission evicted in its own iteration is a vLLM
request that stayed waiting). End to end: ``LLM.generate`` on a tiny Llama with dummy
weights under a fluidopt scheduler.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

if os.environ.get("FLUIDOPT_REQUIRE_VLLM"):
    import vllm  # noqa: F401  (.ci/run-vllm: a failed install must fail, not skip)
else:
    pytest.importorskip("vllm", reason="the vllm extra is not installed (.ci/run-vllm runs these tests)")

from fluidopt.executor.policy import make_policy  # noqa: E402
from fluidopt.integrations.vllm import (  # noqa: E402
    FCFSScheduler,
    FluidoptScheduler,
    MCSFScheduler,
    PolicySchedulerMixin,
    SVFScheduler,
    WaitScheduler,
)
from fluidopt.integrations.vllm.parity import compare, executor_trace  # noqa: E402
from fluidopt.integrations.vllm.replay import build_scheduler, replay, tiny_model_dir  # noqa: E402
from fluidopt.errors import InputError  # noqa: E402
from fluidopt.threshold_file import Thresholds, ThresholdType, save_thresholds  # noqa: E402
from fluidopt.workload import Workload  # noqa: E402

pytestmark = pytest.mark.vllm

BLOCK = 16


def _stream(kind: str, seed: int) -> tuple[Workload, int]:
    """A request stream in the system model's terms and its KV blocks (vLLM's null block
    included). ``burst``: 16 requests at once, roomy memory; ``poisson``: 40 requests over
    60 rounds; ``tight``: 40 requests in 6 usable blocks, with point predictions of half
    the true output (the future-memory check under-reserves), so residents outgrow the
    memory and are preempted."""
    rng = np.random.default_rng(seed)
    n = 16 if kind == "burst" else 40
    out = rng.integers(1, 40, n)
    arrival = np.zeros(n) if kind == "burst" else np.sort(rng.integers(0, 60, n)).astype(float)
    df = pd.DataFrame({"arrival": arrival, "prompt": rng.integers(5, 60, n), "output": out})
    if kind == "tight":
        df["pred"] = np.maximum(out // 2, 1)
    return Workload.from_frame(df), {"burst": 16, "poisson": 12, "tight": 7}[kind]


@pytest.fixture(scope="module")
def thresholds(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two WAIT types by output length (short ≤ 15 tokens: batches of 2; long: of 3)."""
    path = tmp_path_factory.mktemp("wait") / "thresholds.json"
    th = Thresholds("wait", (ThresholdType("short", (1, 15), 2), ThresholdType("long", (16, None), 3)))
    save_thresholds(th, path)
    return str(path)


CASES = {
    "wait": (WaitScheduler, True),
    "mc-sf": (MCSFScheduler, False),
    "svf": (SVFScheduler, False),
    "fcfs": (FCFSScheduler, False),
}


@pytest.mark.parametrize("kind", ["burst", "poisson", "tight"])
@pytest.mark.parametrize("name", list(CASES))
def test_plugin_decides_as_the_executor(name: str, kind: str, thresholds: str) -> None:
    cls, needs_file = CASES[name]
    w, blocks = _stream(kind, seed=3)
    cfg = {"fluidopt": {"thresholds": thresholds}} if needs_file else {}
    if name == "wait" and w.pred is not None:
        # WAIT types requests by their lengths; the executor knows the true ones, the
        # plug-in the predicted ones: give both the same (tight memory still preempts)
        w = w.replace(pred=None)
    params = {"thresholds": thresholds} if needs_file else {}
    ex = executor_trace(w, make_policy(name, **params), num_blocks=blocks, block_size=BLOCK)
    vt = replay(w, cls, num_blocks=blocks, block_size=BLOCK, additional_config=cfg)
    assert compare(ex, vt) == []
    assert len(vt.completion) == len(w)  # every request completed
    assert vt.completion_order() == ex.completion_order()
    if kind == "tight":
        assert ex.preemptions > 0 and vt.preemptions == ex.preemptions


def test_parity_holds_on_more_seeds(thresholds: str) -> None:
    """Tight memory, other seeds, each exported policy: still step for step."""
    for seed in (5, 8):
        w, blocks = _stream("tight", seed)
        for name, (cls, needs_file) in CASES.items():
            wl = w.replace(pred=None) if name == "wait" else w
            params = {"thresholds": thresholds} if needs_file else {}
            cfg = {"fluidopt": {"thresholds": thresholds}} if needs_file else {}
            ex = executor_trace(wl, make_policy(name, **params), num_blocks=blocks, block_size=BLOCK)
            vt = replay(wl, cls, num_blocks=blocks, block_size=BLOCK, additional_config=cfg)
            assert compare(ex, vt) == [], (name, seed)


def test_generic_scheduler_takes_the_policy_from_the_config() -> None:
    w, blocks = _stream("poisson", seed=4)
    vt = replay(w, FluidoptScheduler, num_blocks=blocks, block_size=BLOCK,
                additional_config={"fluidopt": {"policy": "svf"}})
    ex = executor_trace(w, make_policy("svf"), num_blocks=blocks, block_size=BLOCK)
    assert compare(ex, vt) == []


def test_bad_settings_stop_the_scheduler_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="WAIT needs 'thresholds'"):
        build_scheduler(WaitScheduler, num_blocks=8, block_size=BLOCK)
    with pytest.raises(InputError, match="not a fluidopt.thresholds/1 file|cannot read|No such file|not found"):
        build_scheduler(WaitScheduler, num_blocks=8, block_size=BLOCK,
                        additional_config={"fluidopt": {"thresholds": str(tmp_path / "missing.json")}})
    with pytest.raises(InputError, match="not exported to vLLM"):
        build_scheduler(FluidoptScheduler, num_blocks=8, block_size=BLOCK,
                        additional_config={"fluidopt": {"policy": "sarathi"}})


# ---------------------------------------------------------------------------- end to end
_GENERATE = r"""
import json, os, sys
os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
from vllm import LLM, SamplingParams
from fluidopt.integrations.vllm import PolicySchedulerMixin
cls, model, cfg = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
admitted = []  # per step that admits: the request indices (prompt i has 20 + 3i tokens)
_schedule = PolicySchedulerMixin.schedule
def schedule(self, *a, **k):
    out = _schedule(self, *a, **k)
    new = sorted((len(d.prompt_token_ids) - 20) // 3 for d in out.scheduled_new_reqs)
    if new:
        admitted.append(new)
    return out
PolicySchedulerMixin.schedule = schedule
llm = LLM(model=model, load_format="dummy", skip_tokenizer_init=True, enforce_eager=True,
          scheduler_cls="fluidopt.integrations.vllm." + cls, additional_config=cfg,
          num_gpu_blocks_override=5, kv_cache_memory_bytes=64 << 20, block_size=32, max_model_len=128, max_num_seqs=16,
          enable_prefix_caching=False, async_scheduling=cls.startswith("Async"))
lengths = [5 + 4 * (7 - i) for i in range(8)]
prompts = [{"prompt_token_ids": [3 + (i * 7 + k) % 900 for k in range(20 + 3 * i)]} for i in range(8)]
params = [SamplingParams(max_tokens=o, ignore_eos=True, extra_args={"fluidopt_pred": o}) for o in lengths]
outs = llm.generate(prompts, params, use_tqdm=False)
sched = llm.llm_engine.engine_core.engine_core.scheduler
print("RESULT " + json.dumps({
    "lengths": lengths, "generated": [len(o.outputs[0].token_ids) for o in outs],
    "scheduler": type(sched).__name__, "policy": sched.fluidopt_policy.name, "decisions": sched.decisions,
    "admitted": admitted,
}))
"""


def _generate(cls: str, cfg: dict) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _GENERATE, cls, tiny_model_dir(), json.dumps(cfg)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_llm_generate_with_mcsf() -> None:
    """Eight requests that cannot all fit (C = 4 blocks of 32 tokens) complete with their
    max_tokens under MC-SF, admitted in the real engine step by step as the executor
    admits them (its first admissions, in the s = p − 1 terms of the plug-in)."""
    res = _generate("MCSFScheduler", {})
    assert res["generated"] == res["lengths"]
    assert (res["scheduler"], res["policy"]) == ("MCSFScheduler", "mc-sf")
    assert res["decisions"] >= max(res["lengths"])
    w = Workload.from_frame(pd.DataFrame({
        "arrival": 0.0, "prompt": [20 + 3 * i - 1 for i in range(8)], "output": res["lengths"],
    }))
    ex = executor_trace(w, make_policy("mc-sf"), num_blocks=5, block_size=32)
    seen: set[int] = set()
    expected = []
    for clock in sorted(ex.steps):
        new = sorted(set(ex.steps[clock].admitted) - seen)
        seen |= set(new)
        if new:
            expected.append(new)
    assert res["admitted"] == expected
    assert expected[0] != [0]  # not first come, first served


def test_llm_generate_with_async_wait_from_calibrate(tmp_path: Path) -> None:
    """The deployment path of docs/vllm.md: ``fluidopt calibrate`` writes the thresholds
    file, vLLM's asynchronous scheduler runs WAIT with it."""
    trace = tmp_path / "trace.csv"
    rng = np.random.default_rng(0)
    n = 400
    pd.DataFrame({
        "arrival": np.sort(rng.uniform(0, 100, n)).round(3),
        "prompt": rng.integers(20, 42, n),
        "output": rng.integers(5, 34, n),
    }).to_csv(trace, index=False)
    th = tmp_path / "thresholds.json"
    cal = subprocess.run(
        [sys.executable, "-m", "fluidopt", "calibrate", "-w", str(trace), "-d", "llama2-7b-a100",
         "--policy", "wait", "--output-bins", "2", "-o", str(th)],
        capture_output=True, text=True, timeout=300,
    )
    assert cal.returncode == 0, cal.stderr
    res = _generate("AsyncWaitScheduler", {"fluidopt": {"thresholds": str(th), "max_wait": 0.05}})
    assert res["generated"] == res["lengths"]
    assert (res["scheduler"], res["policy"]) == ("AsyncWaitScheduler", "wait")
    assert sorted(i for step in res["admitted"] for i in step) == list(range(8))


def test_overhead_benchmark_quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """benchmarks/vllm/overhead.py --quick runs, and every plug-in's trace there is the executor's."""
    from conftest import REPO

    monkeypatch.syspath_prepend(str(REPO / "benchmarks" / "vllm"))
    import overhead

    rows = overhead.main(["--quick"])["rows"]
    assert [r["scheduler"] for r in rows] == ["vllm default", "fcfs", "mc-sf", "svf", "wait"]
    assert all(r["agrees_with_executor"] for r in rows[1:])
    assert all(r["steps"] > 0 and r["us_per_step"] > 0 for r in rows)


def test_the_serve_commands_of_the_guide_parse() -> None:
    """Every ``vllm serve`` command in docs/vllm.md is a valid vLLM command line whose
    scheduler class resolves and whose fluidopt settings are accepted."""
    import shlex

    from conftest import REPO
    from vllm.engine.arg_utils import EngineArgs
    from vllm.utils.argparse_utils import FlexibleArgumentParser
    from vllm.utils.import_utils import resolve_obj_by_qualname

    from fluidopt.integrations.vllm.settings import Settings

    text = (REPO / "docs" / "vllm.md").read_text().replace("\\\n", " ")
    commands = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("vllm serve MODEL")]
    assert len(commands) >= 2
    parser = EngineArgs.add_cli_args(FlexibleArgumentParser())
    for line in commands:
        argv = shlex.split(line)[3:]  # after "vllm serve MODEL"
        args = EngineArgs.from_cli_args(parser.parse_args(["--model", tiny_model_dir(), *argv]))
        cls = resolve_obj_by_qualname(args.scheduler_cls)
        assert issubclass(cls, PolicySchedulerMixin)
        Settings.from_config(args.additional_config, cls.policy_name)


def test_the_guides_parity_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python example of docs/vllm.md, on a small CSV of its own."""
    from conftest import REPO

    text = (REPO / "docs" / "vllm.md").read_text()
    code = text.split("## Checking a policy on your own stream", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    w, _ = _stream("poisson", seed=2)
    w.to_frame()[["arrival", "prompt", "output"]].to_csv(tmp_path / "trace.csv", index=False)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/vllm.md", "exec"), {})
