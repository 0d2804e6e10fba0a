"""`fluidopt deployments list|show`: the shipped deployments and their iteration-time models.

Thin over :mod:`fluidopt.deployment`. Times are in seconds, memory in KV tokens.
"""

from __future__ import annotations

from typing import Any

import click

from fluidopt.cli.output import console, emit, fmt, json_option, print_mapping, print_table
from fluidopt.errors import InputError


def parse_type(spec: str) -> tuple[int, int]:
    """``"PROMPT:OUTPUT"`` → (prompt, output), both positive integers (tokens)."""
    parts = spec.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        prompt, output = int(parts[0]), int(parts[1])
    except ValueError:
        raise InputError(f"expected PROMPT:OUTPUT with integer token counts (got {spec!r})", field="type") from None
    if prompt < 1 or output < 1:
        raise InputError(f"prompt and output must be ≥ 1 (got {spec!r})", field="type")
    return prompt, output


def describe(dep: Any, types: list[tuple[int, int]]) -> dict[str, Any]:
    """The ``show`` object: fields, coefficients, caps, provenance and per-type work."""
    from fluidopt.deployment import volume

    out = dep.to_dict()
    out["time"] = {"kind": dep.time.kind, **dep.time.coefficients()}
    out["engine"] = dep.engine_settings
    out["capacity_note"] = None if dep.capacity is not None else "given per instance (--capacity C)"
    out["types"] = [
        {
            "prompt": s,
            "output": o,
            "volume": volume(s, o),
            "marginal_work_s": dep.marginal_work(s, o),
            "iterations": o,
        }
        for s, o in types
    ]
    return out


def _render_show(d: dict[str, Any]) -> None:
    summary = {
        "name": d["name"],
        "description": d["description"],
        "capacity (KV tokens)": d["capacity"] if d["capacity"] is not None else d["capacity_note"],
        "max_batch": d["max_batch"],
        "max_tokens": d["max_tokens"],
        "chunk_size": d["chunk_size"],
        "block_size": d["block_size"],
        "engine settings": ", ".join(f"{k} {v}" for k, v in d["engine"].items() if k != "block_size"),
    }
    print_mapping(summary, title=f"deployment {d['name']}")
    t = d["time"]
    if t["kind"] == "unit":
        console.print("iteration time (unit): τ = 1 round per iteration; arrivals and decisions on integer rounds")
        if d["types"]:
            print_table(
                [(f"{r['prompt']}:{r['output']}", r["volume"], r["iterations"]) for r in d["types"]],
                ["type", "volume V (token·iter)", "iterations"],
                title="per-type work (marginal work u = 0: τ does not depend on the batch)",
            )
        _render_provenance(d)
        return
    units = {"c0": "s", "c_seq": "s per sequence", "c_kv": "s per KV token", "c_new": "s per new token",
             "c_pf2": "s per chunk token²"}
    print_table(
        [(k, t[k], units[k]) for k in units],
        ["coefficient", "value", "unit"],
        title=f"iteration time ({t['kind']}): τ = c0 + c_seq·B + c_kv·ΣKV + c_new·N_new + c_pf2·Σchunk²",
    )
    if d["types"]:
        print_table(
            [(f"{r['prompt']}:{r['output']}", r["volume"], r["marginal_work_s"]) for r in d["types"]],
            ["type", "volume V (token·iter)", "marginal work u (s)"],
            title="per-type work (whole-prompt prefill)",
        )
    _render_provenance(d)


def _render_provenance(d: dict[str, Any]) -> None:
    prov = d.get("provenance") or {}
    if prov:
        console.print("provenance:")
        for key, value in prov.items():
            text = value if isinstance(value, str) else _brief(value)
            console.print(f"  {key}: {text}")


def _brief(value: Any) -> str:
    """One line for a nested provenance entry (the full text is in --json)."""
    if isinstance(value, dict):
        if "all" in value and isinstance(value["all"], dict):  # a fit-quality block
            return "; ".join(
                f"{k}: R² {fmt(v.get('r2'))}, median rel. err {fmt(v.get('median_rel_err'))}, "
                f"max {fmt(v.get('max_rel_err'))} ({v.get('points')} points)"
                for k, v in value.items()
                if isinstance(v, dict)
            )
        return ", ".join(f"{k}={fmt(v) if not isinstance(v, (dict, list)) else '…'}" for k, v in value.items())
    if isinstance(value, list):
        return " | ".join(str(v) for v in value)
    return fmt(value)


def register(app: click.Group) -> None:
    """Add ``deployments list`` and ``deployments show`` to ``app``."""

    @app.group("deployments")
    def deployments() -> None:
        """Deployments: KV capacity and iteration-time model of a served model on a GPU kind."""

    @deployments.command("list")
    @json_option
    def list_cmd(as_json: bool) -> None:
        """List the shipped deployments (name, capacity, time model, description)."""
        from fluidopt.deployment import deployment_names, load_deployment

        rows = []
        for name in deployment_names():
            dep = load_deployment(name)
            rows.append(
                {
                    "name": dep.name,
                    "capacity": dep.capacity,
                    "time_model": "profile" if dep.iteration_time == "profile" else dep.time.kind,
                    "description": dep.description,
                }
            )
        emit(
            {"deployments": rows},
            as_json,
            lambda d: print_table(
                [(r["name"], r["capacity"] if r["capacity"] is not None else "per instance", r["time_model"],
                  r["description"]) for r in d["deployments"]],
                ["name", "capacity (tokens)", "time model", "description"],
            ),
        )

    @deployments.command("show")
    @click.argument("name_or_path")
    @click.option(
        "--types", "types_spec", metavar="PROMPT:OUTPUT[,...]",
        help="Request types (tokens), comma-separated as in `fluid --types` but without the rate; "
             "shows each type's volume V and marginal work u in s.",
    )
    @click.option("--type", "types", multiple=True, hidden=True, help="One type PROMPT:OUTPUT (repeatable; "
                  "the older spelling of --types).")
    @click.option("--capacity", "-C", type=int, help="Override the KV capacity C, tokens.")
    @json_option
    def show_cmd(name_or_path: str, types_spec: str | None, types: tuple[str, ...], capacity: int | None,
                 as_json: bool) -> None:
        """Show one deployment (shipped name or YAML path): coefficients, caps, provenance."""
        from fluidopt.deployment import load_deployment

        items = [*types, *(t.strip() for t in (types_spec or "").split(",") if t.strip())]
        parsed = [parse_type(t) for t in items]
        dep = load_deployment(name_or_path, capacity=capacity)
        emit(describe(dep, parsed), as_json, _render_show)
