"""Deployments: KV capacity and iteration-time models.

One served model on one GPU kind. Every time in this module is in **seconds** and every
memory amount in **KV tokens**. The three iteration-time models of the system model share
one affine form

    τ = c0 + c_seq·B + c_kv·ΣKV + c_new·N_new + c_pf2·Σ chunk²

with B the sequences in the batch, ΣKV their end-of-iteration footprints, N_new the new
tokens processed (prefill tokens plus one per decoding sequence) and ``chunk`` the prefill
tokens of each prefilling sequence. ``linear-kv`` is the case c_seq = c_new = c_pf2 = 0;
``unit`` is τ = 1 for every iteration (arrivals and decisions on integer rounds).

Shipped deployments live in ``instances/deployments/*.yaml`` (package ``fluidopt.instances``);
the fitted ones are written by ``scripts/fit_deployments.py``. The file schema is
:meth:`Deployment.to_dict`: ``name``, ``capacity`` (tokens, or ``null`` = given per instance),
``time`` (``kind`` and the coefficients in s), optional ``max_batch``, ``max_tokens``,
``chunk_size``, ``block_size``, the engine settings ``token_budget``, ``preemption``,
``victim``, ``cpu_overhead``, ``iteration_time`` and ``profile_time`` (see
:class:`Deployment` and ``docs/engine-settings.md``), ``description`` and ``provenance``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fluidopt.errors import InputError
from fluidopt.io import read_mapping

TimeKind = Literal["unit", "linear-kv", "affine"]
TIME_KINDS: tuple[str, ...] = ("unit", "linear-kv", "affine")
#: Engine settings with a fixed set of values; the first one is the default (today's engine).
ENGINE_CHOICES: dict[str, tuple[str, ...]] = {
    "token_budget": ("sum", "padded"),
    "preemption": ("restart", "recompute"),
    "victim": ("policy", "latest-arrival", "latest-admission"),
    "iteration_time": ("affine", "profile"),
}
#: Coefficient names of the affine form, in file order.
COEFFICIENTS: tuple[str, ...] = ("c0", "c_seq", "c_kv", "c_new", "c_pf2")


def _time_problem(kind: Any, coeffs: dict[str, Any]) -> tuple[str, str] | None:
    """First problem with a time model's fields as (field, message), or None if valid."""
    if kind not in TIME_KINDS:
        return "kind", f"unknown time model kind {kind!r} (unit, linear-kv, affine)"
    for name in COEFFICIENTS:
        value = coeffs.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            return name, f"must be a number (got {value!r})"
        if not math.isfinite(value) or value < 0:
            return name, f"must be finite and ≥ 0 (got {value!r})"
    if kind == "unit":
        if float(coeffs.get("c0", 1.0)) != 1.0:
            return "c0", "the unit time model has τ = 1 (c0 = 1)"
        for name in COEFFICIENTS[1:]:
            if coeffs.get(name, 0.0):
                return name, "the unit time model has no coefficient besides c0 = 1"
    elif kind == "linear-kv":
        for name in ("c_seq", "c_new", "c_pf2"):
            if coeffs.get(name, 0.0):
                return name, "a linear-kv time model has only c0 (d0) and c_kv (d1)"
    if not coeffs.get("c0", 0.0) > 0:
        return "c0", "the fixed iteration cost c0 must be > 0"
    return None


def volume(prompt: np.ndarray | float, output: np.ndarray | float) -> np.ndarray | float:
    """KV-time volume V = o·s + o(o+1)/2 (token·iterations) of a request with prompt s, output o.

    Σ of the end-of-iteration footprints s + j over its service iterations j = 1…o.
    """
    s = np.asarray(prompt, dtype=np.float64)
    o = np.asarray(output, dtype=np.float64)
    v = o * s + o * (o + 1) / 2
    return v if np.ndim(v) else float(v)


@dataclass(frozen=True)
class TimeModel:
    """Iteration-time model (seconds per iteration).

    Attributes
    ----------
    kind
        ``"unit"``, ``"linear-kv"`` or ``"affine"``.
    c0
        Fixed cost of an iteration, s (= d0 of [WAIT] for linear-kv; 1 for unit).
    c_seq
        Cost per sequence in the batch, s.
    c_kv
        Cost per cached KV token read, s per token (= d1 of [WAIT]).
    c_new
        Cost per new token processed, s per token.
    c_pf2
        Cost per squared prefill-chunk token, s per token².
    """

    kind: TimeKind
    c0: float
    c_seq: float = 0.0
    c_kv: float = 0.0
    c_new: float = 0.0
    c_pf2: float = 0.0

    def __post_init__(self) -> None:
        problem = _time_problem(self.kind, {name: getattr(self, name) for name in COEFFICIENTS})
        if problem is not None:
            raise InputError(problem[1], field=problem[0])

    @classmethod
    def unit(cls) -> TimeModel:
        """τ = 1 per iteration: the model of [KV], [ROB], [VAR] and the MIP."""
        return cls("unit", 1.0)

    @classmethod
    def linear_kv(cls, d0: float, d1: float) -> TimeModel:
        """[WAIT]'s model τ = d0 + d1·ΣKV (d0 in s, d1 in s per KV token)."""
        return cls("linear-kv", float(d0), c_kv=float(d1))

    @property
    def is_unit(self) -> bool:
        return self.kind == "unit"

    def coefficients(self) -> dict[str, float]:
        """The five coefficients of the affine form (s, s/token, s/token²)."""
        return {name: float(getattr(self, name)) for name in COEFFICIENTS}

    def iteration_time(
        self,
        batch_size: np.ndarray | float,
        kv_sum: np.ndarray | float,
        new_tokens: np.ndarray | float = 0.0,
        chunk_sq_sum: np.ndarray | float = 0.0,
    ) -> np.ndarray | float:
        """Duration of an iteration (s); vectorised over its arguments.

        The arguments broadcast against each other (numpy rules); the result is a float when
        all of them are scalars and an array of the broadcast shape otherwise. The unit
        model returns 1 for every iteration.

        Parameters
        ----------
        batch_size
            Sequences in the batch, B.
        kv_sum
            Sum of their end-of-iteration footprints, tokens.
        new_tokens
            Prefill tokens plus one per decoding sequence.
        chunk_sq_sum
            Sum over prefilling sequences of (prefill tokens this iteration)², tokens².
        """
        args = (batch_size, kv_sum, new_tokens, chunk_sq_sum)
        if all(np.ndim(a) == 0 for a in args):
            # The engine calls this once per iteration with scalars: keep it plain floats.
            if self.kind == "unit":
                return 1.0
            return float(
                self.c0
                + self.c_seq * batch_size
                + self.c_kv * kv_sum
                + self.c_new * new_tokens
                + self.c_pf2 * chunk_sq_sum
            )
        b, kv, new, sq = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in args))
        if self.kind == "unit":
            return np.ones(b.shape)
        return self.c0 + self.c_seq * b + self.c_kv * kv + self.c_new * new + self.c_pf2 * sq

    def marginal_work(
        self,
        prompt: np.ndarray | float,
        output: np.ndarray | float,
        chunk_size: int | None = None,
    ) -> np.ndarray | float:
        """Per-request marginal work u (s): the request's additive share of its iterations.

        u is the sum, over the iterations the request takes part in, of the terms of τ that
        it adds: c_seq + c_kv·(its footprint) + c_new·(its new tokens) + c_pf2·(its chunk)².
        The fixed cost c0 is shared by the whole batch and is not included.

        Whole-prompt prefill (``chunk_size`` None or ≥ s): the first service iteration
        prefills all s tokens (chunk s, s new tokens) and emits token 1; each of the o − 1
        later ones adds one token; the footprint in service iteration j is s + j, so

            u = o·c_seq + c_kv·V + c_new·(s + o − 1) + c_pf2·s²,  V = o·s + o(o+1)/2.

        Chunked prefill with chunk k < s (the convention of the system model): m = ⌈s/k⌉
        prefill iterations; the first m − 1 process k tokens each and emit nothing
        (footprints k, 2k, …, (m−1)k), the m-th processes the remaining r = s − (m−1)k
        tokens and emits token 1 (footprint s + 1), then o − 1 decode iterations follow:

            u = (o + m − 1)·c_seq + c_kv·(V + k·m(m−1)/2) + c_new·(s + o − 1)
                + c_pf2·((m−1)·k² + r²).

        For linear-kv this is d1·V with whole prompts; for the unit model it is 0 (τ does
        not depend on the batch).

        Hand-worked example (c0 = 1, c_seq = 2, c_kv = 3, c_new = 5, c_pf2 = 7; s = 3, o = 2):

        - whole prompt: iteration 1 has footprint 4, 3 new tokens, chunk 3:
          2 + 3·4 + 5·3 + 7·9 = 92; iteration 2 has footprint 5, 1 new token:
          2 + 15 + 5 = 22; u = 114 (formula: 2·2 + 3·9 + 5·4 + 7·9 = 114).
        - chunk 2: iteration A (chunk 2, footprint 2): 2 + 6 + 10 + 28 = 46; iteration B
          (chunk 1, footprint 4, emits token 1): 2 + 12 + 5 + 7 = 26; iteration C: 22;
          u = 94 (formula with m = 2, r = 1: 3·2 + 3·11 + 5·4 + 7·5 = 94).

        Parameters
        ----------
        prompt, output
            Prompt tokens s ≥ 1 and output tokens o ≥ 1 (scalars or arrays that broadcast).
        chunk_size
            Prefill chunk k, tokens; ``None`` = whole prompt in one iteration.

        Returns
        -------
        float or numpy.ndarray
            u in seconds (a float for scalar inputs).
        """
        s = np.asarray(prompt, dtype=np.float64)
        o = np.asarray(output, dtype=np.float64)
        if self.kind == "unit":
            u = np.zeros(np.broadcast(s, o).shape)
            return u if np.ndim(u) else 0.0
        v = o * s + o * (o + 1) / 2
        if chunk_size is None:
            m = np.ones_like(s)
            k = s
        else:
            if int(chunk_size) != chunk_size or chunk_size < 1:
                raise InputError(f"must be a positive integer (got {chunk_size!r})", field="chunk_size")
            k = np.minimum(s, float(chunk_size))
            m = np.ceil(s / k)
        r = s - (m - 1) * k
        u = (
            (o + m - 1) * self.c_seq
            + self.c_kv * (v + k * m * (m - 1) / 2)
            + self.c_new * (s + o - 1)
            + self.c_pf2 * ((m - 1) * k**2 + r**2)
        )
        return u if np.ndim(u) else float(u)


def _check_count(value: Any, name: str, source: str | None, *, optional: bool = True) -> int | None:
    """A positive integer (or None when optional); errors name ``source`` and ``name``."""
    if value is None and optional:
        return None
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float, np.integer, np.floating))
        and math.isfinite(value)
        and int(value) == value
        and value >= 1
    )
    if not ok:
        raise InputError(f"must be a positive integer (got {value!r})", source=source, field=name)
    return int(value)


@dataclass(frozen=True)
class Deployment:
    """A served model on one GPU kind.

    Attributes
    ----------
    name
        Registry name, e.g. ``"llama2-7b-a100"``.
    capacity
        KV capacity C, tokens; ``None`` when it is given per instance (unit-time runs).
    time
        The iteration-time model.
    max_batch
        Optional cap on sequences per iteration.
    max_tokens
        Optional cap on new tokens per iteration (the chunked-prefill budget).
    chunk_size
        Prefill chunk, tokens (Sarathi-like policies); ``None`` means whole prompts.
    block_size
        Paging block, tokens. 1 (default) is the exact token accounting of the system
        model; b > 1 allocates KV in blocks of b tokens: a resident holds
        ⌈max(footprint, prompt)/b⌉ blocks (its whole prompt is reserved on admission, as
        vLLM and Sarathi-Serve do), and the capacity C counts block tokens.
    token_budget
        How ``max_tokens`` counts an iteration: ``"sum"`` (default) of the new tokens, or
        ``"padded"``: the prefilling members × their largest chunk, decodes not counted
        (Vidur's vLLM scheduler).
    preemption
        What an evicted request loses: ``"restart"`` (default, the system model: its KV and
        generated tokens, which are generated again) or ``"recompute"`` (vLLM/Vidur: the KV
        only; its generated tokens are kept and re-prefilled together with the prompt,
        and the re-prefill emits the next token).
    victim
        Eviction order on an overflow: ``"policy"`` (default, the policy's
        :meth:`~fluidopt.executor.policy.Policy.victims`), ``"latest-arrival"`` (the
        latest-arrived resident first, Vidur) or ``"latest-admission"``.
    cpu_overhead
        The per-iteration CPU/scheduler overhead as a separate part of the time model,
        ``{"c0": s, "c_seq": s per sequence, "included": bool}``, or ``None``. In a file
        ``time`` holds the compute part alone; when ``included`` is true, ``time`` of the
        loaded deployment is compute + overhead (c0 and c_seq added), so every consumer
        sees one affine model. :meth:`with_cpu_overhead` switches it.
    iteration_time
        Which time model the executor uses: ``"affine"`` (default: ``time``) or
        ``"profile"`` (``profile_time``, :class:`~fluidopt.executor.timing.ProfileTime`,
        plus the CPU overhead when included). The fluid model and calibration always use
        the affine ``time``.
    profile_time
        Operator-profile tables of the profile-based time model (see ProfileTime), or None.
    description
        One line for listings.
    provenance
        Where the numbers come from (free text and references).
    """

    name: str
    capacity: int | None
    time: TimeModel
    max_batch: int | None = None
    max_tokens: int | None = None
    chunk_size: int | None = None
    block_size: int = 1
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    token_budget: str = "sum"
    preemption: str = "restart"
    victim: str = "policy"
    cpu_overhead: dict[str, Any] | None = None
    iteration_time: str = "affine"
    profile_time: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for key in ("capacity", "max_batch", "max_tokens", "chunk_size"):
            _check_count(getattr(self, key), key, self.name)
        _check_count(self.block_size, "block_size", self.name, optional=False)
        for key, choices in ENGINE_CHOICES.items():
            if getattr(self, key) not in choices:
                raise InputError(
                    f"must be one of {', '.join(choices)} (got {getattr(self, key)!r})", source=self.name, field=key
                )
        if self.cpu_overhead is not None:
            _check_overhead(self.cpu_overhead, self.name)
        if self.profile_time is not None:
            _check_profile(self.profile_time, self.name)
        elif self.iteration_time == "profile":
            raise InputError("iteration_time 'profile' needs a profile_time table", source=self.name, field="profile_time")

    @property
    def engine_settings(self) -> dict[str, Any]:
        """The engine mechanics of this deployment (block size, budget, preemption, victim, time model)."""
        return {"block_size": self.block_size, **{k: getattr(self, k) for k in ENGINE_CHOICES}}

    def with_settings(self, **changes: Any) -> Deployment:
        """The same deployment with other engine settings or caps (validated)."""
        return replace(self, **changes)

    def with_cpu_overhead(self, included: bool) -> Deployment:
        """The same deployment with its CPU-overhead part added to (or removed from) ``time``.

        Raises InputError when the deployment has no separate overhead part.
        """
        o = self.cpu_overhead
        if o is None:
            raise InputError("this deployment has no separate cpu_overhead part", source=self.name)
        if bool(o["included"]) == included:
            return self
        sign = 1.0 if included else -1.0
        t = self.time
        time = replace(t, c0=t.c0 + sign * o["c0"], c_seq=t.c_seq + sign * o["c_seq"])
        return replace(self, time=time, cpu_overhead={**o, "included": included})

    def with_capacity(self, capacity: int) -> Deployment:
        """The same deployment with KV capacity ``capacity`` tokens."""
        return replace(self, capacity=_check_count(capacity, "capacity", self.name, optional=False))

    def require_capacity(self) -> int:
        """The KV capacity, or an error saying it must be given."""
        if self.capacity is None:
            raise InputError(
                "this deployment has no KV capacity of its own; give one (--capacity C)", source=self.name
            )
        return self.capacity

    def marginal_work(
        self, prompt: np.ndarray | float, output: np.ndarray | float, chunk_size: int | None = None
    ) -> np.ndarray | float:
        """Per-request marginal work u (s); see :meth:`TimeModel.marginal_work`.

        Whole prompts unless ``chunk_size`` is given (the deployment's own ``chunk_size`` is
        a default for chunked-prefill policies, not applied here).
        """
        return self.time.marginal_work(prompt, output, chunk_size)

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-safe representation (the file schema of ``instances/deployments``).

        ``time`` is the compute part (the CPU overhead, if separate, is in ``cpu_overhead``);
        engine settings at their defaults are left out.
        """
        dep = self.with_cpu_overhead(False) if self.cpu_overhead is not None else self
        out = asdict(dep)
        out["time"] = {k: v for k, v in asdict(dep.time).items() if k == "kind" or v}
        out["cpu_overhead"] = self.cpu_overhead
        for key, choices in ENGINE_CHOICES.items():
            if out[key] == choices[0]:
                del out[key]
        for key in ("cpu_overhead", "profile_time"):
            if out[key] is None:
                del out[key]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "") -> Deployment:
        """Build from the file schema; errors name the file (``source``) and the field.

        Required: ``name``, ``capacity`` (``null`` = given per instance) and ``time`` with
        ``kind`` (and ``c0`` unless the kind is ``unit``). Unknown fields are errors, so a
        misspelt option is not silently ignored.
        """
        src = source or (str(data.get("name", "deployment")) if isinstance(data, dict) else "deployment")
        if not isinstance(data, dict):
            raise InputError("expected a mapping of deployment fields", source=src)
        known = {"name", "capacity", "time", "max_batch", "max_tokens", "chunk_size", "block_size"}
        known |= {"description", "provenance", "cpu_overhead", "profile_time", *ENGINE_CHOICES}
        for key in data:
            if key not in known:
                raise InputError(f"unknown field (known: {', '.join(sorted(known))})", source=src, field=str(key))
        for key in ("name", "capacity", "time"):
            if key not in data:
                raise InputError("missing field", source=src, field=key)
        name = data["name"]
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"must be a non-empty string (got {name!r})", source=src, field="name")
        counts = {
            key: _check_count(data.get(key), key, src)
            for key in ("capacity", "max_batch", "max_tokens", "chunk_size")
        }
        block = _check_count(data.get("block_size", 1), "block_size", src, optional=False)
        description = data.get("description", "") or ""
        if not isinstance(description, str):
            raise InputError(f"must be a string (got {description!r})", source=src, field="description")
        provenance = data.get("provenance") or {}
        if not isinstance(provenance, dict):
            raise InputError("must be a mapping", source=src, field="provenance")

        spec = data["time"]
        if not isinstance(spec, dict):
            raise InputError("must be a mapping with kind and coefficients", source=src, field="time")
        for key in spec:
            if key != "kind" and key not in COEFFICIENTS:
                raise InputError(
                    f"unknown coefficient (known: kind, {', '.join(COEFFICIENTS)})", source=src, field=f"time.{key}"
                )
        if "kind" not in spec:
            raise InputError("missing field", source=src, field="time.kind")
        if "c0" not in spec and spec["kind"] != "unit":
            raise InputError("missing field", source=src, field="time.c0")
        coeffs = {k: v for k, v in spec.items() if k != "kind"}
        coeffs.setdefault("c0", 1.0)
        problem = _time_problem(spec["kind"], coeffs)
        if problem is not None:
            raise InputError(problem[1], source=src, field=f"time.{problem[0]}")
        time = TimeModel(spec["kind"], **{k: float(v) for k, v in coeffs.items()})
        settings = {}
        for key, choices in ENGINE_CHOICES.items():
            value = data.get(key, choices[0])
            if value not in choices:
                raise InputError(f"must be one of {', '.join(choices)} (got {value!r})", source=src, field=key)
            settings[key] = value
        overhead = data.get("cpu_overhead")
        if overhead is not None:
            overhead = _check_overhead(overhead, src)
        dep = cls(
            name=name,
            time=time,
            block_size=block,
            description=description,
            provenance=provenance,
            **counts,
            **settings,
            cpu_overhead=None if overhead is None else {**overhead, "included": False},
            profile_time=_check_profile(data["profile_time"], src) if data.get("profile_time") is not None else None,
        )
        return dep.with_cpu_overhead(True) if overhead is not None and overhead["included"] else dep


def _check_overhead(spec: Any, source: str) -> dict[str, Any]:
    """A valid ``cpu_overhead`` mapping (c0, c_seq ≥ 0 in s; included a bool), else InputError."""
    if not isinstance(spec, dict):
        raise InputError("must be a mapping with c0, c_seq and included", source=source, field="cpu_overhead")
    for key in spec:
        if key not in ("c0", "c_seq", "included"):
            raise InputError("unknown field (known: c0, c_seq, included)", source=source, field=f"cpu_overhead.{key}")
    out: dict[str, Any] = {}
    for key in ("c0", "c_seq"):
        value = spec.get(key, 0.0)
        ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
        if not ok or not math.isfinite(value) or value < 0:
            raise InputError(f"must be a finite number ≥ 0 (got {value!r})", source=source, field=f"cpu_overhead.{key}")
        out[key] = float(value)
    included = spec.get("included", True)
    if not isinstance(included, bool):
        raise InputError(f"must be true or false (got {included!r})", source=source, field="cpu_overhead.included")
    out["included"] = included
    return out


def _check_profile(spec: Any, source: str) -> dict[str, Any]:
    """A valid ``profile_time`` mapping (it builds a ProfileTime), else InputError."""
    from fluidopt.executor.timing import ProfileTime

    if not isinstance(spec, dict):
        raise InputError("must be a mapping (layers, token_round, kv_round, linear_ops_ms, "
                         "attention_ms_per_layer)", source=source, field="profile_time")
    try:
        ProfileTime(spec)
        tokens = spec["linear_ops_ms"]["tokens"]
        if len(tokens) < 2 or len(tokens) != len(spec["linear_ops_ms"]["ms"]) or list(tokens) != sorted(set(tokens)):
            raise ValueError("linear_ops_ms needs ≥ 2 increasing token counts with one time each")
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(f"not a valid profile table ({type(exc).__name__}: {exc})", source=source,
                         field="profile_time") from None
    return spec


def unit_deployment(capacity: int | None = None) -> Deployment:
    """The unit-time deployment; its capacity is given per instance."""
    return Deployment(
        name="unit",
        capacity=capacity,
        time=TimeModel.unit(),
        description="unit-time rounds ([KV], [ROB], [VAR], completion-time MIP)",
        provenance={"source": "system model, iteration-time model 1"},
    )


def _deployment_dir() -> Traversable:
    # A Traversable rather than a Path, so shipped files also load from a zipped install.
    return resources.files("fluidopt.instances").joinpath("deployments")


def deployment_names() -> list[str]:
    """Names of the shipped deployments (plus ``unit``)."""
    folder = _deployment_dir()
    files = folder.iterdir() if folder.is_dir() else []
    shipped = [p.name[: -len(".yaml")] for p in files if p.name.endswith(".yaml")]
    return sorted(["unit", *shipped])


def load_deployment(name_or_path: str, *, capacity: int | None = None) -> Deployment:
    """A shipped deployment by name, or a YAML file by path; ``capacity`` overrides C.

    An argument with a file suffix or a path separator is a path; anything else is a name
    (``unit`` is built in; the others are ``instances/deployments/NAME.yaml``).

    Raises
    ------
    InputError
        Unknown name, unreadable file, or invalid fields (naming file and field).
    """
    if name_or_path == "unit":
        dep = unit_deployment()
    else:
        path = Path(name_or_path)
        file: Traversable | Path
        if path.suffix or "/" in name_or_path or "\\" in name_or_path:
            file = path
        else:
            file = _deployment_dir().joinpath(f"{name_or_path}.yaml")
            if not file.is_file():
                raise InputError(f"unknown deployment {name_or_path!r}; known: {', '.join(deployment_names())}")
        source = str(file)
        data = read_mapping(file, what="a mapping of deployment fields")
        dep = Deployment.from_dict(data, source=source)
    return dep.with_capacity(capacity) if capacity is not None else dep


def deployment_for(name_or_path: str, meta: dict[str, Any], *, capacity: int | None = None) -> Deployment:
    """:func:`load_deployment` with the capacity a run needs.

    The KV capacity is, in order: ``capacity`` if given, the deployment's own, or the
    workload's ``meta["capacity"]`` (the [KV] synthetic instances carry their C there).
    """
    dep = load_deployment(name_or_path, capacity=capacity)
    if dep.capacity is None and isinstance(meta.get("capacity"), (int, np.integer)):
        dep = dep.with_capacity(int(meta["capacity"]))
    return dep
