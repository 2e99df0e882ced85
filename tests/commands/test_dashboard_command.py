"""`autotraining dashboard`: help, defaults and the one-line refusals (the running proxy is tested in tests/e2e),
and the `--token-file` every client command shares."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from autotraining_tools.cli import build_parser, main

NO_CREDENTIALS_ENV = {
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials", "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata lookup (seconds of timeouts off EC2)
}


def _env_without_credentials() -> dict[str, str]:
    drop = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("AUTOTRAINING_")}
    return {**env, **NO_CREDENTIALS_ENV}


def _cli() -> list[str]:
    return [sys.executable, "-m", "autotraining_tools"]


def test_help_lists_every_option_with_its_help() -> None:
    out = subprocess.run([*_cli(), "dashboard", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for option in ("--api", "--token-file", "--port", "--open", "--timeout"):
        assert option in out.stdout
    assert "127.0.0.1" in out.stdout and "ReadAuthorization=SAME" in out.stdout
    sub = build_parser()._subparsers._group_actions[0].choices["dashboard"]  # type: ignore[union-attr]
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and len(action.help) > 15, action.option_strings
    args = build_parser().parse_args(["dashboard"])
    assert (args.port, args.open, args.token_file) == (8765, False, None)


def test_missing_credentials_are_one_line_and_exit_2() -> None:
    out = subprocess.run([*_cli(), "dashboard", "--api", "http://127.0.0.1:9", "--port", "0"], capture_output=True,
                         text=True, timeout=60, env=_env_without_credentials())
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith("autotraining dashboard: error: no AWS credentials found")
    assert out.stdout == ""


def test_a_missing_api_url_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AUTOTRAINING_API_URL", raising=False)
    assert main(["dashboard", "--port", "0"]) == 2
    assert "--api URL" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["70000", "-1", "x"])
def test_a_bad_port_is_refused_by_the_parser(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["dashboard", "--port", port])
    assert exc.value.code == 2 and "--port" in capsys.readouterr().err


@pytest.mark.parametrize("content, problem", [(None, "cannot read the token file"),
                                              ("", "does not hold a bearer token"),
                                              ("abc\r\nx-injected: 1", "does not hold a bearer token")])
@pytest.mark.parametrize("command", [["dashboard"], ["status"], ["predict", "-"]])
def test_a_bad_token_file_is_one_line_and_exit_2(command: list[str], content: str | None, problem: str,
                                                 tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token_file = tmp_path / "token.jwt"
    if content is not None:
        token_file.write_text(content)
    assert main([*command, "--api", "http://127.0.0.1:9", "--token-file", str(token_file)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and problem in err and str(token_file) in err, err


def test_the_token_file_setting_is_read_when_the_option_is_not_given(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    from autotraining_tools.commands.options import api_client

    token_file = tmp_path / "token.jwt"
    token_file.write_text("aaa.bbb.ccc\n")
    monkeypatch.setenv("AUTOTRAINING_API_TOKEN_FILE", str(token_file))
    args = build_parser().parse_args(["status", "--api", "http://127.0.0.1:9"])
    client = api_client(args, 5.0)
    assert client.token == "aaa.bbb.ccc"
    assert client.auth_headers("GET", "http://127.0.0.1:9/models", b"", {}) == {"authorization": "Bearer aaa.bbb.ccc"}


STACK_TEMPLATE = """
Parameters:
  WriteAuthorization: {Type: String, Default: AWS_IAM}
  ReadAuthorization: {Type: String, Default: NONE}
Resources:
  Queue: {Type: "AWS::SQS::Queue"}
Outputs:
  ApiUrl: {Value: "https://abc123.execute-api.us-east-1.amazonaws.com"}
"""


@pytest.fixture
def stacks() -> Iterator[None]:
    """Two deployed stacks in moto's in-process CloudFormation: ``iam-reads`` and ``jwt-reads`` (both SAME)."""
    from moto import mock_aws

    from autotraining.aws import Aws
    from autotraining.settings import Settings

    with mock_aws():
        cfn = Aws(Settings(region="us-east-1")).client("cloudformation")
        for name, writes in (("iam-reads", "AWS_IAM"), ("jwt-reads", "JWT")):
            cfn.create_stack(StackName=name, TemplateBody=STACK_TEMPLATE, Parameters=[
                {"ParameterKey": "WriteAuthorization", "ParameterValue": writes},
                {"ParameterKey": "ReadAuthorization", "ParameterValue": "SAME"}])
        yield


def test_stack_gives_the_api_url_and_its_authorization_mode(stacks: None, tmp_path: Path) -> None:
    from autotraining_tools.commands.options import api_client, stack_api

    args = build_parser().parse_args(["dashboard", "--stack", "iam-reads"])
    client = api_client(args, 5.0)
    assert client.base_url == "https://abc123.execute-api.us-east-1.amazonaws.com"
    assert client.region == "us-east-1" and client.token is None
    assert stack_api(args).read_authorization == "SAME"
    token_file = tmp_path / "token.jwt"
    token_file.write_text("aaa.bbb.ccc")
    args = build_parser().parse_args(["status", "--stack", "jwt-reads", "--token-file", str(token_file)])
    assert api_client(args, 5.0).token == "aaa.bbb.ccc"


@pytest.mark.parametrize("argv, problem", [
    (["dashboard", "--stack", "jwt-reads"], "authorizes with JWTs (WriteAuthorization=JWT): give --token-file"),
    (["predict", "--stack", "nope"], "no stack named 'nope' in us-east-1"),
    (["status", "--stack", "iam-reads", "--api", "http://127.0.0.1:9"], "not both"),
    (["generate", "-n", "3", "--stack", "jwt-reads"], "authorizes with JWTs (WriteAuthorization=JWT): give --token-file"),
])
def test_a_stack_that_cannot_be_used_is_one_line_and_exit_2(stacks: None, argv: list[str], problem: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and problem in err, err
