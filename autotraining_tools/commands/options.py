"""What the client commands (upload, generate, predict, status, dashboard) share: the API URL, how requests are
authorized (SigV4 from the user's AWS credential chain, or a JWT bearer read from a token file), the schema, the
input file.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autotraining.errors import UsageError

# Ends a help text whose default is spelled out in words: renders as nothing, and stops the
# CLI's ArgumentDefaultsHelpFormatter from appending "(default: None)".
WORDED_DEFAULT = "%(default).0s"
API_HELP = "base URL of the API, e.g. http://127.0.0.1:8080 (default: $AUTOTRAINING_API_URL)" + WORDED_DEFAULT
TOKEN_HELP = ("file holding a JWT to send as 'Authorization: Bearer' (stacks with WriteAuthorization=JWT; "
              "`autotraining local --write-auth jwt` writes one); default: $AUTOTRAINING_API_TOKEN_FILE, "
              "else requests are signed with SigV4 from your AWS credential chain" + WORDED_DEFAULT)
# A bearer token goes into a header: one line of base64url/JWT characters, nothing that could break the header.
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{1,16384}")

if TYPE_CHECKING:
    from autotraining_tools.client import ApiClient


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 meaning "pick a free one"."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a port number 0-65535 (0 picks a free one)")
    return value


def add_api_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default=None, metavar="URL", help=API_HELP)
    add_stack_argument(parser)
    add_token_argument(parser)


def add_stack_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", default=None, metavar="NAME",
                        help="instead of --api: read the API's URL (output ApiUrl) and its authorization "
                             "(parameter WriteAuthorization) from this CloudFormation stack" + WORDED_DEFAULT)


def add_token_argument(parser: argparse.ArgumentParser, note: str = "") -> None:
    parser.add_argument("--token-file", default=None, metavar="FILE", help=TOKEN_HELP + note)


def api_token(args: argparse.Namespace) -> str | None:
    """The JWT of ``--token-file`` (else ``AUTOTRAINING_API_TOKEN_FILE``), None when neither is given."""
    from autotraining.settings import Settings, SettingsError

    try:
        path = getattr(args, "token_file", None) or Settings.from_env().api_token_file
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    if not path:
        return None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the token file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not _TOKEN.fullmatch(token):
        raise UsageError(f"the token file {path} does not hold a bearer token (one line, JWT characters only)")
    return token


def api_client(args: argparse.Namespace, timeout: float) -> ApiClient:
    """The client every command talks to the API with: the URL of ``api_url``, a bearer from ``--token-file`` or SigV4.

    With ``--stack``, a stack whose writes take JWTs needs a token file: a one-line UsageError
    says so before any request is refused.
    """
    from autotraining_tools.client import ApiClient, ApiError

    url = api_url(args)
    token = api_token(args)
    stack = getattr(args, "stack", None)
    if stack and token is None and stack_api(args).write_authorization == "JWT":
        raise UsageError(f"stack {stack!r} authorizes with JWTs (WriteAuthorization=JWT): give --token-file FILE "
                         "(or set AUTOTRAINING_API_TOKEN_FILE)")
    try:
        return ApiClient(url, timeout=timeout, token=token)
    except ApiError as exc:
        raise UsageError(str(exc)) from None


@dataclass(frozen=True)
class StackApi:
    """What a deployed stack says about its HTTP API."""

    url: str
    write_authorization: str  # AWS_IAM | JWT (the template's WriteAuthorization)
    read_authorization: str  # NONE | SAME (ReadAuthorization)


def stack_api(args: argparse.Namespace) -> StackApi:
    """The ``--stack``'s API: its ``ApiUrl`` output and authorization parameters (read once per command)."""
    found = getattr(args, "_stack_api", None)
    if isinstance(found, StackApi):
        return found
    from botocore.exceptions import BotoCoreError, ClientError

    from autotraining.aws import Aws
    from autotraining.settings import Settings, SettingsError
    from autotraining_tools.deploy.stack import describe_stack, stack_outputs

    name = args.stack
    try:
        settings = Settings.from_env()
        stack = describe_stack(Aws(settings).client("cloudformation"), name)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    except (ClientError, BotoCoreError) as exc:
        raise UsageError(f"cannot read the stack {name!r}: {exc}") from None
    if stack is None:
        raise UsageError(f"no stack named {name!r} in {settings.region} (set AWS_REGION to the stack's region)")
    url = stack_outputs(stack).get("ApiUrl", "")
    if not url:
        raise UsageError(f"the stack {name!r} has no ApiUrl output: is it an autotraining stack, and created?")
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    found = StackApi(url, parameters.get("WriteAuthorization") or "AWS_IAM",
                     parameters.get("ReadAuthorization") or "NONE")
    args._stack_api = found
    return found


def api_url(args: argparse.Namespace) -> str:
    """``--api``, else ``--stack``'s ApiUrl output, else ``AUTOTRAINING_API_URL``; missing or malformed: UsageError."""
    from autotraining.settings import Settings, SettingsError

    if getattr(args, "api", None) and getattr(args, "stack", None):
        raise UsageError("give the API with --api URL or --stack NAME, not both")
    if getattr(args, "stack", None):
        return stack_api(args).url.rstrip("/")
    try:
        url = getattr(args, "api", None) or Settings.from_env().api_url
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    if not url:
        raise UsageError("give the API's base URL with --api URL or --stack NAME (or set AUTOTRAINING_API_URL)")
    if not str(url).startswith(("http://", "https://")):
        raise UsageError(f"the API URL must start with http:// or https://, got {url!r}")
    return str(url).rstrip("/")


def schema_from(args: argparse.Namespace) -> Any:
    """``--schema``, else ``AUTOTRAINING_SCHEMA_FILE``, else the packaged default."""
    from autotraining.schema import SchemaError, load_schema
    from autotraining.settings import Settings, SettingsError

    try:
        return load_schema(getattr(args, "schema", None) or Settings.from_env().schema_file)
    except (SchemaError, SettingsError) as exc:
        raise UsageError(str(exc)) from None


def read_input(path: str) -> tuple[str, str]:
    """(name for messages, text) of a file, or of standard input for ``-``."""
    name = "stdin" if path == "-" else path
    try:
        return name, sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{name} is not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
