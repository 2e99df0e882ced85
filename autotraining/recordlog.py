"""The stream side of the record log: one DynamoDB stream batch → one immutable S3 segment + one queue message.

``log_stream_batch`` keeps the batch's ``INSERT`` records (a re-sent id shows up as ``MODIFY`` and
is not logged again), checks every new image against the schema, writes them as one segment
under ``log/`` keyed by the stream shard and the first/last sequence number, sends one SQS
message pointing at it, and asks the starter to start the instance when the pending queue has
reached ``settings.start_threshold``. A retried batch rewrites the same key with the same bytes
and repeats the same message (the worker dedupes by key).

Nothing is swallowed: an S3, SQS or invoke failure propagates so that Lambda retries the whole
batch, and a malformed stream record raises ``MalformedStreamRecord`` naming its sequence
number instead of being dropped (the 2019 design lost data silently that way).

The shard: Lambda's DynamoDB events do not name the shard, so the key uses the ``shardId-…`` part
of ``eventID`` when the deliverer puts one there (the embedded poller may), and otherwise the
stream label of ``eventSourceARN`` (sequence numbers are unique within a stream). Either way a
retried batch gets the same key.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autotraining.aws import Aws
from autotraining.invoke import invoke_async
from autotraining.logs import get_logger
from autotraining.records import Record
from autotraining.schema import CREATED_FIELD, ID_FIELD, LABEL_FIELD, Schema
from autotraining.segments import SegmentRef, encode_segment, queue_counts, segment_key
from autotraining.validation import InvalidInput, validate_records

log = get_logger(__name__)

_SHARD_IN_EVENT_ID = re.compile(r"(shardId-[A-Za-z0-9._\-]+)")
_SEQUENCE = re.compile(r"^[0-9]{1,40}$")


class MalformedStreamRecord(ValueError):
    """A stream record the log cannot hold as it is (the message names its sequence number)."""


@dataclass(frozen=True)
class LoggedBatch:
    """What one stream batch did: the segment written (None when it had no INSERT), pending work, start asked."""

    segment: SegmentRef | None
    skipped: int  # MODIFY / REMOVE records (not logged)
    pending: int = 0
    start_requested: bool = False


def log_stream_batch(aws: Aws, schema: Schema, event: Mapping[str, Any]) -> LoggedBatch:
    """Log one Lambda DynamoDB-stream event; see the module docstring. Raises on any failure."""
    settings = aws.settings
    raw = event.get("Records")
    if not isinstance(raw, list):
        raise MalformedStreamRecord("the event has no 'Records' list; not a DynamoDB stream batch")
    inserts = [r for r in raw if _event_name(r) == "INSERT"]
    skipped = len(raw) - len(inserts)
    if not inserts:
        log.info("stream.batch_without_inserts", records=len(raw))
        return LoggedBatch(segment=None, skipped=skipped)
    records, sequences = _records(inserts, schema)
    shard = _shard(inserts)
    first, last = min(sequences, key=int), max(sequences, key=int)
    ref = SegmentRef(key=segment_key(shard, first, last), count=len(records), shard=shard,
                     first_sequence=first, last_sequence=last, schema=schema.tag)
    # The segment says which schema wrote it (object metadata and the queue message), so old records
    # are never misread after a schema change.
    aws.s3.put_object(Bucket=settings.bucket, Key=ref.key, Body=encode_segment(records, schema),
                      ContentType="application/gzip", Metadata={"schema": schema.tag})
    aws.sqs.send_message(QueueUrl=settings.queue_url, MessageBody=ref.to_message())
    pending = pending_segments(aws)
    start = pending >= settings.start_threshold
    log.info("stream.segment_written", key=ref.key, count=ref.count, skipped=skipped, pending=pending,
             start_requested=start)
    if start:
        invoke_async(aws, settings.starter_function, {"source": "stream"})
    return LoggedBatch(segment=ref, skipped=skipped, pending=pending, start_requested=start)


def pending_segments(aws: Aws) -> int:
    """Queue messages not yet consumed: visible plus in flight (approximate, as SQS reports them)."""
    return sum(queue_counts(aws.sqs, aws.settings.queue_url))


def _event_name(record: Any) -> str:
    if not isinstance(record, dict) or not isinstance(record.get("eventName"), str):
        raise MalformedStreamRecord(f"stream record {_sequence_hint(record)} has no eventName")
    return str(record["eventName"])


def _sequence_hint(record: Any) -> str:
    try:
        return f"with sequence number {record['dynamodb']['SequenceNumber']}"
    except (KeyError, TypeError):
        return f"with eventID {record.get('eventID')!r}" if isinstance(record, dict) else "(not an object)"


def _records(inserts: Sequence[dict[str, Any]], schema: Schema) -> tuple[list[Record], list[str]]:
    records: list[Record] = []
    sequences: list[str] = []
    expected = set(schema.feature_names) | {ID_FIELD, LABEL_FIELD, CREATED_FIELD}
    for r in inserts:
        change = r.get("dynamodb")
        seq = change.get("SequenceNumber") if isinstance(change, dict) else None
        if not isinstance(seq, str) or not _SEQUENCE.match(seq):
            raise MalformedStreamRecord(f"stream record {_sequence_hint(r)} has no valid dynamodb.SequenceNumber")
        image = change.get("NewImage") if isinstance(change, dict) else None
        if not isinstance(image, dict):
            raise MalformedStreamRecord(f"stream record {seq} has no NewImage (the stream must be NEW_IMAGE)")
        if set(image) != expected:
            raise MalformedStreamRecord(
                f"stream record {seq}: NewImage attributes {sorted(image)} are not those of schema "
                f"{schema.name!r} ({sorted(expected)})")
        try:
            records.append(Record.from_item(image, schema))
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedStreamRecord(f"stream record {seq}: NewImage is not a record of schema "
                                        f"{schema.name!r} ({type(exc).__name__}: {exc})") from None
        sequences.append(seq)
    try:
        validate_records([rec.to_log_dict(schema) for rec in records], schema, max_rows=len(records))
    except InvalidInput as exc:
        bad = exc.errors[0]
        seq = sequences[bad.index] if bad.index is not None else "?"
        raise MalformedStreamRecord(f"stream record {seq}: field {bad.field!r} {bad.message}") from None
    # Each log line carries its stream sequence number: the worker's dedupe key (shard + seq).
    return [dataclasses.replace(rec, seq=seq) for rec, seq in zip(records, sequences, strict=True)], sequences


def _shard(inserts: Sequence[dict[str, Any]]) -> str:
    arns = {r.get("eventSourceARN") for r in inserts}
    if len(arns) != 1 or not isinstance(next(iter(arns)), str) or not next(iter(arns)):
        raise MalformedStreamRecord(f"a stream batch must come from one stream; eventSourceARN values: {sorted(map(str, arns))}")
    shards = {m.group(1) for r in inserts if (m := _SHARD_IN_EVENT_ID.search(str(r.get("eventID", ""))))}
    if len(shards) == 1:
        return shards.pop()
    if len(shards) > 1:
        raise MalformedStreamRecord(f"a stream batch must come from one shard; eventIDs name {sorted(shards)}")
    arn = str(arns.pop())
    # arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label> → the stream label
    return arn.rsplit("/stream/", 1)[-1] if "/stream/" in arn else arn.rsplit(":", 1)[-1]
