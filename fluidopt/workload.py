"""The request table every part of fluidopt runs on.

A :class:`Workload` is a validated, arrival-sorted table of requests in the conventions
of the system model: ``arrival`` in seconds (integer rounds in the unit-time model),
``prompt`` and ``output`` in tokens, optional prediction columns and a type label.
Loaders (``fluidopt.traces``) and generators (``fluidopt.generators``) both end in
:meth:`Workload.from_frame`, so validation happens in exactly one place.

Our own file schema (CSV or Parquet) has the columns ``arrival,prompt,output`` and the
optional ``id,pred_lo,pred_hi,pred,type``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fluidopt.errors import InputError

REQUIRED_COLUMNS = ("arrival", "prompt", "output")
OPTIONAL_COLUMNS = ("id", "pred_lo", "pred_hi", "pred", "type")
_TOKEN_COLUMNS = ("prompt", "output", "pred_lo", "pred_hi", "pred")


@dataclass(frozen=True, eq=False)
class Workload:
    """A validated table of requests, sorted by arrival.

    Attributes
    ----------
    arrival
        Arrival times, seconds (unit-time model: integer rounds), non-decreasing, ≥ 0.
    prompt, output
        Prompt tokens s_i ≥ 1 and true output tokens o_i ≥ 1 (int64).
    id
        Request identifiers (int64), unique.
    pred_lo, pred_hi
        Optional prediction interval with ``pred_lo ≤ output ≤ pred_hi`` (tokens).
    pred
        Optional point prediction of the output length (tokens; may be wrong).
    type
        Optional type label per request (any hashable values).
    name
        Short name (registry name, file stem or generator name).
    source
        Where the data came from (path, trace name or generator spec).
    meta
        Free-form provenance, e.g. ``{"seed": 7}``; recorded in every output.
    """

    arrival: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    id: np.ndarray
    pred_lo: np.ndarray | None = None
    pred_hi: np.ndarray | None = None
    pred: np.ndarray | None = None
    type: np.ndarray | None = None
    name: str = "workload"
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        name: str = "workload",
        source: str = "",
        meta: dict[str, Any] | None = None,
        fields: dict[str, str] | None = None,
    ) -> Workload:
        """Validate a DataFrame in our schema and build a workload.

        Parameters
        ----------
        frame
            Columns ``arrival`` (s), ``prompt``, ``output`` (tokens) and optionally
            ``id, pred_lo, pred_hi, pred, type``; rows in file order (row 1 = first data row).
        name, source, meta
            Provenance, see the class attributes.
        fields
            Optional map from our column names to the names the source file uses (e.g.
            ``{"prompt": "ContextTokens"}``), so that errors name the field the user can
            find in the file.

        Raises
        ------
        InputError
            Naming the source, the 1-based row and the field of the first bad value:
            missing columns, non-numeric, NaN, non-integer or non-positive token
            counts, negative or decreasing arrivals, duplicate ids, prediction
            intervals that do not contain the true output. An empty table is an error.
        """
        src = source or name
        fmap = dict(fields or {})

        def f(col: str) -> str:
            return fmap.get(col, col)

        if len(frame) == 0:
            raise InputError("no requests (empty table)", source=src)
        missing = [f(c) for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise InputError(
                f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}",
                source=src,
            )
        cols: dict[str, np.ndarray] = {}
        cols["arrival"] = _numeric(frame["arrival"], f("arrival"), src)
        for c in _TOKEN_COLUMNS:
            if c in frame.columns:
                cols[c] = _tokens(frame[c], f(c), src)
        arrival = cols["arrival"]
        bad = np.flatnonzero(arrival < 0)
        if bad.size:
            raise InputError(f"negative arrival time {arrival[bad[0]]}", source=src, row=bad[0] + 1, field=f("arrival"))
        dec = np.flatnonzero(np.diff(arrival) < 0)
        if dec.size:
            i = dec[0] + 1
            raise InputError(
                f"arrival {arrival[i]} is earlier than the previous row's {arrival[i - 1]} (arrivals must be sorted)",
                source=src,
                row=i + 1,
                field=f("arrival"),
            )
        if "id" in frame.columns:
            ids = _integers(frame["id"], f("id"), src)
            dup = pd.Index(ids).duplicated()
            if dup.any():
                i = int(np.flatnonzero(dup)[0])
                raise InputError(f"duplicate id {ids[i]}", source=src, row=i + 1, field=f("id"))
        else:
            ids = np.arange(len(frame), dtype=np.int64)
        output = cols["output"]
        lo, hi = cols.get("pred_lo"), cols.get("pred_hi")
        if (lo is None) != (hi is None):
            raise InputError("pred_lo and pred_hi must be given together", source=src)
        if lo is not None and hi is not None:
            for mask, what, fld in (
                (lo > output, "pred_lo exceeds the true output", "pred_lo"),
                (hi < output, "pred_hi is below the true output", "pred_hi"),
            ):
                bad = np.flatnonzero(mask)
                if bad.size:
                    i = bad[0]
                    raise InputError(
                        f"{what} ({lo[i]}..{hi[i]} vs output {output[i]})", source=src, row=i + 1, field=f(fld)
                    )
        typ = frame["type"].to_numpy() if "type" in frame.columns else None
        return cls(
            arrival=arrival,
            prompt=cols["prompt"],
            output=output,
            id=ids,
            pred_lo=lo,
            pred_hi=hi,
            pred=cols.get("pred"),
            type=typ,
            name=name,
            source=source,
            meta=dict(meta or {}),
        )

    def replace(self, **changes: Any) -> Workload:
        """A copy with some columns or metadata replaced, validated again."""
        frame = self.to_frame()
        for key in ("pred_lo", "pred_hi", "pred", "type", "arrival", "prompt", "output", "id"):
            if key in changes:
                value = changes.pop(key)
                if value is None:
                    frame = frame.drop(columns=[key], errors="ignore")
                else:
                    frame[key] = value
        meta = {**self.meta, **changes.pop("meta", {})}
        name = changes.pop("name", self.name)
        source = changes.pop("source", self.source)
        if changes:
            raise TypeError(f"unknown fields: {', '.join(changes)}")
        return Workload.from_frame(frame, name=name, source=source, meta=meta)

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return int(self.arrival.shape[0])

    @property
    def volume(self) -> np.ndarray:
        """KV-time volume V_i = o_i·s_i + o_i(o_i+1)/2 (token·iterations), per request."""
        o = self.output.astype(np.float64)
        return o * self.prompt + o * (o + 1) / 2

    @property
    def peak_footprint(self) -> np.ndarray:
        """Peak KV footprint s_i + o_i (tokens), reached in the completing iteration."""
        return self.prompt + self.output

    def head(self, k: int) -> Workload:
        """The first ``k`` requests by arrival."""
        if k < 1:
            raise InputError(f"number of requests must be ≥ 1 (got {k})", source=self.name)
        frame = self.to_frame().iloc[:k].reset_index(drop=True)
        return Workload.from_frame(frame, name=self.name, source=self.source, meta={**self.meta, "head": k})

    def check_capacity(self, capacity: int, origin: str | None = None) -> None:
        """Raise if some request can never fit: s_i + o_i > C.

        Parameters
        ----------
        capacity
            KV capacity C, tokens.
        origin
            Where C came from when it is not the workload's own, e.g. ``"--capacity"`` or
            ``"deployment llama2-7b-a100's capacity"``: the error then blames that, not
            the workload's file.

        Raises
        ------
        InputError
            Naming the first such row.
        """
        bad = np.flatnonzero(self.peak_footprint > capacity)
        if bad.size:
            i = bad[0]
            need = f"{self.prompt[i]} + {self.output[i]} = {self.peak_footprint[i]} KV tokens"
            count = f"{bad.size} such request(s)"
            if origin is not None:
                raise InputError(
                    f"{origin} {capacity:,} is too small for {self.source or self.name}: request {self.id[i]} "
                    f"(row {i + 1}) needs {need} ({count}; the largest needs {int(self.peak_footprint.max()):,})"
                )
            raise InputError(
                f"request {self.id[i]} needs {need}, more than the capacity {capacity} ({count})",
                source=self.source or self.name,
                row=i + 1,
                field="output",
            )

    def digest(self) -> str:
        """SHA-256 (first 16 hex digits) of the request columns, for provenance."""
        h = hashlib.sha256()
        for arr in (self.arrival, self.prompt, self.output):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]

    def to_frame(self) -> pd.DataFrame:
        """The requests as a DataFrame in our file schema."""
        data: dict[str, Any] = {
            "id": self.id,
            "arrival": self.arrival,
            "prompt": self.prompt,
            "output": self.output,
        }
        for key in ("pred_lo", "pred_hi", "pred", "type"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return pd.DataFrame(data)

    def stats(self) -> dict[str, Any]:
        """Summary statistics (JSON-safe): counts, duration, rate, length quantiles."""
        duration = float(self.arrival[-1] - self.arrival[0])
        out: dict[str, Any] = {
            "name": self.name,
            "source": self.source,
            "n_requests": len(self),
            "duration_s": duration,
            "rate_per_s": (len(self) - 1) / duration if duration > 0 else None,
        }
        for label, arr in (("prompt", self.prompt), ("output", self.output)):
            out[f"{label}_mean"] = float(arr.mean())
            out[f"{label}_median"] = float(np.median(arr))
            out[f"{label}_p99"] = float(np.quantile(arr, 0.99))
            out[f"{label}_max"] = int(arr.max())
        out["peak_footprint_max"] = int(self.peak_footprint.max())
        out["has_prediction_interval"] = self.pred_lo is not None
        out["has_point_prediction"] = self.pred is not None
        out["n_types"] = int(len(pd.unique(self.type))) if self.type is not None else None
        out["digest"] = self.digest()
        out["meta"] = self.meta
        return out


#: Largest integer accepted in an integer column: every integer up to it is exact in float64.
MAX_INTEGER = 2**53


def _numeric(series: pd.Series, fld: str, src: str) -> np.ndarray:
    """Float64 values of a column; NaN, infinities, text and booleans are errors."""
    if pd.api.types.is_bool_dtype(series):
        raise InputError(f"a boolean is not a number (got {series.iloc[0]})", source=src, row=1, field=fld)
    if series.dtype == object:  # JSON and Parquet can mix booleans into a column
        flags = np.fromiter((isinstance(v, (bool, np.bool_)) for v in series), dtype=bool, count=len(series))
        if flags.any():
            i = int(np.flatnonzero(flags)[0])
            raise InputError(f"a boolean is not a number (got {series.iloc[i]})", source=src, row=i + 1, field=fld)
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = bad[0]
        raw = series.iloc[i]
        if pd.isna(raw):
            what = "missing value (NaN)"
        elif np.isnan(values[i]):
            what = f"not a number ({raw!r})"
        else:
            what = f"not a finite number ({raw!r})"
        raise InputError(what, source=src, row=i + 1, field=fld)
    return values


def _integers(series: pd.Series, fld: str, src: str) -> np.ndarray:
    values = _numeric(series, fld, src)
    bad = np.flatnonzero(np.abs(values) > MAX_INTEGER)
    if bad.size:
        i = bad[0]
        raise InputError(
            f"too large (got {series.iloc[i]}; at most {MAX_INTEGER:,})", source=src, row=i + 1, field=fld
        )
    bad = np.flatnonzero(values != np.round(values))
    if bad.size:
        i = bad[0]
        raise InputError(f"must be an integer (got {series.iloc[i]})", source=src, row=i + 1, field=fld)
    return values.astype(np.int64)


def _tokens(series: pd.Series, fld: str, src: str) -> np.ndarray:
    values = _integers(series, fld, src)
    bad = np.flatnonzero(values < 1)
    if bad.size:
        i = bad[0]
        raise InputError(f"must be a positive token count (got {values[i]})", source=src, row=i + 1, field=fld)
    return values
