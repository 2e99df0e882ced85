"""log_stream_batch (autotraining.recordlog): one immutable segment per batch, INSERT only, nothing swallowed."""
from __future__ import annotations

import copy
import dataclasses
import gzip
import json
import re
from typing import Any

import ingest_fixtures
import pytest
from botocore.exceptions import ClientError
from ingest_fixtures import STREAM_ARN, FailingS3Aws, load_event, stream_batch

from autotraining import invoke
from autotraining.aws import Aws
from autotraining.generator import generate
from autotraining.recordlog import MalformedStreamRecord, log_stream_batch, pending_segments
from autotraining.schema import Schema
from autotraining.segments import SegmentRef, decode_segment


def messages(aws: Aws) -> list[SegmentRef]:
    got = aws.sqs.receive_message(QueueUrl=aws.settings.queue_url, MaxNumberOfMessages=10,
                                  VisibilityTimeout=0)["Messages"] if pending_segments(aws) else []
    return sorted((SegmentRef.from_message(m["Body"]) for m in got), key=lambda r: r.key)


def log_keys(aws: Aws) -> list[str]:
    return [o["Key"] for o in aws.s3.list_objects_v2(Bucket=aws.settings.bucket, Prefix="log/").get("Contents", [])]


@pytest.fixture
def starts() -> Any:
    calls: list[tuple[str, dict[str, Any]]] = []
    invoke.set_local_invoker(lambda name, event: calls.append((name, event)))
    yield calls
    invoke.set_local_invoker(None)


def test_captured_batch_logs_inserts_only(aws: Aws, schema: Schema, starts: list[Any]) -> None:
    result = log_stream_batch(aws, schema, load_event("dynamodb_stream_batch"))
    assert result.skipped == 1  # the MODIFY of a re-sent id
    ref = result.segment
    assert ref is not None
    assert ref.key == ("log/2026-11-26T05_39_14.814678/"
                       "0000000000000000001100000000017454423009-0000000000000000001100000000017454423010.jsonl.gz")
    assert (ref.count, ref.first_sequence, ref.last_sequence) == (2, "1100000000017454423009", "1100000000017454423010")
    body = aws.s3.get_object(Bucket=aws.settings.bucket, Key=ref.key)["Body"].read()
    assert [(r.id, r.label) for r in decode_segment(body, schema)] == [("gen-7-00000000", "warm"),
                                                                        ("gen-7-00000001", "cold")]
    assert messages(aws) == [ref]


def test_segment_lines_hold_full_records(aws: Aws, schema: Schema, starts: list[Any]) -> None:
    batch = stream_batch(schema, 5)
    ref = log_stream_batch(aws, schema, batch).segment
    assert ref is not None
    body = aws.s3.get_object(Bucket=aws.settings.bucket, Key=ref.key)["Body"].read()
    lines = decode_segment(body, schema)
    assert [dataclasses.replace(r, seq="") for r in lines] == generate(schema, 5, seed=3)
    # Each line carries its stream sequence number: the worker's dedupe key.
    batch_seqs = [r["dynamodb"]["SequenceNumber"] for r in batch["Records"]]
    assert [r.seq for r in lines] == batch_seqs
    first = json.loads(gzip.decompress(body).decode().splitlines()[0])
    assert list(first) == ["id", "temp", "rh", "clo", "wind", "label", "created", "seq"]


def test_retried_stream_batch_writes_same_segment(aws: Aws, schema: Schema, starts: list[Any]) -> None:
    batch = stream_batch(schema, 20)
    first = log_stream_batch(aws, schema, copy.deepcopy(batch)).segment
    body1 = aws.s3.get_object(Bucket=aws.settings.bucket, Key=first.key)["Body"].read()
    second = log_stream_batch(aws, schema, copy.deepcopy(batch)).segment
    body2 = aws.s3.get_object(Bucket=aws.settings.bucket, Key=second.key)["Body"].read()
    assert first == second and body1 == body2
    assert log_keys(aws) == [first.key]
    got = messages(aws)
    assert got == [first, first]  # the worker dedupes by key: never counted twice


def test_shard_named_in_event_id_keys_the_segment(aws: Aws, schema: Schema, starts: list[Any]) -> None:
    batch = stream_batch(schema, 2, event_id="shardId-00000001541626099285-f35f62ef:1000")
    ref = log_stream_batch(aws, schema, batch).segment
    assert ref is not None and ref.key.startswith("log/shardId-00000001541626099285-f35f62ef/")
    assert ref.shard == "shardId-00000001541626099285-f35f62ef"


def test_starter_is_invoked_when_pending_reaches_threshold(aws: Aws, schema: Schema, starts: list[Any]) -> None:
    high = Aws(aws.settings.replace(start_threshold=2))
    first = log_stream_batch(high, schema, stream_batch(schema, 2, first_seq=10))
    assert (first.pending, first.start_requested, starts) == (1, False, [])
    second = log_stream_batch(high, schema, stream_batch(schema, 2, first_seq=20, seed=4))
    assert (second.pending, second.start_requested) == (2, True)
    assert starts == [(aws.settings.starter_function, {"source": "stream"})]


def test_in_flight_messages_count_as_pending(aws: Aws, schema: Schema, starts: list[Any]) -> None:
    high = Aws(aws.settings.replace(start_threshold=2))
    log_stream_batch(high, schema, stream_batch(schema, 2, first_seq=10))
    aws.sqs.receive_message(QueueUrl=aws.settings.queue_url, VisibilityTimeout=60)  # the worker holds it
    result = log_stream_batch(high, schema, stream_batch(schema, 2, first_seq=20, seed=4))
    assert result.pending == 2 and len(starts) == 1


def test_failing_starter_invoke_propagates(aws: Aws, schema: Schema) -> None:
    def broken(name: str, event: dict[str, Any]) -> None:
        raise RuntimeError("lambda invoke refused")

    invoke.set_local_invoker(broken)
    try:
        with pytest.raises(RuntimeError, match="lambda invoke refused"):
            log_stream_batch(aws, schema, stream_batch(schema, 1))
    finally:
        invoke.set_local_invoker(None)


def _breakers() -> list[tuple[str, Any, str]]:
    def drop(path: list[str]) -> Any:
        def change(rec: dict[str, Any]) -> None:
            target = rec
            for p in path[:-1]:
                target = target[p]
            del target[path[-1]]
        return change

    def set_(path: list[str], value: Any) -> Any:
        def change(rec: dict[str, Any]) -> None:
            target = rec
            for p in path[:-1]:
                target = target[p]
            target[path[-1]] = value
        return change

    return [
        ("no NewImage", drop(["dynamodb", "NewImage"]), "stream record 1001 has no NewImage"),
        ("feature missing", drop(["dynamodb", "NewImage", "rh"]), "stream record 1001: NewImage attributes"),
        ("extra attribute", set_(["dynamodb", "NewImage", "colour"], {"S": "red"}),
         "stream record 1001: NewImage attributes"),
        ("feature not a number", set_(["dynamodb", "NewImage", "temp"], {"S": "hot"}),
         "stream record 1001: NewImage is not a record"),
        ("unknown label", set_(["dynamodb", "NewImage", "label"], {"S": "hot"}),
         "stream record 1001: field 'label' 'hot' is not a known label"),
        ("out of range", set_(["dynamodb", "NewImage", "temp"], {"N": "900"}),
         "stream record 1001: field 'temp' 900.0 is out of range"),
        ("no sequence number", drop(["dynamodb", "SequenceNumber"]), "stream record with eventID 'e1' has no valid"),
        ("no eventName", drop(["eventName"]), "stream record with sequence number 1001 has no eventName"),
    ]


unwritten_aws = ingest_fixtures.unwritten_aws  # a class-scoped fixture: one emulator for tests that write nothing


class TestMalformedBatches:
    @pytest.mark.parametrize("what, breaks, message", _breakers(), ids=[b[0] for b in _breakers()])
    def test_malformed_stream_record_raises_with_its_sequence_number(self, unwritten_aws: Aws, schema: Schema,
                                                                     starts: list[Any], what: str, breaks: Any,
                                                                     message: str) -> None:
        batch = stream_batch(schema, 3)
        breaks(batch["Records"][1])
        with pytest.raises(MalformedStreamRecord, match="^" + re.escape(message)):
            log_stream_batch(unwritten_aws, schema, batch)
        assert log_keys(unwritten_aws) == [] and messages(unwritten_aws) == [] and starts == []

    def test_batch_from_two_streams_is_refused(self, unwritten_aws: Aws, schema: Schema, starts: list[Any]) -> None:
        batch = stream_batch(schema, 2)
        batch["Records"][1]["eventSourceARN"] = STREAM_ARN.replace("05:39", "06:00")
        with pytest.raises(MalformedStreamRecord, match="one stream"):
            log_stream_batch(unwritten_aws, schema, batch)
        assert log_keys(unwritten_aws) == [] and messages(unwritten_aws) == []

    def test_event_without_records_list_is_refused(self, unwritten_aws: Aws, schema: Schema) -> None:
        with pytest.raises(MalformedStreamRecord, match="not a DynamoDB stream batch"):
            log_stream_batch(unwritten_aws, schema, {"detail-type": "Scheduled Event"})

    def test_batch_without_inserts_writes_nothing(self, unwritten_aws: Aws, schema: Schema,
                                                  starts: list[Any]) -> None:
        batch = stream_batch(schema, 3)
        for r in batch["Records"]:
            r["eventName"] = "MODIFY"
        batch["Records"][0]["eventName"] = "REMOVE"
        del batch["Records"][0]["dynamodb"]["NewImage"]
        result = log_stream_batch(unwritten_aws, schema, batch)
        assert result.segment is None and result.skipped == 3
        assert log_keys(unwritten_aws) == [] and messages(unwritten_aws) == [] and starts == []

    def test_failing_s3_put_propagates_and_sends_no_message(self, unwritten_aws: Aws, schema: Schema,
                                                            starts: list[Any]) -> None:
        with pytest.raises(ClientError, match="S3 is down"):
            log_stream_batch(FailingS3Aws(unwritten_aws.settings), schema, stream_batch(schema, 3))
        assert messages(unwritten_aws) == [] and starts == []
