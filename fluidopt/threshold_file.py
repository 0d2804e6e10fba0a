"""The thresholds file: what calibration writes and WAIT / Nested WAIT load.

Schema ``fluidopt.thresholds/1`` (JSON)::

    {
      "schema": "fluidopt.thresholds/1",
      "policy": "wait" | "nested-wait",
      "types":    [ {"label": str, "output_range": [lo, hi | null],  # wait only
                     "prompt_range": [lo, hi | null] | null,
                     "prompt": s, "output": o, "rate": λ (1/s), "threshold": n}, ... ],
      "segments": [ {"start": b_{k-1} + 1, "end": b_k, "threshold": n_k}, ... ],  # nested-wait
      "reserve":  R,                                  # optional, KV tokens (default 0)
      "inputs":   { deployment, workload digest, ε, δ, horizon, method, ... }
    }

For ``wait``, a request belongs to the first type whose ``output_range`` (and
``prompt_range`` when given) contains its true lengths, ranges inclusive; an upper
bound ``null`` means open to +∞ (calibration writes its last output bin that way, so a
request longer than every one in the calibration sample still has a type). For
``nested-wait``, segments cover service iterations 1..b_K contiguously.

``reserve`` (optional, added within schema 1: files without it read as 0) is the
admission reserve R in KV tokens: the policy admits new requests only while the next
iteration ends at or below C − R, so the decode growth of the residents has R tokens of
room before the engine has to evict. Calibration sizes it (``fluidopt.calibrate``);
``nested-wait`` applies it; ``wait`` does not read it yet (its guard uses C).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fluidopt.errors import InputError
from fluidopt.io import atomic_path, read_mapping

SCHEMA = "fluidopt.thresholds/1"


@dataclass(frozen=True)
class ThresholdType:
    """One WAIT type: a box of (prompt, output) lengths with its threshold."""

    label: str
    output_range: tuple[int, int | None]  # upper bound None: open to +∞
    threshold: int
    prompt_range: tuple[int, int | None] | None = None
    prompt: float | None = None
    output: float | None = None
    rate: float | None = None


@dataclass(frozen=True)
class Segment:
    """One Nested WAIT segment: service iterations start..end (inclusive)."""

    start: int
    end: int
    threshold: int


@dataclass(frozen=True)
class Thresholds:
    """Thresholds for ``wait`` (types) or ``nested-wait`` (segments)."""

    policy: str
    types: tuple[ThresholdType, ...] = ()
    segments: tuple[Segment, ...] = ()
    inputs: dict[str, Any] = field(default_factory=dict)
    reserve: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.reserve, bool) or int(self.reserve) != self.reserve or self.reserve < 0:
            raise InputError(f"reserve must be an integer number of KV tokens ≥ 0 (got {self.reserve!r})")
        if self.policy == "wait":
            if not self.types:
                raise InputError("a wait thresholds file needs at least one type")
            for t in self.types:
                hi = t.output_range[1]
                if t.threshold < 1 or (hi is not None and t.output_range[0] > hi):
                    raise InputError(f"type {t.label!r}: threshold ≥ 1 and a non-empty output_range needed")
        elif self.policy == "nested-wait":
            if not self.segments:
                raise InputError("a nested-wait thresholds file needs at least one segment")
            expected = 1
            for s in self.segments:
                if s.start != expected or s.end < s.start or s.threshold < 1:
                    raise InputError(
                        f"segments must cover iterations 1..b_K contiguously with thresholds ≥ 1 "
                        f"(bad segment {s.start}..{s.end})"
                    )
                expected = s.end + 1
        else:
            raise InputError(f"unknown thresholds policy {self.policy!r} (wait, nested-wait)")

    def assign_types(self, prompt: np.ndarray, output: np.ndarray) -> np.ndarray:
        """Type index (position in ``types``) of every request; −1 where none matches."""
        kind = np.full(len(output), -1, dtype=np.int64)
        for j, t in enumerate(self.types):
            hit = (kind < 0) & (output >= t.output_range[0])
            if t.output_range[1] is not None:
                hit &= output <= t.output_range[1]
            if t.prompt_range is not None:
                hit &= prompt >= t.prompt_range[0]
                if t.prompt_range[1] is not None:
                    hit &= prompt <= t.prompt_range[1]
            kind[hit] = j
        return kind

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": SCHEMA, "policy": self.policy}
        if self.types:
            out["types"] = [asdict(t) for t in self.types]
        if self.segments:
            out["segments"] = [asdict(s) for s in self.segments]
        if self.reserve:
            out["reserve"] = int(self.reserve)
        out["inputs"] = self.inputs
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "") -> Thresholds:
        """Validate and build; an error names the file, the entry and the unknown and
        missing keys."""
        if data.get("schema") != SCHEMA:
            raise InputError(f"not a {SCHEMA} file (schema {data.get('schema')!r})", source=source)
        _check_keys(data, _FILE_KEYS, "the file", source)
        for key, keys in (("types", _TYPE_KEYS), ("segments", _SEGMENT_KEYS)):
            entries = data.get(key, [])
            if not isinstance(entries, list):
                raise InputError(f"{key} must be a list", source=source)
            for i, entry in enumerate(entries):
                if not isinstance(entry, dict):
                    raise InputError(f"{key}[{i}] must be a mapping (got {entry!r})", source=source)
                _check_keys(entry, keys, f"{key}[{i}]", source)
        try:
            types = tuple(
                ThresholdType(
                    **{
                        **t,
                        "output_range": tuple(t["output_range"]),
                        "prompt_range": tuple(t["prompt_range"]) if t.get("prompt_range") else None,
                    }
                )
                for t in data.get("types", [])
            )
            segments = tuple(Segment(**s) for s in data.get("segments", []))
            return cls(data["policy"], types, segments, dict(data.get("inputs", {})), data.get("reserve", 0))
        except (KeyError, TypeError) as exc:
            raise InputError(f"malformed thresholds file ({exc})", source=source) from None
        except InputError as exc:
            raise InputError(str(exc), source=source) from None


#: (required, optional) keys of the file, of a WAIT type and of a Nested WAIT segment.
_FILE_KEYS = (("schema", "policy"), ("types", "segments", "reserve", "inputs"))
_TYPE_KEYS = (("label", "output_range", "threshold"), ("prompt_range", "prompt", "output", "rate"))
_SEGMENT_KEYS = (("start", "end", "threshold"), ())


def _check_keys(entry: dict[str, Any], keys: tuple[tuple[str, ...], tuple[str, ...]], where: str, source: str) -> None:
    required, optional = keys
    unknown = [k for k in entry if k not in required and k not in optional]
    missing = [k for k in required if k not in entry]
    if unknown or missing:
        parts = [f"unknown key(s) {', '.join(map(repr, unknown))}"] if unknown else []
        parts += [f"missing key(s) {', '.join(map(repr, missing))}"] if missing else []
        expected = ", ".join(required) + (f" and optionally {', '.join(optional)}" if optional else "")
        raise InputError(f"{where}: {'; '.join(parts)} (expected {expected})", source=source)


def save_thresholds(thresholds: Thresholds, path: str | Path) -> None:
    """Write atomically (no half-written file on failure)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(thresholds.to_dict(), indent=2) + "\n")


def load_thresholds(path: str | Path) -> Thresholds:
    """Read and validate a thresholds file; errors name the file."""
    data = read_mapping(Path(path), fmt="json", what="a thresholds mapping")
    return Thresholds.from_dict(data, source=str(path))
