"""The embedded stream poller: Lambda-shaped batches, batch size and window, at-least-once retries."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from autotraining.aws import Aws
from autotraining.generator import generate
from autotraining.schema import Schema
from autotraining_tools.local.poller import StreamPoller


def _write(aws: Aws, schema: Schema, n: int, seed: int) -> list[str]:
    records = generate(schema, n, seed=seed, id_prefix=f"p{seed}-")
    for i in range(0, n, 25):
        aws.dynamodb.batch_write_item(RequestItems={aws.settings.records_table: [
            {"PutRequest": {"Item": r.to_item(schema)}} for r in records[i:i + 25]]})
    return [r.id for r in records]


class Recorder:
    """A delivery function that records every attempt and can fail the first ``fail`` of them."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.attempts: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.attempts.append(event)
            if len(self.attempts) <= self.fail:
                raise RuntimeError(f"injected failure {len(self.attempts)}")
            self.delivered.append(event)
            self.times.append(time.monotonic())

    def ids(self) -> list[str]:
        return [r["dynamodb"]["Keys"]["id"]["S"] for e in self.delivered for r in e["Records"]]


def _wait_for(cond: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _poller(aws: Aws, deliver: Recorder, **kw: Any) -> StreamPoller:
    kw.setdefault("poll_interval", 0.05)
    kw.setdefault("retry_base", 0.01)
    kw.setdefault("retry_max", 0.05)
    return StreamPoller(aws, aws.settings.records_table, deliver=deliver, **kw)


def test_batches_are_lambda_shaped_and_never_exceed_batch_size(aws: Aws, schema: Schema) -> None:
    ids = _write(aws, schema, 250, seed=1)
    rec = Recorder()
    poller = _poller(aws, rec, batch_size=100, batch_window=0.0).start()
    try:
        _wait_for(lambda: len(rec.ids()) >= 250)
    finally:
        poller.stop()
    assert [len(e["Records"]) for e in rec.delivered] == [100, 100, 50]
    assert rec.ids() == ids  # in write order, nothing missing or repeated
    stream_arn = aws.dynamodb.describe_table(TableName=aws.settings.records_table)["Table"]["LatestStreamArn"]
    first = rec.delivered[0]["Records"][0]
    assert first["eventName"] == "INSERT"
    assert first["eventVersion"] == "1.1"
    assert first["eventSource"] == "aws:dynamodb"
    assert first["awsRegion"] == aws.settings.region
    assert first["eventSourceARN"] == stream_arn
    ddb = first["dynamodb"]
    assert set(ddb) >= {"ApproximateCreationDateTime", "Keys", "NewImage", "SequenceNumber", "SizeBytes",
                        "StreamViewType"}
    assert isinstance(ddb["ApproximateCreationDateTime"], float) and ddb["StreamViewType"] == "NEW_IMAGE"
    assert ddb["NewImage"]["label"]["S"] in schema.labels
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for e in rec.delivered for r in e["Records"]]
    assert sequences == sorted(sequences) and len(set(sequences)) == 250


def test_partial_batch_waits_for_the_batch_window(aws: Aws, schema: Schema) -> None:
    rec = Recorder()
    poller = _poller(aws, rec, batch_size=1000, batch_window=1.5).start()
    try:
        time.sleep(0.3)  # the poller is reading an empty stream
        written_at = time.monotonic()
        _write(aws, schema, 5, seed=2)
        time.sleep(0.4)
        _write(aws, schema, 5, seed=3)  # still inside the window: joins the same batch
        _wait_for(lambda: len(rec.delivered) >= 1)
    finally:
        poller.stop()
    assert [len(e["Records"]) for e in rec.delivered] == [10]
    waited = rec.times[0] - written_at
    assert 1.4 <= waited < 5.0, waited


def test_full_batch_is_delivered_without_waiting_for_the_window(aws: Aws, schema: Schema) -> None:
    _write(aws, schema, 60, seed=4)
    rec = Recorder()
    started = time.monotonic()
    poller = _poller(aws, rec, batch_size=50, batch_window=30.0).start()
    try:
        _wait_for(lambda: len(rec.delivered) >= 1)
    finally:
        poller.stop()
    assert rec.times[0] - started < 10.0
    assert [len(e["Records"]) for e in rec.delivered] == [50]  # the other 10 wait for the (long) window


def test_failed_delivery_is_retried_with_the_same_records(aws: Aws, schema: Schema) -> None:
    ids = _write(aws, schema, 120, seed=5)
    rec = Recorder(fail=3)
    poller = _poller(aws, rec, batch_size=100, batch_window=0.0).start()
    try:
        _wait_for(lambda: len(rec.ids()) >= 120)
    finally:
        poller.stop()
    first_batch = rec.attempts[0]["Records"]
    assert len(first_batch) == 100
    for attempt in rec.attempts[:4]:  # three failures, then the success: the same batch each time
        assert attempt["Records"] == first_batch
    assert rec.ids() == ids  # nothing skipped, nothing repeated after success
    assert poller.stats.failed_deliveries == 3 and poller.stats.delivered_records == 120


def test_records_written_while_running_are_all_delivered(aws: Aws, schema: Schema) -> None:
    rec = Recorder()
    poller = _poller(aws, rec, batch_size=40, batch_window=0.2).start()
    try:
        ids = []
        for seed in range(6, 11):
            ids += _write(aws, schema, 30, seed=seed)
            time.sleep(0.1)
        assert poller.wait_idle(15.0)
    finally:
        poller.stop()
    assert rec.ids() == ids
    assert all(len(e["Records"]) <= 40 for e in rec.delivered)


def test_stop_interrupts_a_failing_delivery_without_losing_it(aws: Aws, schema: Schema) -> None:
    _write(aws, schema, 10, seed=12)
    rec = Recorder(fail=10**6)
    poller = _poller(aws, rec, batch_size=100, batch_window=0.0, retry_base=0.2, retry_max=5.0).start()
    _wait_for(lambda: len(rec.attempts) >= 2)
    t0 = time.monotonic()
    poller.stop()
    assert time.monotonic() - t0 < 5.0
    assert rec.delivered == [] and poller.stats.delivered_records == 0


def test_invalid_batch_settings_are_refused(aws: Aws) -> None:
    with pytest.raises(ValueError):
        StreamPoller(aws, aws.settings.records_table, deliver=Recorder(), batch_size=0)
    with pytest.raises(ValueError):
        StreamPoller(aws, aws.settings.records_table, deliver=Recorder(), batch_window=-1)
