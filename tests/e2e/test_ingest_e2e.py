"""End to end on the real embedded stack: records over HTTP → table → S3 log → queue → instance start.

The instance agent runs a stand-in worker (a sleeping process) here, so the queue is left for
the test to inspect; the real worker is exercised by the training e2e tests.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from e2e_fixtures import cli_command, running_cli

from autotraining.aws import Aws
from autotraining.generator import generate
from autotraining.schema import Schema, load_schema
from autotraining.segments import LOG_PREFIX, SegmentRef, decode_segment
from autotraining.settings import Settings
from autotraining_tools.local.stack import EmbeddedStack
from autotraining_tools.signing import signed_request

pytestmark = pytest.mark.e2e

STAND_IN_WORKER = [sys.executable, "-c", "import time; time.sleep(300)"]


def _post(url: str, body: bytes | str) -> tuple[int, Any]:
    data = body.encode() if isinstance(body, str) else body
    req = signed_request(f"{url}/records", data=data, headers={"content-type": "application/json"},
                         method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _table_count(stack: EmbeddedStack) -> int:
    pages = stack.aws.dynamodb.get_paginator("scan").paginate(TableName=stack.settings.records_table,
                                                              Select="COUNT")
    return sum(page["Count"] for page in pages)


def _log_ids(stack: EmbeddedStack, schema: Schema) -> tuple[list[str], list[str]]:
    """(segment keys, record ids of every line of every segment)."""
    s3, bucket = stack.aws.s3, stack.settings.bucket
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=LOG_PREFIX)
            for o in page.get("Contents", [])]
    ids = [r.id for key in keys for r in decode_segment(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), schema)]
    return keys, ids


def _queue_refs(stack: EmbeddedStack) -> list[SegmentRef]:
    refs: list[SegmentRef] = []
    sqs, url = stack.aws.sqs, stack.settings.queue_url
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   VisibilityTimeout=300).get("Messages", [])
        if not msgs:
            return refs
        refs += [SegmentRef.from_message(m["Body"]) for m in msgs]


def _wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(port=0, emulator_port=0, batch_size=500, batch_window=0.5, boot_delay=0.5,
                       schedule_seconds=3600.0, worker_command=STAND_IN_WORKER) as running:
        yield running


def test_posted_records_reach_table_log_and_queue_once_and_start_the_instance(stack: EmbeddedStack) -> None:
    schema = load_schema()
    assert stack.instance_state() == "stopped"
    records = [r.to_log_dict(schema) for r in generate(schema, 3000, seed=21, id_prefix="e2e-")]
    for i in range(0, 3000, 1000):
        status, body = _post(stack.api_url, json.dumps(records[i:i + 1000]))
        assert status == 201, body
        assert body["accepted"] == 1000 and body["ids"] == [r["id"] for r in records[i:i + 1000]]
    _wait_for(lambda: len(_log_ids(stack, schema)[1]) >= 3000, 60, "3,000 log lines")

    # A re-sent batch (same ids) is stored and logged once.
    status, body = _post(stack.api_url, json.dumps(records[:1000]))
    assert status == 201 and body["accepted"] == 1000
    assert stack.poller.wait_idle(30)

    keys, ids = _log_ids(stack, schema)
    assert _table_count(stack) == 3000
    assert len(ids) == 3000 and set(ids) == {r["id"] for r in records}
    refs = _queue_refs(stack)
    assert sorted(ref.key for ref in refs) == sorted(keys)  # one message per segment
    assert sum(ref.count for ref in refs) == 3000
    assert all(ref.count <= 500 for ref in refs)  # --batch-size bounds a segment

    # The stream handler's threshold started the instance; the agent booted the worker.
    _wait_for(lambda: stack.instance_state() == "running", 10, "the instance to start")
    _wait_for(lambda: stack.agent.starts >= 1, 10, "the worker to start")


BAD_BODIES = {
    "not json": "this is not json",
    "empty array": "[]",
    "empty object": "{}",
    "missing field": '[{"temp": 70, "rh": 40, "clo": 0.5, "label": "ok"}]',
    "null field": '[{"temp": 70, "rh": null, "clo": 0.5, "wind": 0.1, "label": "ok"}]',
    "wrong type": '[{"temp": "warm", "rh": 40, "clo": 0.5, "wind": 0.1, "label": "ok"}]',
    "out of range": '[{"temp": 500, "rh": 40, "clo": 0.5, "wind": 0.1, "label": "ok"}]',
    "nan": '[{"temp": NaN, "rh": 40, "clo": 0.5, "wind": 0.1, "label": "ok"}]',
    "infinity": '[{"temp": Infinity, "rh": 40, "clo": 0.5, "wind": 0.1, "label": "ok"}]',
    "unknown label": '[{"temp": 70, "rh": 40, "clo": 0.5, "wind": 0.1, "label": "hot"}]',
    "extra field": '[{"temp": 70, "rh": 40, "clo": 0.5, "wind": 0.1, "label": "ok", "color": "red"}]',
}


def test_bad_bodies_answer_400_and_write_nothing(stack: EmbeddedStack) -> None:
    schema = load_schema()
    assert stack.poller.wait_idle(30)
    before_count, (before_keys, _) = _table_count(stack), _log_ids(stack, schema)
    good_row = '{"id": "mixed-ok", "temp": 70, "rh": 40, "clo": 0.5, "wind": 0.1, "label": "ok"}'
    for name, body in BAD_BODIES.items():
        status, payload = _post(stack.api_url, body)
        assert status == 400, name
        assert payload["errors"] and payload["message"], name
        if body.startswith("[{"):  # a good row beside a bad one is not written either
            status, _ = _post(stack.api_url, f"[{good_row}, {body[1:-1]}]")
            assert status == 400, name
    time.sleep(stack.batch_window + 0.5)
    assert stack.poller.wait_idle(30)
    assert _table_count(stack) == before_count
    assert _log_ids(stack, schema)[0] == before_keys


def test_request_over_the_record_limit_answers_413(stack: EmbeddedStack) -> None:
    schema = load_schema()
    records = [r.to_log_dict(schema) for r in generate(schema, 1001, seed=22, id_prefix="big-")]
    status, payload = _post(stack.api_url, json.dumps(records))
    assert status == 413 and "1000" in payload["message"]


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOTRAINING_") and k != "AWS_ENDPOINT_URL"}
    env["AUTOTRAINING_LOG_FORMAT"] = "json"
    return env


def test_local_command_prints_urls_serves_and_stops_on_sigterm() -> None:
    with running_cli(["local", "--port", "0", "--emulator-port", "0", "--boot-delay", "60"], _clean_env()) as (
            proc, stderr):
        urls: dict[str, str] = {}
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while len(urls) < 2 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            name, _, url = line.strip().partition(": ")
            if name in ("API", "Emulator"):
                assert url.startswith("http://127.0.0.1:")
                urls[name] = url
        assert set(urls) == {"API", "Emulator"}, "".join(stderr)
        schema = load_schema()
        one = [r.to_log_dict(schema) for r in generate(schema, 1, seed=23, id_prefix="cli-")]
        status, body = _post(urls["API"], json.dumps(one))
        assert status == 201 and body["ids"] == ["cli-00000000"]
        emulator = Aws(Settings(endpoint_url=urls["Emulator"]))  # the emulator answers on its printed URL
        items = emulator.dynamodb.get_item(TableName="autotraining-records", Key={"id": {"S": "cli-00000000"}},
                                           ConsistentRead=True)
        assert items["Item"]["label"]["S"] == one[0]["label"]


def test_local_command_with_port_in_use_prints_one_line_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run([*cli_command(), "local", "--port", str(port), "--emulator-port", "0"],
                             capture_output=True, text=True, timeout=60, env=_clean_env())
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert f"port {port}" in out.stderr and "in use" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
