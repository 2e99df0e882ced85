"""handlers.stream: a stream batch becomes one segment + one message; retries are idempotent; failures propagate."""
from __future__ import annotations

import copy
from typing import Any

import pytest
from botocore.exceptions import ClientError
from ingest_fixtures import FailingS3Aws, load_event, stream_batch

import handlers.stream
from autotraining import invoke
from autotraining.aws import Aws
from autotraining.schema import Schema
from autotraining.segments import SegmentRef, decode_segment


@pytest.fixture(autouse=True)
def starts() -> Any:
    calls: list[tuple[str, dict[str, Any]]] = []
    invoke.set_local_invoker(lambda name, event: calls.append((name, event)))
    yield calls
    invoke.set_local_invoker(None)


def segment_bytes(aws: Aws) -> dict[str, bytes]:
    listing = aws.s3.list_objects_v2(Bucket=aws.settings.bucket, Prefix="log/").get("Contents", [])
    return {o["Key"]: aws.s3.get_object(Bucket=aws.settings.bucket, Key=o["Key"])["Body"].read() for o in listing}


def queued(aws: Aws) -> list[SegmentRef]:
    got = aws.sqs.receive_message(QueueUrl=aws.settings.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [SegmentRef.from_message(m["Body"]) for m in got]


def test_same_batch_twice_writes_one_key_with_same_bytes(aws: Aws, schema: Schema) -> None:
    event = load_event("dynamodb_stream_batch")
    first = handlers.stream.handle(copy.deepcopy(event), aws)
    after_first = segment_bytes(aws)
    second = handlers.stream.handle(copy.deepcopy(event), aws)
    assert first["segment"] == second["segment"] and first["count"] == 2
    assert segment_bytes(aws) == after_first and list(after_first) == [first["segment"]]
    refs = queued(aws)
    assert [r.key for r in refs] == [first["segment"]] * 2 and {r.count for r in refs} == {2}


def test_only_inserts_are_logged(aws: Aws, schema: Schema) -> None:
    out = handlers.stream.handle(load_event("dynamodb_stream_batch"), aws)
    assert (out["count"], out["skipped"]) == (2, 1)
    (body,) = segment_bytes(aws).values()
    assert [(r.id, r.label) for r in decode_segment(body, schema)] == [("gen-7-00000000", "warm"),
                                                                        ("gen-7-00000001", "cold")]


def test_reaching_the_threshold_invokes_the_starter(aws: Aws, starts: list[Any]) -> None:
    out = handlers.stream.handle(load_event("dynamodb_stream_batch"), aws)  # default threshold: 1 segment
    assert out["start_requested"] and out["pending"] == 1
    assert starts == [(aws.settings.starter_function, {"source": "stream"})]


def test_failing_s3_put_propagates_so_lambda_retries(aws: Aws, starts: list[Any]) -> None:
    with pytest.raises(ClientError, match="S3 is down"):
        handlers.stream.handle(load_event("dynamodb_stream_batch"), FailingS3Aws(aws.settings))
    assert queued(aws) == [] and starts == []


def test_lambda_entry_point_reads_settings_from_the_environment(aws: Aws, schema: Schema,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in aws.settings.replace(start_threshold=5).to_env().items():
        if value:
            monkeypatch.setenv(name, value)
    out = handlers.stream.handler(stream_batch(schema, 4), None)
    assert out["count"] == 4 and out["start_requested"] is False
    assert list(segment_bytes(aws)) == [out["segment"]]
