"""One flag vocabulary across subcommands, help on every option, units in every table."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from fluidopt.cli.core import _register_commands, app
from fluidopt.cli.units import unit_of

_register_commands()


def commands(group: click.Group = app, path: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from commands(cmd, (*path, name))
        else:
            yield " ".join((*path, name)), cmd


COMMANDS = dict(commands())
#: Option names that must always come with their short form.
SHORT = {"--capacity": "-C", "--requests": "-n", "--workload": "-w", "--policy": "-p"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help(name: str) -> None:
    missing = [p.opts for p in COMMANDS[name].params if isinstance(p, click.Option) and not p.help]
    assert not missing, f"fluidopt {name}: options without help {missing}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_one_vocabulary(name: str) -> None:
    for p in COMMANDS[name].params:
        opts = set(p.opts)
        for long, short in SHORT.items():
            if long in opts:
                assert short in opts, f"fluidopt {name}: {long} without {short}"
            if short in opts and long not in opts:
                assert short == "-p" and "--policies" in opts, f"fluidopt {name}: {short} means {sorted(opts)}"
        visible = not getattr(p, "hidden", False)
        assert not (visible and "--type" in opts), f"fluidopt {name}: types are given as --types"


def test_instances_accept_w(cli, tmp_path: Path) -> None:
    assert cli("instances", "show", "-w", "azure-code", "--json").json()["n_requests"] == 8819
    out = tmp_path / "w.csv"
    assert cli("instances", "generate", "-w", "kv-synthetic-1", "-o", out).code == 0 and out.exists()
    res = cli("instances", "show", "azure-code", "-w", "azure-conv")
    assert res.code == 2 and "give the workload once" in res.err


def test_requests_above_a_specs_n_are_generated(cli, tmp_path: Path) -> None:
    out = tmp_path / "w.parquet"
    res = cli("instances", "generate", "wait-p512d1000", "-n", "2500", "-o", out, "--json")  # the spec's n is 2,000
    assert res.code == 0, res.err
    assert res.json()["n_requests"] == 2500
    # fewer than the spec's n: the first requests of the usual draw
    small = cli("instances", "show", "wait-p512d1000", "-n", "300", "--json").json()
    usual = cli("instances", "show", "wait-p512d1000", "--json").json()
    assert small["n_requests"] == 300 and usual["n_requests"] == 2000
    res = cli("instances", "show", "azure-code", "-n", "10000")
    assert res.code == 2 and "has 8,819 requests, fewer than the 10,000 asked for" in res.err


def test_deployments_show_takes_types_like_fluid(cli) -> None:
    new = cli("deployments", "show", "llama2-7b-a100", "--types", "512:20,1024:50", "--json").json()["types"]
    old = cli("deployments", "show", "llama2-7b-a100", "--type", "512:20", "--type", "1024:50", "--json").json()
    assert [(t["prompt"], t["output"]) for t in new] == [(512, 20), (1024, 50)] and new == old["types"]


def numeric_fields(data: dict) -> list[str]:
    return [k for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]


@pytest.mark.parametrize(
    ("args", "unitless"),
    [
        (("simulate", "-w", "wait-p512d20", "-d", "llama2-7b-a100", "-p", "sarathi", "-n", "100"), {"seed"}),
        (("fluid", "--types", "20:512:20", "-d", "llama2-7b-a100"), set()),
        (("instances", "show", "azure-conv"), set()),
        (("fluid-lp", "--types", "30:512:20,10:512:50", "-d", "llama2-7b-a100"), set()),
        (("bounds", "-w", "kv-synthetic-1", "-n", "8", "--time-limit", "2"), set()),
        (("solve", "-w", "kv-synthetic-1", "-n", "8", "--time-limit", "3"), set()),
    ],
)
def test_every_number_in_a_table_has_a_unit(cli, args: tuple[str, ...], unitless: set[str]) -> None:
    data = cli(*args, "--json").json()
    missing = [k for k in numeric_fields(data) if k not in unitless and not unit_of(k)]
    assert not missing, f"fields without a unit: {missing}"
    table = cli(*args).out
    assert "┃ unit" in table


def test_unit_time_runs_show_rounds(cli, tmp_path: Path) -> None:
    wl = tmp_path / "w.csv"
    wl.write_text("arrival,prompt,output\n0,2,3\n")
    table = cli("simulate", "-w", wl, "-d", "unit", "-C", "10", "-p", "fcfs").out
    rows = {ln.split("│")[0].strip(): ln for ln in table.splitlines()}
    assert rows["mean_latency"].rstrip().endswith("rounds")
    assert rows["throughput_tokens_per_s"].rstrip().endswith("output tokens/round")


@pytest.mark.parametrize("command", ["solve", "score", "bounds", "demo"])
@pytest.mark.parametrize("limit", ["-1", "0"])
def test_time_limits_must_be_positive(cli, small: Path, command: str, limit: str) -> None:
    args = ["--time-limit", limit] if command == "demo" else ["-w", small, "-C", "5", "--time-limit", limit]
    res = cli(command, *args)
    assert res.code == 2 and res.err.count("\n") == 1
    assert "Invalid value for '--time-limit'" in res.err
