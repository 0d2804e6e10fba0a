"""Per-request records and the summary metrics of the system model.

The engine (:mod:`fluidopt.executor.engine`) produces a :class:`RunResult`: one record per
request plus a few run-level integrals. Every metric name follows ``system-model.md``.
Times are in seconds for the linear-kv and affine time models and in rounds for the unit
model (there "per second" reads "per round").

Choices the spec leaves open (documented here, used everywhere):

- ``ttft`` is measured from arrival to the end of the iteration that emitted the
  request's **first token ever**; a re-run after an eviction does not reset it. ``tpot``
  is ``(completion − first_token)/(o − 1)`` with that same first token, so time lost to an
  eviction shows up in ``tpot`` and ``latency`` but not in ``ttft``.
- The **measurement window** is a set of requests, not a time interval: requests are
  ranked by (arrival, id); the first ``warmup`` and the last ``cooldown`` fractions
  (rounded down) are dropped. Latency-type metrics, ``tct``, ``tel``, ``evictions`` and
  ``wasted_tokens`` are over the window's requests. Rates (``throughput_tokens_per_s``,
  ``requests_per_s``) divide the window's completed output tokens / requests by the
  window's span: from the first arrival in the window to the last completion in it (or
  the end of the run when one of them is unfinished).
- ``tct`` and ``tel`` sum over *completed* requests only; ``unfinished`` says how many
  are missing from them.
- With an SLO (:mod:`fluidopt.executor.slo`), the summary adds the verdict, the
  per-request SLO attainment and the goodput over the same window and span, and the
  records (:meth:`RunResult.to_frame`) a ``meets_slo`` column.
- ``peak_kv``, ``mean_kv_util``, ``mean_waiting`` and ``mean_in_system`` are run-level,
  time-weighted over the whole run (from the first arrival to the end of the last
  iteration): an iteration of duration τ contributes τ times its end-of-iteration KV
  (the peak of that iteration, system model) or its queue count; idle stretches
  contribute zero KV.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fluidopt.executor.slo import Slo, as_slo, goodput

RECORD_COLUMNS = (
    "id",
    "arrival",
    "prompt",
    "output",
    "first_admitted",
    "start",
    "first_token",
    "completion",
    "finished",
    "evictions",
    "wasted_tokens",
)

#: Summary fields that are counts (summed, not averaged, when aggregating seeds).
_QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))


@dataclass
class RunResult:
    """Everything a run produced.

    Attributes
    ----------
    records
        One row per request (workload order): ``id, arrival, prompt, output,
        first_admitted`` (clock of the first admission ever), ``start`` (start of the
        final successful run, or of the current run if unfinished but resident),
        ``first_token``, ``completion`` (NaN if unfinished), ``finished``,
        ``evictions``, ``wasted_tokens`` (generated then discarded by evictions).
    events
        Per-iteration event log (``time`` = end of the iteration, ``duration``,
        ``batch``, ``kv`` = end-of-iteration KV of all residents, ``new_tokens``,
        ``emitted`` output tokens, ``evictions`` in the iteration, ``waiting`` after
        admission) or ``None``.
    policy, params
        Policy registry name and its parameters.
    workload_name, workload_digest, workload_meta
        Provenance of the workload.
    deployment
        Deployment name; ``time_model`` its time-model kind.
    capacity
        KV capacity C used, tokens.
    run
        Run-level numbers from the engine: ``iterations``, ``decisions`` (calls of
        ``policy.decide``), ``end_time``, ``start_time``,
        ``peak_kv``, ``kv_integral`` (Σ τ·KV, token·s), ``waiting_integral``,
        ``in_system_integral`` (request·s), ``busy_time``, ``stop_reason``.
    """

    records: pd.DataFrame
    events: pd.DataFrame | None
    policy: str
    params: dict[str, Any]
    workload_name: str
    workload_digest: str
    workload_meta: dict[str, Any]
    deployment: str
    time_model: str
    capacity: int
    run: dict[str, Any] = field(default_factory=dict)

    def summary(self, warmup: float = 0.0, cooldown: float = 0.0, slo: Slo | str | None = None) -> dict[str, Any]:
        """Summary metrics over the central window; see :func:`summarize`."""
        return summarize(self, warmup=warmup, cooldown=cooldown, slo=slo)

    def to_frame(self, slo: Slo | str | None = None) -> pd.DataFrame:
        """Per-request records with the per-request metrics (``ttft``, ``latency``, ``tpot``)
        and, given an SLO, ``meets_slo`` (finished within every deadline)."""
        frame = request_metrics(self.records)
        slo = as_slo(slo)
        if slo is not None:
            frame["meets_slo"] = slo.meets(frame)
        return frame

    def to_dict(self, warmup: float = 0.0, cooldown: float = 0.0, slo: Slo | str | None = None) -> dict[str, Any]:
        """JSON-safe dict: the summary plus provenance (no per-request rows)."""
        from fluidopt.jsonable import to_jsonable

        out = self.summary(warmup=warmup, cooldown=cooldown, slo=slo)
        out.update(
            {
                "params": self.params,
                "workload": self.workload_name,
                "workload_digest": self.workload_digest,
                "workload_meta": self.workload_meta,
                "deployment": self.deployment,
                "time_model": self.time_model,
                "run": self.run,
            }
        )
        return to_jsonable(out)


def request_metrics(records: pd.DataFrame) -> pd.DataFrame:
    """Add ``ttft``, ``latency`` and ``tpot`` columns to per-request records.

    ``ttft`` = first_token − arrival; ``latency`` = completion − arrival; ``tpot`` =
    (completion − first_token)/(output − 1) for output > 1, NaN otherwise or when
    unfinished. Units are those of the clock (s, or rounds in the unit model).
    """
    out = records.copy()
    out["ttft"] = out["first_token"] - out["arrival"]
    out["latency"] = out["completion"] - out["arrival"]
    denom = (out["output"] - 1).astype(np.float64).where(out["output"] > 1)
    out["tpot"] = (out["completion"] - out["first_token"]) / denom
    return out


def window_mask(records: pd.DataFrame, warmup: float = 0.0, cooldown: float = 0.0) -> np.ndarray:
    """Boolean mask of the central window: drop the first ``warmup`` and last ``cooldown``
    fractions of requests ranked by (arrival, id); counts are rounded down."""
    if not (0 <= warmup < 1 and 0 <= cooldown < 1 and warmup + cooldown < 1):
        from fluidopt.errors import InputError

        raise InputError(f"warmup and cooldown must be fractions in [0, 1) summing to < 1 (got {warmup}, {cooldown})")
    n = len(records)
    order = np.lexsort((records["id"].to_numpy(), records["arrival"].to_numpy()))
    lo, hi = int(math.floor(warmup * n)), n - int(math.floor(cooldown * n))
    mask = np.zeros(n, dtype=bool)
    mask[order[lo:hi]] = True
    return mask


def _stats(prefix: str, values: np.ndarray, out: dict[str, Any]) -> None:
    values = values[np.isfinite(values)]
    if values.size == 0:
        out[f"mean_{prefix}"] = None
        for q, _ in _QUANTILES:
            out[f"{q}_{prefix}"] = None
        return
    out[f"mean_{prefix}"] = float(values.mean())
    for q, level in _QUANTILES:
        out[f"{q}_{prefix}"] = float(np.quantile(values, level))


def summarize(
    result: RunResult, warmup: float = 0.0, cooldown: float = 0.0, slo: Slo | str | None = None
) -> dict[str, Any]:
    """The summary metrics of ``system-model.md`` over the central window.

    Parameters
    ----------
    result
        A finished run.
    warmup, cooldown
        Fractions of requests (by arrival order) dropped at the start and the end.
    slo
        Optional SLO (text or :class:`~fluidopt.executor.slo.Slo`).

    Returns
    -------
    dict
        ``policy, n_requests, completed, unfinished`` (whole run), window size
        ``window_requests``; for the window: ``mean/p50/p90/p99`` of ``latency``,
        ``ttft``, ``tpot``; ``tct``, ``tel`` (completed requests), ``throughput_tokens_per_s``,
        ``requests_per_s``, ``evictions``, ``wasted_tokens``; run-level ``peak_kv``,
        ``mean_kv_util`` (fraction of C), ``mean_waiting``, ``mean_in_system``,
        ``iterations``, ``makespan``, ``capacity``. With an SLO also ``slo_attainment``,
        ``goodput_requests_per_s``, ``goodput_tokens_per_s`` and the verdict of
        :meth:`~fluidopt.executor.slo.Slo.evaluate` (``slo``, ``slo_met``, ``slo_terms``,
        ``slo_window_unfinished``).

    Raises
    ------
    InputError
        Bad window fractions or a malformed SLO text.
    """
    slo = as_slo(slo)
    rec = result.records
    finished = rec["finished"].to_numpy()
    mask = window_mask(rec, warmup, cooldown)
    win = rec[mask]
    wfin = win["finished"].to_numpy()
    arrival = win["arrival"].to_numpy(dtype=np.float64)
    completion = win["completion"].to_numpy(dtype=np.float64)
    first_token = win["first_token"].to_numpy(dtype=np.float64)
    output = win["output"].to_numpy()
    out: dict[str, Any] = {
        "policy": result.policy,
        "n_requests": int(len(rec)),
        "completed": int(finished.sum()),
        "unfinished": int((~finished).sum()),
        "window_requests": int(len(win)),
        "warmup": warmup,
        "cooldown": cooldown,
    }
    latency = completion - arrival
    _stats("latency", latency, out)
    _stats("ttft", first_token - arrival, out)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(output > 1, (completion - first_token) / np.maximum(output - 1, 1), np.nan)
    _stats("tpot", tpot, out)
    out["tct"] = float(completion[wfin].sum())
    out["tel"] = float(latency[wfin].sum())
    end_time = float(result.run.get("end_time", np.nan))
    if len(win):
        t0 = float(arrival.min())
        t1 = float(completion[wfin].max()) if wfin.all() and wfin.size else end_time
        span = t1 - t0
    else:
        span = 0.0
    tokens = float(output[wfin].sum())
    out["throughput_tokens_per_s"] = tokens / span if span > 0 else None
    out["requests_per_s"] = float(wfin.sum()) / span if span > 0 else None
    out["evictions"] = int(win["evictions"].sum())
    out["wasted_tokens"] = int(win["wasted_tokens"].sum())
    run = result.run
    out["peak_kv"] = int(run.get("peak_kv", 0))
    out["capacity"] = int(result.capacity)
    total = end_time - float(run.get("start_time", 0.0))
    if total > 0:
        out["mean_kv_util"] = float(run.get("kv_integral", 0.0)) / (total * result.capacity)
        out["mean_waiting"] = float(run.get("waiting_integral", 0.0)) / total
        out["mean_in_system"] = float(run.get("in_system_integral", 0.0)) / total
    else:
        out["mean_kv_util"] = out["mean_waiting"] = out["mean_in_system"] = None
    out["iterations"] = int(run.get("iterations", 0))
    out["makespan"] = end_time
    out["stop_reason"] = run.get("stop_reason")
    if slo is not None:
        frame = request_metrics(win)
        out.update(goodput(frame, slo.meets(frame), span))
        out.update(slo.evaluate(out, window_unfinished=int((~wfin).sum())))
    return out


def aggregate_seeds(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1; 0 for one seed) of every numeric
    field across runs with different seeds.

    Returns ``{field: {"mean": m, "std": s, "n": k}}`` for numeric fields (``None``
    values are skipped) and ``{field: value}`` for non-numeric fields equal in all runs.
    """
    if not summaries:
        return {}
    out: dict[str, Any] = {}
    for key in summaries[0]:
        values = [s.get(key) for s in summaries]
        nums = [float(v) for v in values if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)]
        if nums and len(nums) == sum(v is not None for v in values):
            arr = np.asarray(nums)
            out[key] = {
                "mean": float(arr.mean()),
                "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
                "n": int(arr.size),
            }
        elif all(v == values[0] for v in values):
            out[key] = values[0]
    return out
