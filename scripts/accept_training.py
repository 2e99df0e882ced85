"""The training issue's acceptance run, automated: ISO 7730 labels in, ≥97 % correct predictions out.

Starts ``autotraining local --batch-size 2000 --batch-window 5 --idle-grace 20`` as a subprocess
(on free ports), labels 20,000 records with the ISO 7730 PMV computed by ``pythermalcomfort``
(a source outside this project: PMV < −0.5 → cold, > 0.5 → warm, else ok; met 1.2, mean
radiant temperature = air temperature, °F converted to °C), uploads them in four batches of
5,000 ten seconds apart, waits until the queue drains, then checks:

- at least two committed versions;
- a ``GET /models`` entry with ``records_seen == 20000`` (an integer);
- at least 97 % of 2,000 fresh rows of the same source predicted correctly through ``POST /predict``;
- the emulated instance stopped within two minutes after the queue drained.

Prints every number and the total wall time; exits 1 when a check fails. Run:

    .venv/bin/python scripts/accept_training.py
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autotraining_tools.local.stack import stack_credentials  # noqa: E402
from autotraining_tools.signing import signed_request  # noqa: E402

LABELS = ("cold", "ok", "warm")
# Ranges inside the schema's and ISO 7730's (tdb 10–30 °C, rh 30–70 %, vr ≤ 1 m/s) that give
# every label a fair share (about 35 % cold / 30 % ok / 35 % warm).
RANGES = {"temp": (64.0, 86.0), "rh": (30.0, 70.0), "clo": (0.4, 1.2), "wind": (0.05, 0.6)}


def pmv_rows(n: int, seed: int) -> tuple[list[dict[str, float]], list[str]]:
    """``n`` feature rows and their ISO 7730 comfort labels (from pythermalcomfort)."""
    from pythermalcomfort.models import pmv_ppd_iso

    rng = np.random.default_rng(seed)
    cols = {k: np.round(rng.uniform(lo, hi, n), 3 if k in ("clo", "wind") else 2) for k, (lo, hi) in RANGES.items()}
    tdb = (cols["temp"] - 32.0) * 5.0 / 9.0
    pmv = np.asarray(pmv_ppd_iso(tdb=tdb, tr=tdb, vr=cols["wind"], rh=cols["rh"], met=1.2, clo=cols["clo"],
                                 limit_inputs=False, round_output=False).pmv, dtype=float)
    labels = np.where(pmv < -0.5, "cold", np.where(pmv > 0.5, "warm", "ok"))
    rows = [{k: float(cols[k][i]) for k in RANGES} for i in range(n)]
    return rows, [str(x) for x in labels]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(url: str, method: str = "GET", body: Any = None, timeout: float = 120) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    # The stack runs in another process: sign with its credentials, whatever this shell's are.
    req = signed_request(url, data=data, method=method, headers={"content-type": "application/json"},
                         credentials=stack_credentials(), region="us-east-1")
    # urlopen on URLs of the stack this script started, never a user-chosen scheme
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # nosec B310
        return json.loads(resp.read())


def wait(what: str, check: Any, timeout: float, every: float = 1.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if check():
                return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def local_stack(options: list[str], log_path: str, ready_timeout: float) -> Iterator[tuple[str, str]]:
    """``autotraining local OPTIONS`` on free ports as a subprocess (its output to ``log_path``), once
    its API answers: yields (API URL, emulator URL); stops it (SIGINT, then SIGKILL) on leaving."""
    api_port, emu_port = free_port(), free_port()
    api, emulator = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{emu_port}"
    cmd = [sys.executable, "-m", "autotraining_tools", "local", *options, "--port", str(api_port),
           "--emulator-port", str(emu_port)]
    print("run:", " ".join(cmd[2:]), f"(output in {log_path})", flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
                                start_new_session=True)
        try:
            wait("the embedded stack", lambda: "versions" in call(f"{api}/models", timeout=5), ready_timeout, 0.5)
            yield api, emulator
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def instance_stopped(emulator: str) -> Callable[[], bool]:
    """A check for ``wait``: every instance of the embedded stack is stopped (asked of its emulator)."""
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled"})
    import boto3

    ec2 = boto3.client("ec2", endpoint_url=emulator, region_name="us-east-1")

    def stopped() -> bool:
        states = [i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
        return bool(states) and all(s == "stopped" for s in states)

    return stopped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20000, help="records uploaded in total")
    parser.add_argument("--batches", type=int, default=4, help="upload batches (ten seconds apart)")
    parser.add_argument("--gap", type=float, default=10.0, help="seconds between upload batches")
    parser.add_argument("--fresh", type=int, default=2000, help="fresh rows scored through POST /predict")
    parser.add_argument("--log", default="", help="file for the embedded run's output (default: a temp file)")
    args = parser.parse_args()
    t0 = time.monotonic()
    rows, labels = pmv_rows(args.records, seed=2026)
    fresh_rows, fresh_labels = pmv_rows(args.fresh, seed=7730)
    print("label shares:", {lab: round(labels.count(lab) / len(labels), 3) for lab in LABELS})
    options = ["--batch-size", "2000", "--batch-window", "5", "--idle-grace", "20"]
    with local_stack(options, args.log or f"/tmp/accept_training_{os.getpid()}.log", 120) as (api, emulator):
        print(f"stack up after {time.monotonic() - t0:.1f} s")
        per = args.records // args.batches
        for b in range(args.batches):
            if b:
                time.sleep(args.gap)
            for i in range(b * per, (b + 1) * per, 1000):
                body = [{**rows[j], "label": labels[j]} for j in range(i, min(i + 1000, (b + 1) * per))]
                call(f"{api}/records", "POST", body)
            print(f"batch {b + 1}: {per} records uploaded at {time.monotonic() - t0:.1f} s")
        t_uploaded = time.monotonic()

        def seen() -> int:
            versions = call(f"{api}/models", timeout=10)["versions"]
            return int(versions[0]["records_seen"]) if versions else 0

        wait(f"records_seen == {args.records}", lambda: seen() == args.records, 600)
        t_drained = time.monotonic()
        print(f"queue drained {t_drained - t_uploaded:.1f} s after the last upload")
        history = call(f"{api}/models")["versions"]
        for v in reversed(history):
            print(f"  version {v['version']} {v['status']:9s} new={v['new_records']:5d} seen={v['records_seen']:5d} "
                  f"prequential={v['prequential_accuracy']} holdout={v['holdout_accuracy']} gate={v['gate']!r} "
                  f"duration={v['duration_s']} s")
        committed = len(history)
        exact = [v for v in history if v["records_seen"] == args.records and isinstance(v["records_seen"], int)]
        answer = call(f"{api}/predict", "POST", fresh_rows)
        correct = sum(p["label"] == y for p, y in zip(answer["predictions"], fresh_labels, strict=True))
        accuracy = correct / len(fresh_labels)
        print(f"committed versions: {committed} (need >= 2)")
        print(f"GET /models entry with records_seen == {args.records} (int): {len(exact)} (need >= 1)")
        print(f"POST /predict on {len(fresh_labels)} fresh rows: {accuracy:.4f} correct, model {answer['version']} "
              f"(need >= 0.97)")
        try:
            wait("the instance to stop", instance_stopped(emulator), 150, 0.5)
            stop_after = time.monotonic() - t_drained
        except TimeoutError:
            stop_after = float("inf")
        print(f"instance stopped {stop_after:.1f} s after the queue drained (need <= 120)")
        ok = committed >= 2 and len(exact) >= 1 and accuracy >= 0.97 and stop_after <= 120
    print(f"total wall time {time.monotonic() - t0:.1f} s")
    print("ACCEPTED" if ok else "NOT ACCEPTED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
