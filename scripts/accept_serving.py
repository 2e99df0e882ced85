"""The serving issue's acceptance, automated against a running `autotraining local` (or one it starts).

1. Uploads 5,000 labeled records (seeded generator, 1,000 per request) and waits until the
   worker has committed rounds covering them and a model is published.
2. TensorFlow.js 4.22 in Node loads ``/models/latest/model.json`` THROUGH the proxy, predicts
   300 fresh rows, and its probabilities must equal ``POST /predict``'s to 1e-5 (same version).
3. Each of the six bad paths of the issue must answer 4xx (sent as-is, no dot-segment clean-up).

Prints every number and a PASS/FAIL line per check; exit status 0 only when all pass.

    .venv/bin/python scripts/accept_serving.py                 # starts autotraining local itself
    .venv/bin/python scripts/accept_serving.py --api http://127.0.0.1:8080   # a running one
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from bench_infer import tfjs_predict  # noqa: E402

from autotraining.generator import generate, generate_features  # noqa: E402
from autotraining.schema import load_schema  # noqa: E402
from autotraining_tools.local.stack import stack_credentials  # noqa: E402
from autotraining_tools.signing import signed_request  # noqa: E402

BAD_PATHS = ("/models/latest/../../state", "/models/latest/%2e%2e/%2e%2e/records", "/models/latest/..%2f..%2fx",
             "/models/does-not-exist/model.json", "/models/latest/not-a-model-file.txt",
             "/models/latest/%2Fetc%2Fpasswd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(url: str, payload: Any = None, method: str | None = None, timeout: float = 60) -> tuple[int, Any]:
    data = None if payload is None else json.dumps(payload).encode()
    # The stack runs in another process: sign with its credentials, whatever this shell's are.
    req = signed_request(url, data=data, method=method or ("POST" if data else "GET"),
                         headers={"content-type": "application/json"}, credentials=stack_credentials(),
                         region="us-east-1")
    try:
        # urlopen on URLs of the stack this script started, never a user-chosen scheme
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # nosec B310
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body)
        except ValueError:
            return exc.code, body.decode(errors="replace")


def status_without_redirect(url: str) -> int:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def start_local(log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    cmd = [str(ROOT / ".venv" / "bin" / "autotraining"), "local", "--port", str(free_port()), "--emulator-port",
           str(free_port()), "--batch-size", "1000", "--batch-window", "2", "--idle-grace", "15", "--boot-delay", "2"]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        found = re.search(r"API: (http://127\.0\.0\.1:\d+)", text)
        if found:
            return proc, found.group(1)
        if proc.poll() is not None:
            raise SystemExit(f"autotraining local exited with {proc.returncode}:\n{text[-3000:]}")
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"autotraining local did not print its API URL within 90 s (log: {log_path})")


def wait_trained(api: str, records: int, timeout: float) -> dict[str, Any]:
    """The newest round once rounds cover ``records`` records and a model serves."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        status, body = request(f"{api}/models?limit=1")
        if status == 200 and body["versions"]:
            newest = body["versions"][0]
            if newest != last:
                print(f"  round {newest['version']}: {newest['status']}, records seen {newest['records_seen']}, "
                      f"held-out {newest.get('holdout_accuracy')}, serving {newest['model_version']}", flush=True)
                last = newest
            if newest["records_seen"] >= records and newest["model_version"]:
                return newest  # type: ignore[no-any-return]
        time.sleep(2)
    raise SystemExit(f"no round covering {records} records within {timeout:.0f} s (last: {last})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--api", default=None, help="base URL of a running API; default: start autotraining local")
    parser.add_argument("--records", type=int, default=5000, help="labeled records to upload and train on")
    parser.add_argument("--rows", type=int, default=300, help="rows TF.js and POST /predict must agree on")
    parser.add_argument("--timeout", type=float, default=420, help="seconds to wait for the training rounds")
    parser.add_argument("--log", default="/tmp/accept_serving_local.log", help="log of the started stack")
    args = parser.parse_args(argv)
    started = time.monotonic()
    proc = None
    api = args.api
    if api is None:
        print("starting autotraining local ...", flush=True)
        proc, api = start_local(Path(args.log))
    print(f"API: {api}", flush=True)
    checks: list[tuple[str, bool, str]] = []
    try:
        schema = load_schema()
        records = [r.to_log_dict(schema) for r in generate(schema, args.records, seed=4242,
                                                          id_prefix=f"accept-{int(time.time())}-")]
        t = time.monotonic()
        for i in range(0, len(records), 1000):
            status, body = request(f"{api}/records", records[i:i + 1000])
            if status != 201:
                raise SystemExit(f"upload failed: {status} {body}")
        print(f"uploaded {len(records)} records in {time.monotonic() - t:.1f} s; waiting for training ...", flush=True)
        t = time.monotonic()
        newest = wait_trained(api, args.records, args.timeout)
        print(f"trained: {newest['records_seen']} records seen after {time.monotonic() - t:.1f} s", flush=True)

        x = generate_features(schema, args.rows, seed=777)
        rows = [dict(zip(schema.feature_names, map(float, r), strict=False)) for r in x]
        status, before = request(f"{api}/predict", rows)
        node = tfjs_predict(f"{api}/models/latest/model.json", x.tolist())
        status2, after = request(f"{api}/predict", rows)
        if status != 200 or status2 != 200 or before["version"] != after["version"]:
            raise SystemExit(f"POST /predict answered {status}/{status2} or the model moved during the check")
        served = np.array([[p["probabilities"][lb] for lb in schema.labels] for p in before["predictions"]])
        tfjs = np.array(node["probabilities"])
        diff = float(np.abs(served - tfjs).max())
        same_labels = int((served.argmax(axis=1) == tfjs.argmax(axis=1)).sum())
        print(f"TF.js {node['tfjs']} loaded /models/latest/model.json (version {before['version']}) through the proxy "
              f"in {node['load_ms']:.0f} ms; {args.rows} rows: largest |p_tfjs - p_predict| = {diff:.2e}, "
              f"same label on {same_labels}/{args.rows}")
        checks.append(("TF.js through the proxy equals POST /predict to 1e-5", diff <= 1e-5, f"{diff:.2e}"))
        truth = generate(schema, args.rows, seed=777)
        accuracy = float(np.mean([p["label"] == r.label for p, r in zip(before["predictions"], truth, strict=False)]))
        print(f"accuracy of the served model on those rows (generator's labels): {accuracy:.3f}")

        for path in BAD_PATHS:
            code = status_without_redirect(api + path)
            checks.append((f"GET {path} answers 4xx", 400 <= code < 500, str(code)))
        good = status_without_redirect(f"{api}/models/latest/model.json")
        checks.append(("GET /models/latest/model.json answers 302", good == 302, str(good)))
        status_cli = subprocess.run([str(ROOT / ".venv" / "bin" / "autotraining"), "status", "--api", api],
                                    capture_output=True, text=True, timeout=60)
        print("\n$ autotraining status --api " + api + "\n" + status_cli.stdout + status_cli.stderr, end="")
        checks.append(("autotraining status lists the rounds", status_cli.returncode == 0
                       and newest["version"] in status_cli.stdout, f"exit {status_cli.returncode}"))
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    print()
    for name, ok, value in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}  ({value})")
    print(f"total wall time {time.monotonic() - started:.0f} s")
    return 0 if checks and all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
