"""Trace loaders, the registry of shipped traces and workload specs, and ``load_workload``.

Resolution order of :func:`load_workload`: a registered trace name (:func:`trace_names`),
a shipped spec name (stem of ``instances/workloads/*.yaml``, :func:`spec_names`), then a
path. Every loader ends in :meth:`fluidopt.workload.Workload.from_frame`, so the checks of
the system model (positive integer tokens, no NaN, sorted arrivals, …) apply to every
source; an error names the file, the 1-based data row (header not counted; for JSON
Lines, the line) and the field as it is spelled in the file.

Our file schema
---------------
CSV (``.csv``, ``.csv.gz``), Parquet (``.parquet``) or JSON Lines (``.jsonl``,
``.jsonl.gz``), one request per row, rows sorted by arrival:

========== ======== ===========================================================
column     required meaning
========== ======== ===========================================================
arrival    yes      arrival time, seconds (unit-time model: integer round), ≥ 0,
                    non-decreasing
prompt     yes      prompt tokens s_i, integer ≥ 1
output     yes      true output tokens o_i, integer ≥ 1
id         no       integer request id, unique (default: row number − 1)
pred_lo    no       lower end of a prediction interval, integer ≥ 1, ≤ output
pred_hi    no       upper end, integer ≥ output (give both or neither)
pred       no       point prediction of the output, integer ≥ 1 (may be wrong)
type       no       type label (read as text), e.g. ``p512d20``
========== ======== ===========================================================

Any other column is an error (it is usually a misspelt optional column). A CSV or JSONL
file whose header is that of a known upstream format is read with that format's loader
instead: Azure 2023 (``TIMESTAMP,ContextTokens,GeneratedTokens``), Mooncake
(``timestamp,input_length,output_length``) or the length-statistics files
(``num_prefill_tokens,num_decode_tokens,…``).

Conversions
-----------
- Azure: absolute timestamps → seconds after the first request.
- Mooncake: ``timestamp`` in ms → s; ``hash_ids`` (prefix-cache blocks) are not used.
- Length statistics (ShareGPT, arXiv summarization): no timestamps. Requests keep file
  order and arrive by a seeded Poisson process of rate ``rate`` (default
  :data:`DEFAULT_RATE` = 1 request/s, seed :data:`DEFAULT_SEED` = 0).
- ``rate`` on a trace *with* timestamps rescales time so that the mean rate
  (n − 1)/(last − first arrival) of the whole trace equals ``rate``; the factor is in
  ``meta["time_scale"]``.
- ``max_total_tokens``: requests with prompt + output above it are dropped
  (``overlong="filter"``) or clipped (``overlong="clip"``: the output is kept up to
  max − 1 and the prompt cut to max − output); nothing happens unless asked, and the
  number affected is logged and stored in ``meta``.
"""

from __future__ import annotations

import csv
import functools
import gzip
import importlib.resources
import io
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fluidopt.errors import InputError
from fluidopt.workload import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, Workload, _numeric

log = logging.getLogger(__name__)

#: Arrival rate (requests per second) given to traces without timestamps by default.
DEFAULT_RATE = 1.0
#: Seed of the arrival process of traces without timestamps by default.
DEFAULT_SEED = 0

_AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_AZURE_FIELDS = {"arrival": "TIMESTAMP", "prompt": "ContextTokens", "output": "GeneratedTokens"}
_MOONCAKE_FIELDS = {"arrival": "timestamp", "prompt": "input_length", "output": "output_length"}
_STATS_FIELDS = {"prompt": "num_prefill_tokens", "output": "num_decode_tokens"}


@dataclass(frozen=True)
class TraceInfo:
    """A registered trace shipped in ``instances/traces/``.

    Attributes
    ----------
    name
        Registry name, e.g. ``azure-conv``.
    path
        File path relative to ``instances/traces/``.
    format
        ``azure``, ``mooncake`` or ``length-stats``.
    n_requests
        Number of requests in the shipped file.
    timestamps
        Whether the file has arrival times (otherwise a seeded process supplies them).
    licence
        Licence of the data (see ``instances/traces/SOURCES.md``).
    description
        One line for ``fluidopt instances list``.
    """

    name: str
    path: str
    format: str
    n_requests: int
    timestamps: bool
    licence: str
    description: str


TRACES: dict[str, TraceInfo] = {
    t.name: t
    for t in (
        TraceInfo(
            "azure-conv", "azure_llm_2023/AzureLLMInferenceTrace_conv.csv.gz", "azure", 19366, True, "CC-BY-4.0",
            "Azure LLM inference 2023, conversation (Patel et al., Splitwise, ISCA 2024), 1 h",
        ),
        TraceInfo(
            "azure-code", "azure_llm_2023/AzureLLMInferenceTrace_code.csv.gz", "azure", 8819, True, "CC-BY-4.0",
            "Azure LLM inference 2023, code: long prompts, short outputs (Splitwise, ISCA 2024), 1 h",
        ),
        TraceInfo(
            "mooncake-conversation", "mooncake_fast25/conversation_trace.jsonl.gz", "mooncake", 12031, True,
            "Apache-2.0", "Mooncake (Kimi) FAST'25 conversation trace: long contexts, 1 h",
        ),
        TraceInfo(
            "mooncake-synthetic", "mooncake_fast25/synthetic_trace.jsonl.gz", "mooncake", 3993, True,
            "Apache-2.0", "Mooncake FAST'25 synthetic trace: public-dataset lengths, Poisson arrivals",
        ),
        TraceInfo(
            "sharegpt", "sarathi_serve_traces/sharegpt_8k_filtered_stats_llama2_tokenizer.csv.gz", "length-stats",
            30731, False, "Apache-2.0", "ShareGPT lengths (Llama-2 tokenizer, total ≤ 8k); arrivals generated",
        ),
        TraceInfo(
            "arxiv-summarization", "vidur_traces/arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv.gz",
            "length-stats", 28257, False, "MIT", "arXiv summarization lengths (total ≤ 4096); arrivals generated",
        ),
    )
}


# ---------------------------------------------------------------------- registry
def _instances_dir() -> Path:
    return Path(str(importlib.resources.files("fluidopt.instances")))


def trace_names() -> list[str]:
    """Names of the registered (shipped) traces."""
    return list(TRACES)


def spec_dir() -> Path:
    """Folder of the shipped workload specs (``instances/workloads``)."""
    return _instances_dir() / "workloads"


def spec_names() -> list[str]:
    """Names of the shipped workload specs (stems of ``instances/workloads/*.yaml``)."""
    return sorted(p.stem for p in spec_dir().glob("*.yaml"))


def trace_path(name: str) -> Path:
    """Absolute path of a registered trace file."""
    return _instances_dir() / "traces" / TRACES[name].path


# ---------------------------------------------------------------------- entry point
def load_workload(
    name_or_path: str,
    *,
    seed: int | None = None,
    rate: float | None = None,
    requests: int | None = None,
    max_total_tokens: int | None = None,
    overlong: str = "filter",
) -> Workload:
    """Load a registered trace, a shipped spec, or a file, as a validated workload.

    Parameters
    ----------
    name_or_path
        Trace name (:func:`trace_names`), spec name (:func:`spec_names`) or a path
        (``.csv``, ``.csv.gz``, ``.parquet``, ``.jsonl``, ``.jsonl.gz``, ``.yaml``).
    seed
        Seed of generated specs (overrides the spec's) and of the arrival process of
        length-statistics traces (default 0). Ignored by traces with timestamps, which
        involve no randomness.
    rate
        Requests per second: the total rate of a generated spec, the Poisson rate of a
        length-statistics trace (default 1/s), or a time rescaling of a timestamped trace
        (see the module docstring).
    requests
        Keep only the first K requests (after any ``max_total_tokens`` filtering). A
        spec that would generate fewer generates K; a trace or file with fewer is an
        error (never a silent cap).
    max_total_tokens, overlong
        Optional explicit, logged filtering (``"filter"``) or clipping (``"clip"``) of
        requests with prompt + output > ``max_total_tokens``.

    Raises
    ------
    InputError
        Unknown name, unreadable file, or invalid data (naming file, row and field).
    """
    key = str(name_or_path)
    if rate is not None and not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
        raise InputError(f"rate must be a positive number of requests/s (got {rate})", field="rate")
    kind = check_workload_name(key)
    if kind == "trace":
        w = _load_trace(key, seed=seed, rate=rate)
    elif kind == "spec":
        from fluidopt.generators import generate

        w = generate(spec_dir() / f"{key}.yaml", seed=seed, rate=rate)
        if requests is not None and requests > len(w):  # the first requests of a larger draw
            w = generate(spec_dir() / f"{key}.yaml", seed=seed, rate=rate, n=requests)
    else:
        w = load_file(Path(key), seed=seed, rate=rate)
    if max_total_tokens is not None:
        w = limit_total_tokens(w, max_total_tokens, mode=overlong)
    if requests is not None:
        if requests < 1:
            raise InputError(f"number of requests must be ≥ 1 (got {requests})", source=key, field="requests")
        if requests > len(w):
            raise InputError(f"has {len(w):,} requests, fewer than the {requests:,} asked for", source=key,
                             field="requests")
        if requests < len(w):
            w = w.head(requests)
    return w


def check_workload_name(name_or_path: str) -> str:
    """What ``name_or_path`` names, without loading it: ``"trace"``, ``"spec"`` or ``"file"``.

    Raises
    ------
    InputError
        Neither a registered trace, a shipped spec nor an existing file (listing the names).
    """
    key = str(name_or_path)
    if key in TRACES:
        return "trace"
    if key in spec_names():
        return "spec"
    path = Path(key)
    if not path.exists():
        if path.suffix == "" and os.sep not in key:
            raise InputError(
                f"unknown workload {key!r}: not a trace ({', '.join(trace_names())}), "
                f"not a shipped spec ({', '.join(spec_names())}), and no such file",
                source=key,
            )
        raise InputError("no such file", source=key)
    return "file"


def limit_total_tokens(w: Workload, max_total_tokens: int, *, mode: str = "filter") -> Workload:
    """Drop (``mode="filter"``) or clip (``mode="clip"``) requests with s_i + o_i > max.

    Clipping keeps the output up to max − 1 tokens and cuts the prompt to
    max − output, so the request's peak footprint is exactly ``max_total_tokens``.
    Logs the number of affected requests and records it in ``meta``.
    """
    if max_total_tokens < 2:
        raise InputError(f"max_total_tokens must be ≥ 2 (got {max_total_tokens})", field="max_total_tokens")
    over = w.peak_footprint > max_total_tokens
    count = int(over.sum())
    info = {"max_total_tokens": int(max_total_tokens), "mode": mode, "affected": count}
    if mode == "filter":
        if count == len(w):
            raise InputError(f"every request exceeds max_total_tokens={max_total_tokens}", source=w.source or w.name)
        frame = w.to_frame()[~over].reset_index(drop=True)
        log.warning("%s: dropped %d of %d requests with prompt + output > %d", w.name, count, len(w), max_total_tokens)
        return Workload.from_frame(frame, name=w.name, source=w.source, meta={**w.meta, "overlong": info})
    if mode == "clip":
        out = np.minimum(w.output, max_total_tokens - 1)
        prompt = np.minimum(w.prompt, max_total_tokens - out)
        log.warning("%s: clipped %d of %d requests to prompt + output ≤ %d", w.name, count, len(w), max_total_tokens)
        changes: dict[str, Any] = {"prompt": prompt, "output": out, "meta": {"overlong": info}}
        if w.pred_lo is not None:  # keep a valid interval around the clipped truth
            changes["pred_lo"] = np.minimum(w.pred_lo, out)
            changes["pred_hi"] = np.maximum(np.minimum(w.pred_hi, max_total_tokens - 1), out)
        return w.replace(**changes)
    raise InputError(f"overlong must be 'filter' or 'clip' (got {mode!r})", field="overlong")


# ---------------------------------------------------------------------- shipped traces
@functools.lru_cache(maxsize=8)
def _read_trace_frame(name: str) -> tuple[pd.DataFrame, dict[str, str]]:
    info = TRACES[name]
    path = trace_path(name)
    if info.format == "azure":
        return _azure_frame(_read_csv(path), str(path)), _AZURE_FIELDS
    if info.format == "mooncake":
        return _mooncake_frame(_read_jsonl(path), str(path)), _MOONCAKE_FIELDS
    return _stats_frame(_read_csv(path), str(path)), _STATS_FIELDS


def _load_trace(name: str, *, seed: int | None, rate: float | None) -> Workload:
    info = TRACES[name]
    frame, fields = _read_trace_frame(name)
    frame = frame.copy()
    meta: dict[str, Any] = {"trace": name, "file": f"instances/traces/{info.path}", "licence": info.licence}
    return _finish(frame, fields, name=name, source=name, meta=meta, seed=seed, rate=rate)


def _finish(
    frame: pd.DataFrame,
    fields: dict[str, str],
    *,
    name: str,
    source: str,
    meta: dict[str, Any],
    seed: int | None,
    rate: float | None,
) -> Workload:
    """Validate a converted frame and apply the arrival process or the time rescaling."""
    if "arrival" not in frame.columns:  # length statistics: generate arrivals
        from fluidopt.generators import arrival_times

        use_rate = DEFAULT_RATE if rate is None else rate
        use_seed = DEFAULT_SEED if seed is None else seed
        frame["arrival"] = 0.0  # validated first, then replaced
        w = Workload.from_frame(frame, name=name, source=source, fields=fields)
        rng = np.random.default_rng(int(use_seed))
        arr = arrival_times(rng, rate=float(use_rate), n=len(w), process="poisson")
        meta = {**meta, "arrival_process": "poisson", "rate": float(use_rate), "seed": int(use_seed)}
        return w.replace(arrival=arr, meta=meta)
    w = Workload.from_frame(frame, name=name, source=source, meta=meta, fields=fields)
    if rate is not None:
        if not (rate > 0):
            raise InputError(f"rate must be positive (got {rate})", source=source, field="rate")
        duration = float(w.arrival[-1] - w.arrival[0])
        if len(w) < 2 or duration <= 0:
            raise InputError("cannot rescale the rate of a trace whose arrivals span no time", source=source)
        scale = ((len(w) - 1) / duration) / rate
        w = w.replace(arrival=w.arrival * scale, meta={"time_scale": scale, "rate": float(rate)})
    return w


# ---------------------------------------------------------------------- files
def load_file(path: str | os.PathLike[str], *, seed: int | None = None, rate: float | None = None) -> Workload:
    """Load one file: our schema, an upstream trace format, or a YAML spec.

    The format is chosen by suffix (``.csv[.gz]``, ``.parquet``, ``.jsonl[.gz]``,
    ``.yaml``/``.yml``) and, for CSV and JSON Lines, by the header (see the module
    docstring).
    """
    p = Path(path)
    src = str(p)
    name = p.name.split(".")[0]
    suffixes = [s.lower() for s in p.suffixes[-2:]]
    kind = suffixes[-1] if suffixes else ""
    if kind == ".gz":
        kind = suffixes[0] if len(suffixes) == 2 else ""
    if p.is_dir():
        raise InputError("is a directory, not a workload file", source=src)
    meta: dict[str, Any] = {"file": src}
    if kind in (".yaml", ".yml"):
        from fluidopt.generators import generate

        return generate(p, seed=seed, rate=rate)
    if kind == ".csv":
        raw = _read_csv(p)
        if set(_AZURE_COLUMNS) <= set(raw.columns):
            return _finish(_azure_frame(raw, src), _AZURE_FIELDS, name=name, source=src, meta=meta, seed=seed, rate=rate)
        if "num_prefill_tokens" in raw.columns or "num_decode_tokens" in raw.columns:
            return _finish(_stats_frame(raw, src), _STATS_FIELDS, name=name, source=src, meta=meta, seed=seed, rate=rate)
        return _finish(_own_frame(raw, src), {}, name=name, source=src, meta=meta, seed=seed, rate=rate)
    if kind == ".parquet":
        try:
            raw = pd.read_parquet(p)
            meta.update(_parquet_meta(p))
        except OSError as exc:
            raise InputError(f"cannot read file: {exc.strerror or exc}", source=src) from None
        except Exception as exc:  # pyarrow raises its own types for corrupt files
            raise InputError(f"not a readable Parquet file ({type(exc).__name__}: {exc})", source=src) from None
        return _finish(_own_frame(raw, src), {}, name=name, source=src, meta=meta, seed=seed, rate=rate)
    if kind == ".jsonl":
        raw = _read_jsonl(p)
        if "input_length" in raw.columns or "output_length" in raw.columns:
            return _finish(_mooncake_frame(raw, src), _MOONCAKE_FIELDS, name=name, source=src, meta=meta, seed=seed, rate=rate)
        return _finish(_own_frame(raw, src), {}, name=name, source=src, meta=meta, seed=seed, rate=rate)
    raise InputError(
        "unknown file type; use .csv, .csv.gz, .parquet, .jsonl, .jsonl.gz or .yaml", source=src
    )


_PARQUET_META_KEY = b"fluidopt.meta"


def write_parquet(w: Workload, path: str | os.PathLike[str]) -> None:
    """Write ``w`` in our schema as Parquet, with ``w.meta`` (JSON) in the file metadata.

    :func:`load_file` restores that metadata, so e.g. the capacity C of a [KV] synthetic
    instance travels with it (a CSV file cannot carry it).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(w.to_frame(), preserve_index=False)
    extra = json.dumps(w.meta, default=_json_default, sort_keys=True).encode()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _PARQUET_META_KEY: extra})
    pq.write_table(table, str(path))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _parquet_meta(p: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    raw = (pq.read_schema(str(p)).metadata or {}).get(_PARQUET_META_KEY)
    try:
        meta = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _open_text(p: Path) -> str:
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", source=str(p)) from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError(f"corrupt gzip data ({exc})", source=str(p)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", source=str(p)) from None


def _read_csv(p: Path) -> pd.DataFrame:
    """Every field as text, so that errors quote values as written (``1e30``, ``true``)
    and the numeric checks of :class:`~fluidopt.workload.Workload` see them."""
    text = _open_text(p)
    if not text.strip():
        raise InputError("empty file (no header, no requests)", source=str(p))
    _check_field_counts(text, str(p))
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, skipinitialspace=True, index_col=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"not a readable CSV file ({str(exc).strip().splitlines()[0]})", source=str(p)) from None


def _check_field_counts(text: str, src: str) -> None:
    """Every data row has as many fields as the header.

    pandas would read the surplus leading fields of a longer row as an index and keep
    the last ones, so ``0,10,5,7,9`` under ``arrival,prompt,output`` would load as a
    request (5, 7, 9). Blank lines are skipped and not counted, as pandas does.
    """
    rows = csv.reader(io.StringIO(text), skipinitialspace=True)
    header = next(rows)
    row = 0
    for fields in rows:
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        row += 1
        if len(fields) > len(header):
            extra = ", ".join(fields[len(header):])
            raise InputError(
                f"{len(fields)} fields but the header has {len(header)} ({','.join(header)}); "
                f"extra value(s) {extra} after field '{header[-1]}'",
                source=src,
                row=row,
            )
        if len(fields) < len(header):
            raise InputError(
                f"missing ({len(fields)} fields but the header has {len(header)}: {','.join(header)})",
                source=src,
                row=row,
                field=header[len(fields)],
            )


def _read_jsonl(p: Path) -> pd.DataFrame:
    text = _open_text(p)
    records = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            raise InputError("empty line (one JSON object per line expected)", source=str(p), row=i)
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc.msg})", source=str(p), row=i) from None
        if not isinstance(rec, dict):
            raise InputError("each line must be a JSON object", source=str(p), row=i)
        records.append(rec)
    if not records:
        raise InputError("empty file (no requests)", source=str(p))
    return pd.DataFrame.from_records(records)


def _require(raw: pd.DataFrame, columns: tuple[str, ...], src: str) -> None:
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, raw.columns))}", source=src
        )


def _azure_frame(raw: pd.DataFrame, src: str) -> pd.DataFrame:
    _require(raw, _AZURE_COLUMNS, src)
    ts = pd.to_datetime(raw["TIMESTAMP"], format="%Y-%m-%d %H:%M:%S.%f", errors="coerce")
    bad = np.flatnonzero(ts.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"not a timestamp YYYY-MM-DD HH:MM:SS.fffffff (got {raw['TIMESTAMP'].iloc[i]!r})",
            source=src,
            row=i + 1,
            field="TIMESTAMP",
        )
    # Checked here, before the shift to the first request, so that a decreasing timestamp is
    # reported as such (not as a negative arrival) with the file's own values.
    dec = np.flatnonzero(np.diff(ts.to_numpy()) < np.timedelta64(0))
    if dec.size:
        i = int(dec[0]) + 1
        raise InputError(
            f"timestamp {raw['TIMESTAMP'].iloc[i]} is earlier than the previous row's "
            f"{raw['TIMESTAMP'].iloc[i - 1]} (arrivals must be sorted)",
            source=src,
            row=i + 1,
            field="TIMESTAMP",
        )
    # Seconds after the first request.
    arrival = (ts - ts.iloc[0]).dt.total_seconds().to_numpy()
    return pd.DataFrame({"arrival": arrival, "prompt": raw["ContextTokens"], "output": raw["GeneratedTokens"]})


def _mooncake_frame(raw: pd.DataFrame, src: str) -> pd.DataFrame:
    _require(raw, tuple(_MOONCAKE_FIELDS.values()), src)
    ms = _numeric(raw["timestamp"], "timestamp", src)  # checked here so the error shows the ms value
    return pd.DataFrame({"arrival": ms / 1000.0, "prompt": raw["input_length"], "output": raw["output_length"]})


def _stats_frame(raw: pd.DataFrame, src: str) -> pd.DataFrame:
    _require(raw, tuple(_STATS_FIELDS.values()), src)
    return pd.DataFrame({"prompt": raw["num_prefill_tokens"], "output": raw["num_decode_tokens"]})


def _own_frame(raw: pd.DataFrame, src: str) -> pd.DataFrame:
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    unknown = [str(c) for c in raw.columns if c not in known]
    if unknown:
        missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
        hint = f" (missing required {', '.join(missing)})" if missing else ""
        raise InputError(
            f"unknown column(s) {', '.join(unknown)}{hint}; the schema is "
            f"{','.join(REQUIRED_COLUMNS)} plus optional {','.join(OPTIONAL_COLUMNS)}",
            source=src,
            field=unknown[0],
        )
    frame = raw.copy()
    if "type" in frame.columns:
        missing = np.flatnonzero(frame["type"].isna().to_numpy())
        if missing.size:
            raise InputError("missing type label", source=src, row=int(missing[0]) + 1, field="type")
        # Labels are text whatever the file's column type, so 1 in CSV and 1 in Parquet agree.
        frame["type"] = np.array([str(v) for v in frame["type"]], dtype=object)
    return frame
