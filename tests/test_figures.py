"""Plotting functions: they draw what they are given (checked on the artists)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fluidopt import figures


def sweep_rows() -> pd.DataFrame:
    rows = []
    for policy, base in (("wait", 1.0), ("sarathi", 2.0)):
        for rate in (10, 20):
            for seed, noise in ((0, -0.5), (1, 0.5)):
                rows.append({"policy": policy, "workload.rate": rate, "seed": seed,
                             "mean_latency": base * rate + noise})
    return pd.DataFrame(rows)


def test_mean_and_std_over_seeds():
    stats = figures.mean_and_std(sweep_rows(), "workload.rate", "mean_latency", "policy")
    row = stats[(stats.policy == "sarathi") & (stats["workload.rate"] == 20)].iloc[0]
    # seeds give 40 − 0.5 and 40 + 0.5: mean 40, sample std sqrt(0.5)
    assert row["mean"] == 40.0 and np.isclose(row["std"], np.sqrt(0.5)) and row["count"] == 2


def test_latency_vs_rate_draws_policies_and_the_fluid_limit(tmp_path):
    fig = figures.latency_vs_rate(sweep_rows(), fluid_limit=23.5, observed_limits={"wait": 22.0})
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(labels) == ["fluid limit 23.5/s", "sarathi", "wait"]
    vertical = [line.get_xdata()[0] for line in ax.get_lines() if len(set(line.get_xdata())) == 1]
    assert 23.5 in vertical and 22.0 in vertical
    figures.save(fig, str(tmp_path / "f.png"))
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_solve_time_profile_counts_only_closed_instances():
    frame = pd.DataFrame({"formulation": ["a"] * 4, "seconds": [1.0, 2.0, 60.0, 3.0],
                          "closed": [True, True, False, True]})
    ax = figures.solve_time_profile(frame).axes[0]
    (line,) = ax.get_lines()
    # three of four closed: the profile ends at 3/4, never reaching 1
    assert np.isclose(line.get_ydata()[-1], 0.75)
    assert "3/4 closed" in ax.get_legend().get_texts()[0].get_text()


def test_throughput_over_time_bins_completed_tokens():
    completions = np.array([1.0, 2.0, 12.0, np.nan])
    tokens = np.array([10, 20, 30, 99])
    ax = figures.throughput_over_time(completions, tokens, bin_seconds=10.0).axes[0]
    (line,) = ax.get_lines()
    # bin [0,10): 30 tokens → 3 tokens/s; bin [10,20): 30 → 3; the unfinished one is ignored
    assert line.get_ydata().tolist() == [3.0, 3.0]


def test_memory_vs_segments_stacks_parts():
    frame = pd.DataFrame({"segments": [1, 2, 4], "base_memory": [100.0, 80.0, 70.0], "buffer": [0.0, 15.0, 40.0]})
    ax = figures.memory_vs_segments(frame).axes[0]
    total = [line for line in ax.get_lines() if line.get_label() == "total"][0]
    assert total.get_ydata().tolist() == [100.0, 95.0, 110.0]


def test_quick_figures_are_marked(tmp_path):
    """A quick run's figure says so on the image and in the PNG's Description."""
    import matplotlib.pyplot as plt
    from PIL import Image

    from fluidopt.reproduce import NotebookEnv

    for quick in (True, False):
        fig = plt.figure()
        texts = fig.texts  # the list the stamp goes to (the figure is closed after saving)
        path = NotebookEnv("nb", quick=quick, out=tmp_path, workers=None).save_figure(fig, f"q{quick}")
        stamped = [t.get_text() for t in texts]
        description = Image.open(path).info.get("Description")
        if quick:
            assert stamped == [figures.QUICK_MARK] and description == figures.QUICK_MARK
        else:
            assert stamped == [] and description is None
