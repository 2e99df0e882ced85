"""Helpers the end-to-end tests share: signed JSON calls to the embedded API, uploads, waiting.

A top-level module (imported as ``from e2e_fixtures import ...``), like ``ingest_fixtures``:
pythermalcomfort installs a top-level ``tests`` package, so ``tests.…`` imports are avoided.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from autotraining_tools.signing import signed_request


def _json_request(url: str, method: str, body: Any) -> urllib.request.Request:
    data = json.dumps(body).encode() if body is not None else None
    return signed_request(url, data=data, method=method, headers={"content-type": "application/json"})


def call(url: str, method: str = "GET", body: Any = None) -> Any:
    """A JSON request to the embedded API, signed with the stack's credentials (uploads need it);
    the answer's JSON body, or ``urllib.error.HTTPError`` when it is not a 2xx."""
    with urllib.request.urlopen(_json_request(url, method, body), timeout=60) as resp:
        return json.loads(resp.read())


def call_status(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    """Like ``call``, for tests that expect errors too: (status, JSON body) whatever the status."""
    try:
        with urllib.request.urlopen(_json_request(url, method, body), timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> float:
    """Poll ``check`` every half second; the seconds it took, or an AssertionError naming ``what``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def predict_when_serving(api: str, rows: list[dict[str, Any]], version: str, timeout: float = 60) -> Any:
    """``POST /predict`` once ``version`` answers it: a round commits before its files are promoted,
    and the infer handler re-checks ``latest`` every AUTOTRAINING_MODEL_CACHE_SECONDS, so the
    previous model answers for a few seconds after a commit."""
    answers: list[Any] = []
    wait_for(f"POST /predict to be answered by model {version}",
             lambda: answers.append(call(f"{api}/predict", "POST", rows)) or answers[-1]["version"] == version,
             timeout)
    return answers[-1]


def upload(api: str, records: list[Any], schema: Any) -> None:
    """POST the records in 1,000-record requests; each must be accepted whole."""
    for i in range(0, len(records), 1000):
        rows = [r.to_log_dict(schema) for r in records[i:i + 1000]]
        assert call(f"{api}/records", "POST", rows)["accepted"] == len(rows)


def records_seen(registry: Any) -> int:
    """What the last committed round counted (0 before the first)."""
    latest = registry.latest()
    return int(latest.records_seen) if latest else 0


def cli_command() -> list[str]:
    """The installed ``autotraining`` console command (else ``python -m autotraining_tools``)."""
    script = Path(sys.executable).parent / "autotraining"
    return [str(script)] if script.exists() else [sys.executable, "-m", "autotraining_tools"]


@contextmanager
def running_cli(args: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """``autotraining ARGS`` as a process: (the process, its stderr lines so far); its stdout is for the
    test to read. Leaving the block sends SIGTERM, which must stop it with exit 0 and no traceback."""
    proc = subprocess.Popen([*cli_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(proc.stderr or []), daemon=True)
    reader.start()
    try:
        yield proc, stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, "".join(stderr)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    assert "Traceback" not in "".join(stderr)
