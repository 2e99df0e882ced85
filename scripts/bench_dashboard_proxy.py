"""What `autotraining dashboard`'s signing proxy costs: request latency and the page's time to a loaded model.

Prints numbers, never passes or fails. Starts the embedded stack with authorized reads (IAM) and a
published model (random weights, shaped like the worker's), and an in-process ``DashboardProxy``
signing with the stack's credentials, then:

1. latency of ``GET /models?limit=20`` and of a 1-row ``POST /predict``, median and p95 over N
   requests, like for like first: a SigV4-signed request straight to the stack on a kept-alive
   connection vs the same request, unsigned, to the proxy on a kept-alive connection (the proxy
   signs and forwards it on its own kept-alive connection). For reference, a signed request on a
   fresh connection each time (what ``autotraining status`` does);
2. in headless Chromium (a fresh profile per load), the time from navigation until the serving
   model is loaded and the first probabilities show: through the proxy on the authorized stack vs
   straight to a second stack, identical but with public reads (the only way a browser can open a
   dashboard without the proxy).

    .venv/bin/python scripts/bench_dashboard_proxy.py [--requests 300] [--loads 3]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench_infer import export, keras_model, publish_files  # noqa: E402

from autotraining.schema import Schema, load_schema  # noqa: E402
from autotraining_tools.local.environment import use_emulator_environment  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def timed(n: int, call: Callable[[], int]) -> tuple[float, float]:
    """(median, p95) milliseconds of ``n`` calls, after 10 warm-up calls; every call must answer 200."""
    for _ in range(10):
        call()
    ms = []
    for _ in range(n):
        started = time.perf_counter()
        status = call()
        ms.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise SystemExit(f"a measured request answered {status}")
    ms.sort()
    return statistics.median(ms), ms[int(0.95 * (len(ms) - 1))]


def caller(base: str, method: str, target: str, body: bytes, sign: Any, keep_alive: bool) -> Callable[[], int]:
    """A request as a function: signed by ``sign(method, url, body)`` (or not), on one or fresh connections."""
    netloc = urlsplit(base).netloc
    conn = [http.client.HTTPConnection(netloc, timeout=30)]

    def call() -> int:
        if not keep_alive:
            conn[0].close()
            conn[0] = http.client.HTTPConnection(netloc, timeout=30)
        headers = {"content-type": "application/json", "host": netloc}
        if sign is not None:
            headers.update(sign(method, base + target, body, {"host": netloc}))
        conn[0].request(method, target, body=body or None, headers=headers)
        resp = conn[0].getresponse()
        resp.read()
        return resp.status

    return call


def page_ready_seconds(url: str, loads: int, chromium: str) -> list[float]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as pw:
        for _ in range(loads):
            with tempfile.TemporaryDirectory() as profile:
                ctx = pw.chromium.launch_persistent_context(profile, executable_path=chromium, headless=True,
                                                            args=CHROMIUM_FLAGS)
                page = ctx.new_page()
                started = time.perf_counter()
                page.goto(url + "/")
                page.wait_for_selector('#prediction[data-state="ready"]', timeout=120_000)
                out.append(time.perf_counter() - started)
                ctx.close()
    return out


def stack_with_model(read_auth: str, files: dict[str, bytes], schema: Schema) -> Any:
    from autotraining_tools.local.stack import EmbeddedStack

    stack = EmbeddedStack(port=0, emulator_port=0, run_agent=False, run_scheduler=False, run_poller=False,
                          read_auth=read_auth).start()
    publish_files(stack.aws, schema, files)
    return stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="measured requests per kind")
    parser.add_argument("--loads", type=int, default=3, help="page loads per way of opening the dashboard")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium binary to drive")
    args = parser.parse_args(argv)
    use_emulator_environment()

    from autotraining_tools.client import ApiClient
    from autotraining_tools.dashboard_proxy import DashboardProxy
    from autotraining_tools.local.stack import stack_credentials

    schema = load_schema()
    files = export(keras_model(schema))
    row = json.dumps([{f.name: (f.typical or (f.min, f.max))[0] for f in schema.features}]).encode()

    stack = stack_with_model("authorized", files, schema)
    try:
        client = ApiClient(stack.api_url, credentials=stack_credentials())
        proxy = DashboardProxy(client, port=0).start()
        try:
            print(f"1. latency over {args.requests} requests (median / p95 ms)")
            for label, method, target, body in (("GET /models?limit=20", "GET", "/models?limit=20", b""),
                                                ("POST /predict (1 row)", "POST", "/predict", row)):
                direct = timed(args.requests, caller(stack.api_url, method, target, body, client.auth_headers, True))
                through = timed(args.requests, caller(proxy.url, method, target, body, None, True))
                fresh = timed(args.requests, caller(stack.api_url, method, target, body, client.auth_headers, False))
                print(f"   {label:24s} signed, kept-alive {direct[0]:6.2f} / {direct[1]:6.2f}   "
                      f"through the proxy {through[0]:6.2f} / {through[1]:6.2f}   "
                      f"ratio {through[0] / direct[0]:.2f}x (+{through[0] - direct[0]:.2f} ms)   "
                      f"[signed, new connection each: {fresh[0]:.2f} / {fresh[1]:.2f}]")
            via_proxy = page_ready_seconds(proxy.url, args.loads, args.chromium)
        finally:
            proxy.stop()
    finally:
        stack.stop()
    public = stack_with_model("public", files, schema)
    try:
        direct_page = page_ready_seconds(public.api_url, args.loads, args.chromium)
    finally:
        public.stop()
    print(f"2. navigation → model loaded and first probabilities, {args.loads} cold loads each (median s)")
    print(f"   public reads, straight to the stack {statistics.median(direct_page):.2f}   "
          f"authorized reads, through the proxy {statistics.median(via_proxy):.2f}   "
          f"ratio {statistics.median(via_proxy) / statistics.median(direct_page):.2f}x   "
          f"(all: {', '.join(f'{s:.2f}' for s in direct_page)} | {', '.join(f'{s:.2f}' for s in via_proxy)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
