"""Measure the dashboard in headless Chromium against a running API (``autotraining local`` or AWS).

Prints numbers, never passes or fails: bytes the page downloads (as sent, gzip) and how long it
takes until the model is loaded and the first probabilities show; how long one batched
``predict`` of the label map takes in TensorFlow.js; the time from typing a value to the new
probabilities; and the largest difference between the page's probabilities and ``POST /predict``
over random inputs (the browser test asserts ≤ 1e-5).

    .venv/bin/autotraining local --generate &          # prints its API URL (default port 8080)
    .venv/bin/python scripts/bench_dashboard.py --url http://127.0.0.1:8080 --inputs 20
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from typing import Any

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def post_predict(url: str, rows: list[dict[str, float]]) -> dict[str, Any]:
    req = urllib.request.Request(url + "/predict", data=json.dumps(rows).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    # urlopen on URLs of the stack this script started, never a user-chosen scheme
    with urllib.request.urlopen(req, timeout=30) as resp:  # nosec B310
        return json.loads(resp.read())


def attribute(page: Any, selector: str, name: str) -> str:
    """An attribute the page must have set (a missing one is a broken page, not a number)."""
    value = page.get_attribute(selector, name)
    if value is None:
        raise SystemExit(f"the page has no {name} on {selector}")
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="base URL of the HTTP API, e.g. http://127.0.0.1:8080")
    parser.add_argument("--inputs", type=int, default=20, help="random inputs to compare against POST /predict")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium binary to drive")
    parser.add_argument("--screenshot", default="", help="also save a full-page screenshot to this PNG path")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random inputs")
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")

    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=args.chromium, headless=True,
                                                    args=CHROMIUM_FLAGS, viewport={"width": 1360, "height": 1000})
        page = ctx.new_page()
        sizes: dict[str, int] = {}

        def on_response(resp: Any) -> None:
            try:
                sizes[resp.url] = int(resp.headers.get("content-length") or 0)
            except ValueError:
                pass

        page.on("response", on_response)
        t0 = time.perf_counter()
        page.goto(url + "/", wait_until="load")
        t_load = time.perf_counter() - t0
        page.wait_for_selector('#prediction[data-state="ready"]', timeout=120_000)
        t_ready = time.perf_counter() - t0
        page.wait_for_selector('#comfort-map[data-state="ready"]')
        schema = json.loads(page.evaluate("fetch('static/schema.json').then(r => r.text())"))
        version = page.get_attribute("#prediction", "data-version")
        print(f"model {version}: page load {t_load * 1000:.0f} ms, model loaded and first probabilities "
              f"{t_ready * 1000:.0f} ms (TensorFlow.js load of the model {page.get_attribute('#prediction', 'data-load-ms')} ms)")
        own = {k: v for k, v in sizes.items() if k.startswith(url)}
        print(f"downloaded from the API: {sum(own.values()) / 1024:.0f} KiB in {len(own)} responses "
              f"(tf.min.js as sent: {sum(v for k, v in own.items() if 'tf.min.js' in k) / 1024:.0f} KiB)")
        map_ms = []
        for fx in range(len(schema["features"])):
            page.select_option("#map-x", str(fx))
            page.wait_for_timeout(50)
            map_ms.append(float(attribute(page, "#comfort-map", "data-predict-ms")))
        cells = int(attribute(page, "#comfort-map", "data-cells"))
        print(f"label map: one batched predict of {cells} rows: median {statistics.median(map_ms):.1f} ms "
              f"({cells / statistics.median(map_ms) * 1000:,.0f} rows/s)")

        rng = random.Random(args.seed)
        latencies, worst, compared, skipped = [], 0.0, 0, 0
        for _ in range(args.inputs):
            values = {}
            for f in schema["features"]:
                lo, hi = f.get("typical") or (f["min"], f["max"])
                values[f["name"]] = float(round(rng.uniform(lo, hi))) if f["type"] == "integer" else round(rng.uniform(lo, hi), 3)
            started = time.perf_counter()
            for name, v in values.items():
                page.fill(f"#input-{name}", repr(v))
            page.wait_for_function("want => { const f = document.querySelector('#prediction').dataset.features;"
                                   " const got = f ? JSON.parse(f) : {};"
                                   " return Object.entries(want).every(([k, v]) => got[k] === v); }", arg=values)
            latencies.append((time.perf_counter() - started) * 1000)
            in_browser = json.loads(attribute(page, "#prediction", "data-probabilities"))
            answer = post_predict(url, [values])
            if answer["version"] != page.get_attribute("#prediction", "data-version"):
                skipped += 1  # a new model was published in between: not the same model
                continue
            server = answer["predictions"][0]["probabilities"]
            worst = max(worst, *(abs(in_browser[k] - server[k]) for k in server))
            compared += 1
        if latencies:
            print(f"typing {len(schema['features'])} values → new probabilities: median {statistics.median(latencies):.0f} ms "
                  f"(includes the label map redraw)")
            print(f"largest |browser − POST /predict| over {compared} inputs: {worst:.2e} (asserted ≤ 1e-5 in the test; "
                  f"{skipped} skipped because a newer model was published in between)")
        if args.screenshot:
            page.evaluate("document.activeElement && document.activeElement.blur()")
            page.screenshot(path=args.screenshot, full_page=True)
            print(f"screenshot: {args.screenshot}")
        ctx.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
