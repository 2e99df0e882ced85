"""`autotraining local`: options, defaults and help (the running command is tested in tests/e2e)."""
from __future__ import annotations

import pytest

from autotraining_tools.cli import build_parser

OPTIONS = ("--port", "--emulator-port", "--batch-size", "--batch-window", "--idle-grace", "--boot-delay",
           "--schedule", "--generate", "--generate-every", "--start-threshold", "--write-auth", "--read-auth",
           "--token-file")


def test_every_option_has_help_and_a_default() -> None:
    sub = build_parser()._subparsers._group_actions[0].choices["local"]  # type: ignore[union-attr]
    actions = {opt: a for a in sub._actions for opt in a.option_strings}
    for opt in OPTIONS:
        assert actions[opt].help and len(actions[opt].help) > 15, opt
    args = build_parser().parse_args(["local"])
    assert (args.port, args.emulator_port, args.batch_size, args.batch_window) == (8080, 5000, 500, 2.0)
    assert args.generate is False and args.start_threshold is None
    assert (args.write_auth, args.read_auth, args.token_file) == ("iam", "public", None)
    assert args.idle_grace > 0 and args.boot_delay > 0 and args.schedule > 0 and args.generate_every > 0


@pytest.mark.parametrize("argv", [["--batch-size", "0"], ["--port", "70000"], ["--batch-window", "-1"],
                                  ["--start-threshold", "0"], ["--write-auth", "none"], ["--read-auth", "authorized"]])
def test_bad_values_are_refused_by_the_parser(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["local", *argv])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_a_token_file_without_jwt_mode_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from autotraining_tools.cli import main

    assert main(["local", "--port", "0", "--emulator-port", "0", "--token-file", "t.jwt"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--write-auth jwt" in err
