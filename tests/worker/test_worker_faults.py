"""Faults that are not a segment's: the worker retries, then parks the round; healthy segments never reach the DLQ."""
from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from autotraining.generator import generate
from worker import __main__ as entry
from worker.loop import FaultPolicy

FAST = FaultPolicy(attempts=2, initial=0.0, maximum=0.0, park_seconds=1)


def _dlq_size(waws: Any) -> int:
    attrs = waws.sqs.get_queue_attributes(QueueUrl=waws.settings.dlq_url,
                                          AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


class DeniedReads:
    """Stands in for the worker's S3 client with GetObject denied (a policy change, a KMS key gone)."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.denied = 0

    def get_object(self, **kwargs: Any) -> Any:
        self.denied += 1
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def test_access_denied_parks_the_round_and_the_healthy_segment_is_trained_on_after_the_fix(
        waws, log_segment, make_worker, registry, schema, monkeypatch) -> None:
    log_segment(generate(schema, 200, seed=4), 100)
    real = waws.s3
    denied = DeniedReads(real)
    monkeypatch.setitem(waws._clients, "s3", denied)
    for _ in range(4):  # more failed rounds than the queue's maxReceiveCount (3)
        worker = make_worker(faults=FAST)
        assert worker.run() == 0
        assert worker.parked == 1 and worker.rounds == []
        time.sleep(1.1)  # the parked copy's delay
    assert denied.denied >= 4 and registry.latest() is None
    assert _dlq_size(waws) == 0
    monkeypatch.setitem(waws._clients, "s3", real)  # the operator fixes the policy
    worker = make_worker(faults=FAST)
    worker.run()
    assert worker.parked == 0 and registry.latest().records_seen == 200
    assert _dlq_size(waws) == 0


def test_a_transient_fault_is_ridden_out_in_place_without_parking(waws, log_segment, make_worker, registry, schema,
                                                                  monkeypatch) -> None:
    log_segment(generate(schema, 150, seed=5), 100)
    real_get = waws.s3.get_object
    calls = {"n": 0}

    def flaky(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "eventually consistent policy"}},
                              "GetObject")
        return real_get(**kwargs)

    monkeypatch.setattr(waws.s3, "get_object", flaky)
    worker = make_worker(faults=FAST)
    worker.run()
    assert worker.parked == 0 and registry.latest().records_seen == 150


def test_corrupt_committed_state_parks_new_segments_instead_of_dead_lettering_them(
        waws, log_segment, make_worker, registry, schema) -> None:
    log_segment(generate(schema, 120, seed=6), 100)
    make_worker(faults=FAST).run()
    committed = registry.latest()
    assert committed is not None
    state = [o["Key"] for o in waws.s3.list_objects_v2(Bucket=waws.settings.bucket, Prefix="state/")["Contents"]]
    for key in state:
        waws.s3.put_object(Bucket=waws.settings.bucket, Key=key, Body=b"not an npz file")
    log_segment(generate(schema, 80, seed=7), 1000)
    for _ in range(4):
        worker = make_worker(faults=FAST)
        worker.run()
        assert worker.parked == 1
        time.sleep(1.1)
    assert _dlq_size(waws) == 0 and registry.latest().round_version == committed.round_version


def test_a_crash_prints_exactly_one_json_error_line_and_exits_1(monkeypatch, capsys) -> None:
    def crash(args: Any) -> int:
        raise RuntimeError("boom\nwith a second line")

    monkeypatch.setattr(entry.command, "run", crash)
    assert entry.main(["--once"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    line = json.loads(err)
    assert line["level"] == "error" and line["event"] == "worker.crashed"
    assert "RuntimeError: boom" in line["error"] and "Traceback" in line["exception"]


@pytest.mark.parametrize("code", ["AccessDenied", "InternalError"])
def test_each_failed_attempt_is_logged_as_an_error(waws, log_segment, make_worker, schema, monkeypatch,
                                                   code: str) -> None:
    from structlog.testing import capture_logs

    log_segment(generate(schema, 50, seed=8), 100)

    def failing(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": code, "Message": "x"}}, "GetObject")

    monkeypatch.setattr(waws.s3, "get_object", failing)
    with capture_logs() as logs:
        make_worker(faults=FAST).run()
    events = [e["event"] for e in logs if e["log_level"] == "error"]
    assert events == ["worker.round_failed", "worker.round_failed", "worker.round_parked"]
