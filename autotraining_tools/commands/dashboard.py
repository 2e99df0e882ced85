"""Open a stack's dashboard through a local proxy that authorizes every request with your credentials.

Needed when the stack's reads are authorized (ReadAuthorization=SAME, or `autotraining local
--read-auth same`): a browser can neither SigV4-sign a page load nor send a bearer token with one.
The proxy listens on 127.0.0.1 only and forwards the API's read routes to the stack, signed with
SigV4 from your AWS credential chain, or with the JWT of --token-file on a WriteAuthorization=JWT
stack; credentials never reach the browser. Writes and paths that are not the API's are refused.
SIGTERM or Ctrl-C stops it and exits 0. See docs/dashboard.md.
"""
from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
from typing import Any

from autotraining.errors import UsageError
from autotraining_tools.commands.options import add_api_argument, api_client, port_number, stack_api

HELP = "serve a stack's dashboard on 127.0.0.1, every request signed with your credentials (for authorized reads)"
DEFAULT_PORT = 8765


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_api_argument(parser)
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                        help="port of the local proxy on 127.0.0.1 (0 picks a free port)")
    parser.add_argument("--open", action="store_true", default=False,
                        help="open the dashboard in your web browser once the proxy is ready")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="seconds to wait for the stack's answer to each forwarded request")


def run(args: argparse.Namespace) -> int:
    from autotraining_tools.client import ApiError
    from autotraining_tools.dashboard_proxy import DashboardProxy

    if not args.timeout > 0:
        raise UsageError("--timeout must be greater than 0")
    client = api_client(args, args.timeout)
    if not client.token and client.credentials is None:
        raise UsageError("no AWS credentials found to sign with: configure them as for the AWS CLI "
                         "(AWS_PROFILE, aws configure, aws sso login), or give --token-file on a JWT stack")
    try:
        proxy = DashboardProxy(client, port=args.port, timeout=args.timeout)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise UsageError(f"port {args.port} on 127.0.0.1 is already in use (choose another with --port, "
                             "or 0 for a free one)") from None
        raise
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        proxy.start()
        how = "a bearer token from the token file" if client.token else f"SigV4 ({client.region})"
        print(f"Dashboard: {proxy.url}/", flush=True)
        print(f"Forwarding reads to {client.base_url}, authorized with {how}; Ctrl-C to stop",
              file=sys.stderr, flush=True)
        if args.stack and stack_api(args).read_authorization != "SAME":
            print(f"(the stack's reads are public: {client.base_url}/ opens without this proxy too)",
                  file=sys.stderr, flush=True)
        try:  # one read now, so a stack that refuses these credentials is said here, not only in the page
            client.history(limit=1)
        except ApiError as exc:
            print(f"warning: {exc}", file=sys.stderr, flush=True)
        if args.open:
            import webbrowser

            webbrowser.open(f"{proxy.url}/")
        while not stop.wait(0.5):
            pass
        print("Stopping...", file=sys.stderr, flush=True)
    finally:
        proxy.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
