"""What the client commands (upload, generate, predict, status) share: the API URL, the schema, the input file."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from autotraining.errors import UsageError

# Ends a help text whose default is spelled out in words: renders as nothing, and stops the
# CLI's ArgumentDefaultsHelpFormatter from appending "(default: None)".
WORDED_DEFAULT = "%(default).0s"
API_HELP = "base URL of the API, e.g. http://127.0.0.1:8080 (default: $AUTOTRAINING_API_URL)" + WORDED_DEFAULT


def add_api_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default=None, metavar="URL", help=API_HELP)


def api_url(args: argparse.Namespace) -> str:
    """``--api``, else ``AUTOTRAINING_API_URL``; a missing or malformed URL is a UsageError."""
    from autotraining.settings import Settings, SettingsError

    try:
        url = getattr(args, "api", None) or Settings.from_env().api_url
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    if not url:
        raise UsageError("give the API's base URL with --api URL (or set AUTOTRAINING_API_URL)")
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
