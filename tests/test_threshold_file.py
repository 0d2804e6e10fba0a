"""The thresholds file shared by calibration and the WAIT policies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fluidopt.errors import InputError
from fluidopt.threshold_file import Segment, Thresholds, ThresholdType, load_thresholds, save_thresholds


def two_types() -> Thresholds:
    return Thresholds(
        "wait",
        types=(
            ThresholdType("short", (1, 20), threshold=3, prompt=512, output=20, rate=15.4),
            ThresholdType("long", (21, 50), threshold=2, prompt_range=(1, 600)),
        ),
        inputs={"epsilon": 0.05},
    )


def test_round_trip(tmp_path: Path):
    path = tmp_path / "t.json"
    save_thresholds(two_types(), path)
    assert load_thresholds(path) == two_types()
    assert json.loads(path.read_text())["schema"] == "fluidopt.thresholds/1"


def test_assign_types_uses_inclusive_ranges_and_first_match():
    th = two_types()
    prompt = np.array([512, 512, 512, 700, 10])
    output = np.array([1, 20, 21, 30, 51])
    # 20 is the last output of "short"; 21 the first of "long"; prompt 700 is outside
    # long's prompt range; output 51 matches no type.
    assert th.assign_types(prompt, output).tolist() == [0, 0, 1, -1, -1]


@pytest.mark.parametrize(
    "segments",
    [
        (Segment(2, 20, 4),),  # does not start at iteration 1
        (Segment(1, 20, 4), Segment(22, 50, 2)),  # gap
        (Segment(1, 20, 0),),  # threshold < 1
    ],
)
def test_bad_segments_are_rejected(segments):
    with pytest.raises(InputError, match="segments"):
        Thresholds("nested-wait", segments=segments)


def test_bad_files_name_the_file(tmp_path: Path):
    missing = tmp_path / "nope.json"
    with pytest.raises(InputError, match="nope.json: cannot read"):
        load_thresholds(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(InputError, match="broken.json: not valid JSON"):
        load_thresholds(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"schema": "other/2"}))
    with pytest.raises(InputError, match="wrong.json: not a fluidopt.thresholds/1 file"):
        load_thresholds(wrong)
    no_types = tmp_path / "no_types.json"
    no_types.write_text(json.dumps({"schema": "fluidopt.thresholds/1", "policy": "wait"}))
    with pytest.raises(InputError, match="no_types.json: a wait thresholds file needs at least one type"):
        load_thresholds(no_types)


def test_failed_save_leaves_no_file(tmp_path: Path):
    path = tmp_path / "t.json"

    class Boom(Thresholds):
        def to_dict(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_thresholds(Boom("wait", types=two_types().types), path)
    assert list(tmp_path.iterdir()) == []


def test_open_upper_bound_and_reserve_round_trip(tmp_path: Path):
    th = Thresholds(
        "wait",
        types=(ThresholdType("short", (1, 20), threshold=1), ThresholdType("long", (21, None), threshold=2)),
        reserve=800,
    )
    path = tmp_path / "t.json"
    save_thresholds(th, path)
    raw = json.loads(path.read_text())
    assert raw["types"][1]["output_range"] == [21, None] and raw["reserve"] == 800
    back = load_thresholds(path)
    assert back == th
    assert back.assign_types(np.array([5, 5, 5]), np.array([20, 21, 10**7])).tolist() == [0, 1, 1]
    # files without the key read as no reserve
    del raw["reserve"]
    path.write_text(json.dumps(raw))
    assert load_thresholds(path).reserve == 0
    with pytest.raises(InputError, match="reserve"):
        Thresholds("wait", types=th.types, reserve=-1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"polcy": "wait"}, r"the file: unknown key\(s\) 'polcy'; missing key\(s\) 'policy' \(expected schema, policy"),
        ({"types": [{"label": "a", "output_range": [1, 5], "treshold": 2}]},
         r"types\[0\]: unknown key\(s\) 'treshold'; missing key\(s\) 'threshold'"),
        ({"types": [{"label": "a", "output_range": [1, 5], "threshold": 2},
                    {"label": "b", "threshold": 1}]}, r"types\[1\]: missing key\(s\) 'output_range'"),
        ({"policy": "nested-wait", "types": [],
          "segments": [{"start": 1, "stop": 5, "threshold": 2, "n": 3}]},
         r"segments\[0\]: unknown key\(s\) 'stop', 'n'; missing key\(s\) 'end' \(expected start, end, threshold\)"),
        ({"types": {"a": 1}}, "types must be a list"),
    ],
)
def test_wrong_keys_are_named(tmp_path: Path, change: dict, message: str):
    data = {"schema": "fluidopt.thresholds/1", "policy": "wait",
            "types": [{"label": "a", "output_range": [1, 5], "threshold": 2}], **change}
    if "polcy" in change:
        del data["policy"]
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=f"t.json: {message}"):
        load_thresholds(path)
