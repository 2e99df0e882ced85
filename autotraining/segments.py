"""The append-only record log in S3: immutable segments and the queue messages that point at them.

A segment holds the records of one stream batch as gzip'd JSON Lines, one full record per
line. Its key is derived from the stream shard and the batch's first and last sequence
numbers, and its bytes are deterministic (gzip mtime 0, fixed field order), so a retried
stream batch rewrites the same key with the same bytes. One SQS message per segment carries
the key and the record count; the worker dedupes by key, so a repeated message never counts
twice.
"""
from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from autotraining.records import Record
from autotraining.schema import Schema

LOG_PREFIX = "log/"
SEQ_WIDTH = 40  # DynamoDB stream sequence numbers are decimal strings of up to 40 digits
_SAFE = re.compile(r"[^A-Za-z0-9._\-]")


class SegmentError(ValueError):
    """A segment or its queue message cannot be read (poison)."""


@dataclass(frozen=True)
class SegmentRef:
    """What a queue message says: where a segment is and how many records it holds."""

    key: str
    count: int
    shard: str = ""
    first_sequence: str = ""
    last_sequence: str = ""
    schema: str = ""  # "name@content hash" of the schema that wrote the segment ("" from before typed schemas)

    def to_message(self) -> str:
        body: dict[str, object] = {"key": self.key, "count": self.count, "shard": self.shard,
                                   "first_sequence": self.first_sequence, "last_sequence": self.last_sequence}
        if self.schema:
            body["schema"] = self.schema
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_message(cls, body: str) -> SegmentRef:
        try:
            data = json.loads(body)
            key, count = data["key"], data["count"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SegmentError(f"queue message is not a segment reference: {exc}") from None
        if not isinstance(key, str) or not key.startswith(LOG_PREFIX) or not isinstance(count, int) or count < 0:
            raise SegmentError(f"queue message has a bad key or count: {body[:200]}")
        return cls(key=key, count=count, shard=str(data.get("shard", "")),
                   first_sequence=str(data.get("first_sequence", "")), last_sequence=str(data.get("last_sequence", "")),
                   schema=str(data.get("schema", "")))


def segment_key(shard: str, first_sequence: str, last_sequence: str) -> str:
    """``log/<shard>/<first>-<last>.jsonl.gz`` with sequence numbers zero-padded so keys sort in log order."""
    return (f"{LOG_PREFIX}{_SAFE.sub('_', shard)}/"
            f"{int(first_sequence):0{SEQ_WIDTH}d}-{int(last_sequence):0{SEQ_WIDTH}d}.jsonl.gz")


def encode_segment(records: Iterable[Record], schema: Schema) -> bytes:
    """Deterministic gzip'd JSON Lines (same records → same bytes)."""
    text = "".join(r.to_log_line(schema) + "\n" for r in records)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
        gz.write(text.encode("utf-8"))
    return buf.getvalue()


def decode_segment(data: bytes, schema: Schema) -> list[Record]:
    """Records of a segment; raises ``SegmentError`` for bytes that are not a valid segment."""
    try:
        text = gzip.decompress(data).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise SegmentError(f"segment is not gzip'd UTF-8 text: {exc}") from None
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = Record.from_log_dict(json.loads(line), schema)
        except (ValueError, KeyError, TypeError) as exc:
            raise SegmentError(f"segment line {n} is not a record of schema {schema.name!r}: {exc}") from None
        if rec.label not in schema.labels:
            raise SegmentError(f"segment line {n} has unknown label {rec.label!r}")
        out.append(rec)
    return out


def read_segment(s3: Any, bucket: str, key: str, schema: Schema) -> list[Record]:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise SegmentError(f"segment {key} does not exist") from None
    return decode_segment(body, schema)


def queue_counts(sqs: Any, queue_url: str) -> tuple[int, int]:
    """(messages waiting, messages in flight) of a segment queue, as SQS approximates them."""
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0)), int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))
