"""scripts/fit_deployments.py: reproducible output that matches the committed files and the data notes.

Reference numbers below are quoted from the notes that come with the profiling data
(SOURCES.md §8 of the shared data and the system-model page: Llama-2-7B on one A100-80GB, ms)
and from SplitwiseSim's perf_model.csv (medians of the repeated measurements, ms). They are
typed in here, not computed by the code under test.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fluidopt.deployment import load_deployment

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "fit_deployments.py"
COMMITTED = REPO / "instances" / "deployments"
NAMES = ("llama2-7b-a100", "llama2-7b-a100-vidur", "llama2-7b-a100-linear", "llama2-70b-2xa100")


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, cwd=REPO
    )


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    """The script's output, written into a fresh temporary folder."""
    out = tmp_path_factory.mktemp("deployments")
    res = run_script("--out", str(out))
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="module")
def fit_module():
    spec = importlib.util.spec_from_file_location("fit_deployments", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fit_deployments"] = module
    spec.loader.exec_module(module)
    return module


def test_writes_exactly_the_deployment_files(fitted):
    assert sorted(p.name for p in fitted.iterdir()) == sorted(f"{n}.yaml" for n in NAMES)


def test_output_matches_committed_files(fitted, fit_module):
    for name in NAMES:
        new = yaml.safe_load((fitted / f"{name}.yaml").read_text())
        old = yaml.safe_load((COMMITTED / f"{name}.yaml").read_text())
        assert new["capacity"] == old["capacity"]
        assert new["time"]["kind"] == old["time"]["kind"]
        for key, value in old["time"].items():
            if key != "kind":
                assert new["time"][key] == pytest.approx(value, rel=1e-5), (name, key)
        assert fit_module.same_provenance(new["provenance"], old["provenance"]), name
        assert not fit_module.same_provenance(new["provenance"], {**old["provenance"], "capacity": "x"})


def test_check_mode(tmp_path):
    ok = run_script("--check")
    assert ok.returncode == 0, ok.stderr
    altered = tmp_path / "altered"
    shutil.copytree(COMMITTED, altered)
    path = altered / "llama2-7b-a100.yaml"
    data = yaml.safe_load(path.read_text())
    data["time"]["c_kv"] *= 1.01
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    bad = run_script("--check", "--out", str(altered))
    assert bad.returncode == 1
    assert "time.c_kv" in bad.stderr


def test_written_files_load_with_the_required_settings(fitted):
    big = load_deployment(str(fitted / "llama2-7b-a100.yaml"))
    assert big.capacity == 118_784 and big.chunk_size == 512 and big.time.kind == "affine"
    lin = load_deployment(str(fitted / "llama2-7b-a100-linear.yaml"))
    assert lin.time.kind == "linear-kv" and lin.capacity == 118_784
    huge = load_deployment(str(fitted / "llama2-70b-2xa100.yaml"))
    assert huge.capacity == 16_492 and huge.time.kind == "affine"
    for dep in (big, lin, huge):
        quality = dep.provenance["fit_quality"]
        assert {"r2", "median_rel_err", "max_rel_err", "points"} <= set(quality["all"])


def test_components_reproduce_the_data_notes(fit_module):
    comp = fit_module.load_vidur_7b(REPO / "instances" / "profiling" / "vidur_a100_llama2_7b")
    # Token-linear operators, 32 layers: 9.28 @ 1, 9.70 @ 64, 12.24 @ 128, 33.4 @ 512,
    # 67.9 @ 1024, 133.5 @ 2048, 261.5 @ 4096 (the notes keep one of two repeated 4096 rows;
    # the script averages them, hence 1%).
    for n, ref in [(1, 9.28), (64, 9.70), (128, 12.24), (512, 33.4), (1024, 67.9), (2048, 133.5), (4096, 261.5)]:
        assert comp.linear_ops(n) == pytest.approx(ref, rel=0.01), n
    # Prefill attention, 32 layers: 6.90e-3·c + 2.92e-6·c² + 3.49e-6·c·kv.
    p1, p2, p3 = comp.prefill_attn
    assert 32 * p1 == pytest.approx(6.90e-3, rel=0.01)
    assert 32 * p2 == pytest.approx(2.92e-6, rel=0.01)
    assert 32 * p3 == pytest.approx(3.49e-6, rel=0.01)
    # Decode attention, 32 layers: 0.0449·B + 2.75e-4·Σkv.
    d1, d2 = comp.decode_attn
    assert 32 * d1 == pytest.approx(0.0449, rel=0.01)
    assert 32 * d2 == pytest.approx(2.75e-4, rel=0.01)
    # CPU overhead: 0.94 + 0.049·B.
    assert comp.cpu[0] == pytest.approx(0.94, rel=0.01)
    assert comp.cpu[1] == pytest.approx(0.049, rel=0.01)


def test_decode_only_subfit_matches_the_notes(fitted):
    # Notes: decode-only step T ≈ 9.81 + 0.120·B + 2.75e-4·ΣKV ms (B = 1…128, context 128…4000).
    # The script's decode grid is not the notes' exact grid, hence 2%.
    sub = yaml.safe_load((fitted / "llama2-7b-a100.yaml").read_text())["provenance"]["decode_only_fit_ms"]
    assert sub["a"] == pytest.approx(9.81, rel=0.02)
    assert sub["b"] == pytest.approx(0.120, rel=0.02)
    assert sub["c"] == pytest.approx(2.75e-4, rel=0.02)
    assert sub["r2"] > 0.999


def _decode_ref_ms(b: int, ctx: int) -> float:
    return 9.81 + 0.120 * b + 2.75e-4 * b * ctx


DECODE_POINTS = [(b, ctx) for b in (1, 8, 32, 64, 128) for ctx in (128, 512, 1024, 2048, 4000)]


def test_affine_predictions_match_decode_reference(fitted):
    """The 5-coefficient model is within 8% of the notes' decode formula over B = 1…128.

    (One affine form also has to fit prefill and mixed batches; the largest gap, about 7%,
    is at B = 1, where the notes' 9.81 ms intercept sits above the shared c0.)
    """
    tm = load_deployment(str(fitted / "llama2-7b-a100.yaml")).time
    for b, ctx in DECODE_POINTS:
        pred_ms = 1000 * tm.iteration_time(b, b * ctx, b)
        assert pred_ms == pytest.approx(_decode_ref_ms(b, ctx), rel=0.08), (b, ctx)


def test_affine_predictions_match_prefill_reference(fitted):
    """Within 13% of the notes' composed single-prompt prefill times (14.2 ms @ 128 … 340 @ 4096)."""
    tm = load_deployment(str(fitted / "llama2-7b-a100.yaml")).time
    for n, ref in [(128, 14.2), (256, 20.8), (512, 38.7), (1024, 79.0), (2048, 161.0), (4096, 340.0)]:
        # One prompt of n tokens: B = 1, footprint n + 1 (token 1 emitted), n new tokens, chunk n.
        pred_ms = 1000 * tm.iteration_time(1, n + 1, n, n * n)
        assert pred_ms == pytest.approx(ref, rel=0.13), n


def test_linear_kv_variant_against_decode_reference(fitted):
    """linear-kv tracks the decode formula within 12% for B ≥ 8 and context ≥ 1024; it has no
    per-sequence term, so it misses by far more at short contexts and large B (not asserted)."""
    tm = load_deployment(str(fitted / "llama2-7b-a100-linear.yaml")).time
    for b in (8, 32, 64, 128):
        for ctx in (1024, 2048, 4000):
            assert 1000 * tm.iteration_time(b, b * ctx) == pytest.approx(_decode_ref_ms(b, ctx), rel=0.12)
    # Its d1 is a per-iteration cost of the order of the KV-read term 2.75e-4 ms per token,
    # nowhere near the whole-batch 0.0115 ms of the [WAIT] paper.
    assert 2e-7 < tm.c_kv < 5e-7


def test_70b_predictions_match_measurements(fitted):
    """SplitwiseSim llama2-70b, a100-80gb, TP 2 (medians of 5 repetitions, ms)."""
    tm = load_deployment(str(fitted / "llama2-70b-2xa100.yaml")).time
    # token_time at prompt 512, 128 generated tokens: mean footprint 512 + 65 per sequence.
    for b, ref in [(1, 54.9), (8, 61.7), (32, 72.2)]:
        assert 1000 * tm.iteration_time(b, b * 577, b) == pytest.approx(ref, rel=0.10), b
    # prompt_time of one prompt of n tokens.
    for n, ref in [(512, 196.9), (1024, 377.1), (2048, 688.1), (4096, 1485.3), (8192, 2990.2)]:
        assert 1000 * tm.iteration_time(1, n + 1, n, n * n) == pytest.approx(ref, rel=0.15), n
