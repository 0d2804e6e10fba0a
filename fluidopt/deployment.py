"""Deployments: KV capacity and iteration-time models.

One served model on one GPU kind. Every time in this module is in **seconds** and every
memory amount in **KV tokens**. The three iteration-time models of the system model share
one affine form

    τ = c0 + c_seq·B + c_kv·ΣKV + c_new·N_new + c_pf2·Σ chunk²

with B the sequences in the batch, ΣKV their end-of-iteration footprints, N_new the new
tokens processed (prefill tokens plus one per decoding sequence) and ``chunk`` the prefill
tokens of each prefilling sequence. ``linear-kv`` is the case c_seq = c_new = c_pf2 = 0;
``unit`` is τ = 1 for every iteration (arrivals and decisions on integer rounds).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from fluidopt.errors import InputError

TimeKind = Literal["unit", "linear-kv", "affine"]


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
        if self.kind not in ("unit", "linear-kv", "affine"):
            raise InputError(f"unknown time model kind {self.kind!r} (unit, linear-kv, affine)")
        coeffs = (self.c0, self.c_seq, self.c_kv, self.c_new, self.c_pf2)
        if any(not np.isfinite(c) or c < 0 for c in coeffs):
            raise InputError(f"time model coefficients must be finite and ≥ 0 (got {coeffs})")
        if self.kind == "unit" and coeffs != (1.0, 0.0, 0.0, 0.0, 0.0):
            raise InputError("the unit time model has τ = 1 and no other coefficient")
        if self.kind == "linear-kv" and (self.c_seq or self.c_new or self.c_pf2):
            raise InputError("a linear-kv time model has only c0 (d0) and c_kv (d1)")
        if self.c0 <= 0:
            raise InputError("the fixed iteration cost c0 must be > 0")

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

    def iteration_time(
        self,
        batch_size: np.ndarray | float,
        kv_sum: np.ndarray | float,
        new_tokens: np.ndarray | float = 0.0,
        chunk_sq_sum: np.ndarray | float = 0.0,
    ) -> np.ndarray | float:
        """Duration of an iteration (s); vectorised over its arguments.

        Parameters
        ----------
        batch_size
            Sequences in the batch, B.
        kv_sum
            Sum of their end-of-iteration footprints, tokens.
        new_tokens
            Prefill tokens plus one per decoding sequence.
        chunk_sq_sum
            Sum over prefilling sequences of (prefill tokens this iteration)².
        """
        if self.kind == "unit":
            return np.ones_like(np.asarray(batch_size, dtype=np.float64)) if np.ndim(batch_size) else 1.0
        return (
            self.c0
            + self.c_seq * batch_size
            + self.c_kv * kv_sum
            + self.c_new * new_tokens
            + self.c_pf2 * chunk_sq_sum
        )

    def marginal_work(self, prompt: np.ndarray | float, output: np.ndarray | float) -> np.ndarray | float:
        """Per-request marginal work u (s): the request's additive share of its iterations.

        Whole-prompt prefill in the first service iteration (chunk = s, s new tokens),
        one new token in each of the o − 1 later ones, footprint s + j in iteration j:

            u = o·c_seq + c_kv·V + c_new·(s + o − 1) + c_pf2·s²,  V = o·s + o(o+1)/2.

        For linear-kv this is d1·V; for the unit model it is 0 (τ does not depend on
        the batch).
        """
        s = np.asarray(prompt, dtype=np.float64)
        o = np.asarray(output, dtype=np.float64)
        volume = o * s + o * (o + 1) / 2
        u = o * self.c_seq + self.c_kv * volume + self.c_new * (s + o - 1) + self.c_pf2 * s**2
        return u if np.ndim(u) else float(u)


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
        Paging block, tokens (1 = exact token accounting).
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

    def __post_init__(self) -> None:
        for key in ("capacity", "max_batch", "max_tokens", "chunk_size"):
            value = getattr(self, key)
            if value is not None and (int(value) != value or value < 1):
                raise InputError(f"must be a positive integer (got {value!r})", source=self.name, field=key)
        if self.block_size != 1:
            raise InputError("only exact token accounting (block_size 1) is supported", source=self.name)

    def with_capacity(self, capacity: int) -> Deployment:
        """The same deployment with KV capacity ``capacity`` tokens."""
        return replace(self, capacity=int(capacity))

    def require_capacity(self) -> int:
        """The KV capacity, or an error saying it must be given."""
        if self.capacity is None:
            raise InputError(
                "this deployment has no KV capacity of its own; give one (--capacity C)", source=self.name
            )
        return self.capacity

    def marginal_work(self, prompt: np.ndarray | float, output: np.ndarray | float) -> np.ndarray | float:
        """Per-request marginal work u (s); see :meth:`TimeModel.marginal_work`."""
        return self.time.marginal_work(prompt, output)

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-safe representation (the file schema of ``instances/deployments``)."""
        out = asdict(self)
        out["time"] = {k: v for k, v in asdict(self.time).items() if k == "kind" or v}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "") -> Deployment:
        """Build from the file schema; errors name the file and the field."""
        src = source or str(data.get("name", "deployment"))
        try:
            time_spec = dict(data["time"])
            kind = time_spec.pop("kind")
            time = TimeModel(kind, **{k: float(v) for k, v in time_spec.items()})
            fields = {k: v for k, v in data.items() if k != "time"}
            return cls(time=time, **fields)
        except KeyError as exc:
            raise InputError(f"missing field {exc.args[0]!r}", source=src) from None
        except TypeError as exc:
            raise InputError(f"bad deployment fields ({exc})", source=src) from None
        except InputError as exc:
            raise InputError(str(exc), source=src) from None


def unit_deployment(capacity: int | None = None) -> Deployment:
    """The unit-time deployment; its capacity is given per instance."""
    return Deployment(
        name="unit",
        capacity=capacity,
        time=TimeModel.unit(),
        description="unit-time rounds ([KV], [ROB], [VAR], the completion-time MIP)",
        provenance={"source": "system model, iteration-time model 1"},
    )


def _deployment_dir() -> Path:
    return Path(str(resources.files("fluidopt.instances") / "deployments"))


def deployment_names() -> list[str]:
    """Names of the shipped deployments (plus ``unit``)."""
    return sorted(["unit", *(p.stem for p in _deployment_dir().glob("*.yaml"))])


def load_deployment(name_or_path: str, *, capacity: int | None = None) -> Deployment:
    """A shipped deployment by name, or a YAML file by path; ``capacity`` overrides C.

    Raises
    ------
    InputError
        Unknown name, unreadable file, or invalid fields (naming file and field).
    """
    if name_or_path == "unit":
        dep = unit_deployment()
    else:
        path = Path(name_or_path)
        if not path.suffix:
            path = _deployment_dir() / f"{name_or_path}.yaml"
            if not path.exists():
                raise InputError(
                    f"unknown deployment {name_or_path!r}; known: {', '.join(deployment_names())}"
                )
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise InputError(f"cannot read ({exc.strerror})", source=str(path)) from None
        except yaml.YAMLError as exc:
            raise InputError(f"not valid YAML ({exc})", source=str(path)) from None
        if not isinstance(data, dict):
            raise InputError("expected a mapping of deployment fields", source=str(path))
        dep = Deployment.from_dict(data, source=str(path))
    return dep.with_capacity(capacity) if capacity is not None else dep
