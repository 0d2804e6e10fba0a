"""How a fluidopt scheduler inside vLLM is configured (pure fluidopt, no vLLM import).

Engine-wide settings come from vLLM's additional config under the key ``"fluidopt"``
(``vllm serve … --additional-config '{"fluidopt": {...}}'``, or
``LLM(additional_config={...})``):

``policy``
    Registry name of the policy; fixed by the named classes (``WaitScheduler`` is
    ``wait`` …), required by the generic ``FluidoptScheduler``.
``thresholds``
    Path of a thresholds file written by ``fluidopt calibrate --policy wait`` (required
    for WAIT).
``params``
    Further keyword parameters of the policy (as ``fluidopt simulate`` takes them), e.g.
    ``{"reserve": 2000}`` for WAIT.
``prediction_key``
    The key of a request's predicted output length in its sampling parameters'
    ``extra_args`` (default ``"fluidopt_pred"``; OpenAI server: ``"vllm_xargs"``).
``max_wait``
    WAIT only: seconds after which a request that has not run (waiting, or resident and
    paused) makes every type eligible, as the executor's drain rule does after the last
    arrival (default 1.0; ``null``: never). WAIT holds back a type until n_j of its
    requests wait; an engine serving an open stream has no "last arrival", so without
    this bound a type whose traffic stops would wait, and hold its KV, for ever.

Per request, the predicted output length õ is ``extra_args[prediction_key]`` (a positive
integer); missing or invalid, it is the request's ``max_tokens``, an upper bound. WAIT
types a request by (s, õ); one that matches no type of the thresholds file (shorter
than every calibrated type, say) is served as the nearest type (:func:`nearest_type_length`)
rather than stopping the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fluidopt.errors import InputError

#: Policies exported to vLLM (each one parity-tested against the executor).
SUPPORTED = ("wait", "mc-sf", "svf", "fcfs")
CONFIG_KEY = "fluidopt"
_KEYS = ("policy", "thresholds", "params", "prediction_key", "max_wait")


@dataclass(frozen=True)
class Settings:
    """The fluidopt part of vLLM's additional config, validated."""

    policy: str
    params: dict[str, Any] = field(default_factory=dict)
    prediction_key: str = "fluidopt_pred"
    max_wait: float | None = 1.0

    @classmethod
    def from_config(cls, additional_config: Any, policy: str | None = None) -> Settings:
        """Read ``additional_config["fluidopt"]``; ``policy`` fixes the policy (named classes).

        Raises
        ------
        InputError
            Unknown keys or policy, a policy given twice differently, WAIT without a
            thresholds file, a bad ``max_wait``.
        """
        where = f"additional_config[{CONFIG_KEY!r}]"
        raw = (additional_config or {}).get(CONFIG_KEY, {}) if isinstance(additional_config, dict) else {}
        if not isinstance(raw, dict):
            raise InputError(f"{where} must be a mapping (got {type(raw).__name__})")
        unknown = sorted(set(raw) - set(_KEYS))
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(_KEYS)}")
        name = raw.get("policy", policy)
        if policy is not None and name != policy:
            raise InputError(f"{where}: policy {name!r} given to the {policy!r} scheduler")
        if name is None:
            raise InputError(f"{where}: 'policy' is required (one of {', '.join(SUPPORTED)})")
        if name not in SUPPORTED:
            raise InputError(f"{where}: policy {name!r} is not exported to vLLM; supported: {', '.join(SUPPORTED)}")
        params = raw.get("params", {})
        if not isinstance(params, dict):
            raise InputError(f"{where}['params'] must be a mapping of policy parameters")
        params = dict(params)
        if "thresholds" in raw:
            params["thresholds"] = str(raw["thresholds"])
        if name == "wait" and "thresholds" not in params:
            raise InputError(f"{where}: WAIT needs 'thresholds', a file from `fluidopt calibrate --policy wait`")
        max_wait = raw.get("max_wait", 1.0)
        if max_wait is not None:
            if isinstance(max_wait, bool) or not isinstance(max_wait, (int, float)) or not max_wait >= 0:
                raise InputError(f"{where}['max_wait'] must be a number of seconds ≥ 0 or null (got {max_wait!r})")
            max_wait = float(max_wait)
        key = raw.get("prediction_key", "fluidopt_pred")
        if not isinstance(key, str) or not key:
            raise InputError(f"{where}['prediction_key'] must be a non-empty string")
        return cls(policy=name, params=params, prediction_key=key, max_wait=max_wait)

    def make_policy(self) -> Any:
        """The fluidopt policy instance (its own validation errors are InputErrors)."""
        from fluidopt.executor.policy import make_policy

        return make_policy(self.policy, **self.params)


def predicted_output(extra_args: dict[str, Any] | None, max_tokens: int, key: str = "fluidopt_pred") -> int:
    """õ of a request: ``extra_args[key]`` if it is a positive integer, else ``max_tokens``."""
    value = (extra_args or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
        return max(int(max_tokens), 1)
    return int(value)


def nearest_type_length(thresholds: Any, prompt: int, predicted: int) -> int:
    """õ moved into the output range of the nearest WAIT type when (s, õ) matches none.

    Types whose prompt range holds s are preferred; among them the one whose output range
    is closest to õ. Returns õ unchanged when a type matches.
    """
    import numpy as np

    s, o = np.array([prompt]), np.array([predicted])
    if thresholds.assign_types(s, o)[0] >= 0:
        return int(predicted)
    types = [
        t for t in thresholds.types
        if t.prompt_range is None
        or (t.prompt_range[0] <= prompt and (t.prompt_range[1] is None or prompt <= t.prompt_range[1]))
    ] or list(thresholds.types)

    def clamp(t: Any) -> int:
        lo, hi = t.output_range
        return max(lo, predicted) if hi is None else min(max(lo, predicted), hi)

    return min((clamp(t) for t in types), key=lambda x: abs(x - predicted))
