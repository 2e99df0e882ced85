"""Run the whole stack on this machine: a moto server as AWS, an HTTP gateway as API Gateway, a
stream poller as the DynamoDB-stream trigger, a scheduler as EventBridge and an instance agent that
runs the worker while the emulated instance is running. Prints the API and emulator URLs when
ready; SIGTERM or Ctrl-C shuts everything down and exits 0. See docs/local.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
from typing import Any

from autotraining.errors import UsageError
from autotraining_tools.commands.options import WORDED_DEFAULT, port_number

HELP = "run the whole stack locally against an embedded AWS emulator (moto)"
TOKEN_TTL_SECONDS = 24 * 3600.0  # a working day; the issuer's key lives only as long as the process


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be a number >= 0")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=port_number, default=8080,
                        help="port of the HTTP API gateway on 127.0.0.1 (0 picks a free port)")
    parser.add_argument("--emulator-port", type=port_number, default=5000,
                        help="port of the moto server (the AWS emulator) on 127.0.0.1 (0 picks a free port)")
    parser.add_argument("--batch-size", type=_positive_int, default=500,
                        help="most records per stream batch delivered to the stream handler (one log segment each)")
    parser.add_argument("--batch-window", type=_non_negative, default=2.0,
                        help="seconds the stream poller gathers records before delivering a partial batch")
    parser.add_argument("--idle-grace", type=_non_negative, default=60.0,
                        help="seconds the worker waits on an empty queue before stopping its instance")
    parser.add_argument("--boot-delay", type=_non_negative, default=5.0,
                        help="seconds between the emulated instance becoming running and the worker starting")
    parser.add_argument("--schedule", type=_non_negative, default=60.0, metavar="SECONDS",
                        help="period of the starter schedule (the EventBridge rule), in seconds")
    parser.add_argument("--generate", action="store_true", default=False,
                        help="feed the stack with synthetic labeled records (the generator handler)")
    parser.add_argument("--generate-every", type=_non_negative, default=5.0, metavar="SECONDS",
                        help="period of the generator when --generate is on, in seconds")
    parser.add_argument("--start-threshold", type=_positive_int, default=None,
                        help="pending log segments that make the stream handler start the instance; "
                             "None: the setting AUTOTRAINING_START_THRESHOLD, else 1")
    parser.add_argument("--write-auth", choices=("iam", "jwt"), default="iam",
                        help="authorization of POST /records, as the stack's WriteAuthorization: iam (SigV4 with "
                             "the embedded stack's credentials) or jwt (bearer tokens of a local issuer)")
    parser.add_argument("--read-auth", choices=("public", "same"), default="public",
                        help="authorization of the reads (dashboard, /models, /predict, model files), as the "
                             "stack's ReadAuthorization: public, or the same as writes (open the dashboard "
                             "with `autotraining dashboard`)")
    parser.add_argument("--token-file", default=None, metavar="FILE",
                        help="with --write-auth jwt: where to write a token of the local issuer (valid 24 h) "
                             "for the client commands' --token-file; default: a file in a fresh temporary "
                             "folder, removed at exit" + WORDED_DEFAULT)


def _check_schema() -> None:
    """A bad schema file stops ``local`` before anything starts, with one line naming file and feature."""
    from autotraining.schema import SchemaError, load_schema
    from autotraining.settings import Settings, SettingsError
    from autotraining_tools.cli import UsageError

    try:
        load_schema(Settings.from_env().schema_file)
    except (SchemaError, SettingsError) as exc:
        raise UsageError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from autotraining_tools.local.stack import EmbeddedStack, PortInUse

    if args.port and args.port == args.emulator_port:
        raise UsageError(f"--port and --emulator-port are both {args.port}; give them different ports")
    if args.schedule <= 0:
        raise UsageError("--schedule must be greater than 0")
    if args.generate and args.generate_every <= 0:
        raise UsageError("--generate-every must be greater than 0")
    if args.token_file and args.write_auth != "jwt":
        raise UsageError("--token-file is where --write-auth jwt writes its token; give both or neither")
    _check_schema()
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    stack = EmbeddedStack(port=args.port, emulator_port=args.emulator_port, batch_size=args.batch_size,
                          batch_window=args.batch_window, idle_grace=args.idle_grace, boot_delay=args.boot_delay,
                          schedule_seconds=args.schedule, generate=args.generate,
                          generate_every=args.generate_every, start_threshold=args.start_threshold,
                          auth=args.write_auth, read_auth="authorized" if args.read_auth == "same" else "public")
    token_dir: str | None = None
    try:
        try:
            stack.start()
        except PortInUse as exc:
            raise UsageError(f"{exc} (choose another with --port / --emulator-port, or 0 for a free one)") from None
        print(f"API: {stack.api_url}", flush=True)
        print(f"Emulator: {stack.emulator_url}", flush=True)
        print(f"Instance: {stack.settings.instance_id} (stopped until there is work); Ctrl-C to stop",
              file=sys.stderr, flush=True)
        if stack.issuer is not None:
            token_file, token_dir = write_token(stack.issuer.issue("local-user", ttl_seconds=TOKEN_TTL_SECONDS),
                                                args.token_file)
            print(f"Token: {token_file}", flush=True)
            print(f"POST /records needs a JWT of the local issuer: give --token-file {token_file} to upload, "
                  "predict, status and dashboard (valid 24 h)", file=sys.stderr, flush=True)
        else:
            print("POST /records needs a SigV4 signature: AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
                  "(the CLI's upload signs with them)", file=sys.stderr, flush=True)
        if args.read_auth == "same":
            command = f"autotraining dashboard --api {stack.api_url}"
            if stack.issuer is not None:
                command += f" --token-file {token_file}"
            print(f"Reads need the same authorization: open the dashboard through `{command}`",
                  file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
        print("Stopping...", file=sys.stderr, flush=True)
    finally:
        stack.stop()
        if token_dir is not None:
            shutil.rmtree(token_dir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def write_token(token: str, path: str | None) -> tuple[str, str | None]:
    """Write ``token`` (owner-only) to ``path``, else into a fresh temporary folder; (file, folder to remove)."""
    folder = None
    if not path:
        folder = tempfile.mkdtemp(prefix="autotraining-local-")
        path = os.path.join(folder, "token.jwt")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(token + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write the token to {path}: {exc.strerror or exc}") from None
    return path, folder
