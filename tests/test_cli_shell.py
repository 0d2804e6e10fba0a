"""The CLI shell: exit codes and one-line errors."""

from fluidopt.cli.core import run


def test_unknown_command_is_one_line_exit_2(cli):
    res = cli("no-such-command")
    assert res.code == 2
    assert res.err.count("\n") == 1 and res.err.startswith("fluidopt: error:")
    assert "Traceback" not in res.err


def test_help_exits_zero(cli):
    res = cli("--help")
    assert res.code == 0
    assert "Usage" in res.out


def test_internal_errors_are_one_line_without_debug(monkeypatch, capsys):
    import fluidopt.cli.core as app_module

    @app_module.app.command("boom-for-test")
    def boom() -> None:
        raise RuntimeError("kaput")

    try:
        assert run(["boom-for-test"]) == 1
        err = capsys.readouterr().err
        assert "internal error: RuntimeError: kaput" in err and "Traceback" not in err
    finally:
        app_module.app.commands.pop("boom-for-test")
