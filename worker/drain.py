"""The queue side of the worker: gather a round's segment messages, read and dedupe the records.

``PendingQueue`` long-polls the pending queue and gathers up to N distinct segments per round
(several messages may name the same segment: a duplicate stream batch or a redelivery), keeps
the gathered messages invisible while the round runs (``keep_invisible``), deletes them only
after the round's commit, and hands a round's messages back (visibility 0) when it is dropped.

A *poison* message (not a segment reference) or segment (missing, not gzip'd JSON Lines, a
record that does not fit the schema) is logged with its key and made visible again at once;
it is never deleted, so after ``maxReceiveCount`` receives the queue's redrive policy moves it
to the dead-letter queue. It never blocks the other segments of its round.

Exactly-once counting ("records seen == distinct records logged"); where duplicates come from
and which structure catches each is written down in ``worker.state``:

- a segment consumed by a committed round is skipped (``Registry.consumed``) and its messages
  deleted; the commit marks every segment of the round consumed in the same transaction;
- within a round, records are deduped by ``id`` across all its segments (a record logged twice is
  the same item: same id, same stream position);
- across rounds, a record whose sequence number lies in a consumed interval of its shard is
  skipped (``TrainingState.unseen``), so a record logged in two overlapping segments (a batch
  bisected after its first attempt was logged) counts once. The bookkeeping is a few intervals
  per shard, not a set of ids: ``segment_starts`` lists the log just above the consumed part so
  that intervals merge once no segment is left between them.
"""
from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from autotraining.encoding import Encoding
from autotraining.logs import get_logger
from autotraining.records import Record
from autotraining.schema import Schema, Value
from autotraining.segments import LOG_PREFIX, SEQ_WIDTH, SegmentError, SegmentRef, queue_counts, read_segment

log = get_logger("worker.drain")

_KEY = re.compile(rf"^{LOG_PREFIX}(?P<shard>[^/]+)/(?P<first>[0-9]{{{SEQ_WIDTH}}})-(?P<last>[0-9]{{{SEQ_WIDTH}}})\.jsonl\.gz$")
# A listed segment older than the queue's retention (14 days in the template) can no longer be named
# by any message: it was consumed, dead-lettered or expired, and must not hold a gap open forever.
DEAD_AFTER = timedelta(days=14)
LIST_PAGES = 5  # at most this many ListObjectsV2 pages (1,000 keys each) per shard and round
# A key named by the stream label, not a shard (Lambda's events do not name it), may mix several
# shards without an order between them: a gap below a segment younger than the stream's 24-hour
# retention may still receive another shard's segment, so it stays open until then.
UNORDERED_SETTLE = timedelta(hours=25)


def segment_range(key: str) -> tuple[str, int, int] | None:
    """(shard as written in the key, first, last sequence number), or None for a key not made by ``segment_key``."""
    m = _KEY.match(key)
    return (m["shard"], int(m["first"]), int(m["last"])) if m else None


def id_hash(record_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(record_id.encode("utf-8"), digest_size=8).digest(), "little")


def id_hashes(ids: list[str]) -> np.ndarray:
    return np.fromiter((id_hash(i) for i in ids), dtype=np.uint64, count=len(ids))


@dataclass(frozen=True)
class Delivery:
    """One received queue message and the segment it names."""

    message_id: str
    receipt_handle: str
    ref: SegmentRef
    receive_count: int = 1


@dataclass(frozen=True)
class RecordBatch:
    """A round's new records (deduped within the round), as arrays in schema order."""

    x: np.ndarray  # n × encoded inputs (autotraining.encoding), float64
    y: np.ndarray  # label indices, int64
    ids: np.ndarray  # id hashes, uint64
    segments: tuple[str, ...]  # keys of the readable segments these records come from
    poison: tuple[str, ...]  # keys that could not be read
    # Per record (shard, lo, hi): its stream position (lo == hi == seq), or its segment's range for
    # a line without ``seq``; shard "" when the key names no range (nothing to dedupe against).
    origins: tuple[tuple[str, int, int], ...] = ()
    ranges: tuple[tuple[str, int, int], ...] = ()  # (shard, first, last) of each readable segment

    @property
    def size(self) -> int:
        return int(self.y.shape[0])

    def only(self, mask: np.ndarray) -> RecordBatch:
        origins = tuple(o for o, keep in zip(self.origins, mask, strict=True) if keep) if self.origins else ()
        return RecordBatch(x=self.x[mask], y=self.y[mask], ids=self.ids[mask], segments=self.segments,
                           poison=self.poison, origins=origins, ranges=self.ranges)


def _transient(exc: BaseException) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""
    return code in ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling")


class PendingQueue:
    """The pending queue, as the worker uses it (one SQS client, one queue URL)."""

    def __init__(self, sqs: Any, queue_url: str, visibility_seconds: int = 120) -> None:
        self.sqs = sqs
        self.url = queue_url
        self.visibility = visibility_seconds

    def gather(self, max_segments: int, wait_seconds: float) -> list[Delivery]:
        """Long-poll once (``wait_seconds``), then take what is there until ``max_segments`` distinct keys."""
        out: list[Delivery] = []
        keys: set[str] = set()
        seen_ids: set[str] = set()
        wait = int(max(0, min(20, wait_seconds)))
        while len(keys) < max_segments:
            resp = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=min(10, max_segments - len(keys)),
                                            WaitTimeSeconds=wait, VisibilityTimeout=self.visibility,
                                            MessageSystemAttributeNames=["ApproximateReceiveCount"])
            messages = resp.get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen_ids]
            # Seen again in this gather: a poison message we just handed back. Hand it back
            # again (each receive counts towards the DLQ) and stop gathering.
            self.release_handles([m["ReceiptHandle"] for m in messages if m["MessageId"] in seen_ids])
            if not fresh:
                break
            for m in fresh:
                seen_ids.add(m["MessageId"])
                count = int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
                try:
                    ref = SegmentRef.from_message(m.get("Body", ""))
                except SegmentError as exc:
                    log.error("segment.poison", key=None, message_id=m["MessageId"], receives=count, error=str(exc))
                    self.release_handles([m["ReceiptHandle"]])
                    continue
                out.append(Delivery(m["MessageId"], m["ReceiptHandle"], ref, count))
                keys.add(ref.key)
            wait = 0
        return out

    def delete(self, deliveries: list[Delivery]) -> None:
        for i in range(0, len(deliveries), 10):
            chunk = deliveries[i:i + 10]
            self.sqs.delete_message_batch(QueueUrl=self.url, Entries=[
                {"Id": str(n), "ReceiptHandle": d.receipt_handle} for n, d in enumerate(chunk)])

    def release(self, deliveries: list[Delivery]) -> None:
        """Make these messages visible again now (a dropped round, a poison segment)."""
        self.release_handles([d.receipt_handle for d in deliveries])

    def park(self, deliveries: list[Delivery], delay_seconds: int) -> None:
        """Re-queue these segments as fresh messages delayed ``delay_seconds``, then delete the originals.

        For a round that failed for a reason that is not its segments' (an AWS fault, a corrupt
        committed state): a fresh message starts at receive count 0, so healthy segments never
        reach the dead-letter queue because of it, and the delay lets the worker idle and stop
        instead of spinning on the fault. Rounds are idempotent, so a copy of a message whose
        segment was consumed meanwhile is skipped like any redelivery.
        """
        for i in range(0, len(deliveries), 10):
            chunk = deliveries[i:i + 10]
            self.sqs.send_message_batch(QueueUrl=self.url, Entries=[
                {"Id": str(n), "MessageBody": d.ref.to_message(), "DelaySeconds": max(0, min(900, delay_seconds))}
                for n, d in enumerate(chunk)])
        self.delete(deliveries)

    def release_handles(self, handles: list[str]) -> None:
        self._set_visibility(handles, 0)

    def _set_visibility(self, handles: list[str], seconds: int) -> None:
        for i in range(0, len(handles), 10):
            chunk = handles[i:i + 10]
            self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=[
                {"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": seconds} for n, h in enumerate(chunk)])

    def counts(self) -> tuple[int, int]:
        """(messages waiting, messages in flight — ours or anyone's)."""
        return queue_counts(self.sqs, self.url)

    def keep_invisible(self, deliveries: list[Delivery]) -> Heartbeat:
        """A context manager that extends the messages' visibility every third of the timeout."""
        return Heartbeat(self, [d.receipt_handle for d in deliveries])


class Heartbeat:
    """Extends the visibility of a round's messages while the round runs (a daemon thread)."""

    def __init__(self, queue: PendingQueue, handles: list[str]) -> None:
        self.queue, self.handles = queue, handles
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="visibility-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        if self.handles:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        period = max(1.0, self.queue.visibility / 3.0)
        while not self._stop.wait(period):
            try:
                self.queue._set_visibility(self.handles, self.queue.visibility)
            except Exception as exc:  # noqa: BLE001 - a failed heartbeat must not kill the round
                log.warning("round.heartbeat_failed", error=str(exc))


@retry(retry=retry_if_exception(_transient), stop=stop_after_attempt(4),
       wait=wait_exponential(multiplier=0.2, max=3), reraise=True)
def _read(s3: Any, bucket: str, key: str, schema: Schema) -> list[Record]:
    return read_segment(s3, bucket, key, schema)


def read_records(s3: Any, bucket: str, keys: list[str], schema: Schema) -> RecordBatch:
    """Read the segments in order, dedupe records by id; unreadable segments are poison."""
    ids: list[str] = []
    rows: list[tuple[Value, ...]] = []
    labels: list[int] = []
    origins: list[tuple[str, int, int]] = []
    seen: set[str] = set()
    ok: list[str] = []
    ranges: list[tuple[str, int, int]] = []
    poison: list[str] = []
    for key in keys:
        try:
            records = _read(s3, bucket, key, schema)
        except SegmentError as exc:
            log.error("segment.poison", key=key, error=str(exc))
            poison.append(key)
            continue
        ok.append(key)
        shard, first, last = segment_range(key) or ("", 0, 0)
        if shard:
            ranges.append((shard, first, last))
        for r in records:
            # A record logged twice (overlapping segments) is the same item: same id and seq. By id
            # alone, so two records the emulator gave one sequence number both count (moto numbers
            # stream records without a lock; DynamoDB gives each its own).
            if r.id in seen:
                continue
            seen.add(r.id)
            seq = int(r.seq) if r.seq else None
            ids.append(r.id)
            rows.append(r.features)
            labels.append(schema.label_index(r.label))
            origins.append((shard, seq, seq) if seq is not None else (shard, first, last))
    x = Encoding.from_schema(schema).encode(rows)  # the model's numeric inputs (autotraining.encoding)
    return RecordBatch(x=x, y=np.array(labels, dtype=np.int64), ids=id_hashes(ids), segments=tuple(ok),
                       poison=tuple(poison), origins=tuple(origins), ranges=tuple(ranges))


def segment_starts(s3: Any, bucket: str, gaps: dict[str, tuple[int, int]],
                   now: datetime | None = None) -> dict[str, tuple[list[int], int | None]]:
    """Per shard, the first sequence numbers of the log segments between ``(after, below)``.

    Lists ``log/<shard>/`` from just above ``after`` (the end of the shard's first consumed
    interval) and stops at the first key at or above ``below``: only the in-flight part of the
    log, never its history. Returns (starts, complete_below): complete_below is None when the
    listing reached ``below``, else the last start listed (the pages ran out first). For a key
    prefix that is not a ``shardId-…`` (see ``UNORDERED_SETTLE``), a segment younger than the
    stream's retention also holds the gap just below it open.
    """
    now = now or datetime.now(UTC)
    out: dict[str, tuple[list[int], int | None]] = {}
    for shard, (after, below) in gaps.items():
        prefix = f"{LOG_PREFIX}{shard}/"
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix,
                                  "StartAfter": f"{prefix}{after:0{SEQ_WIDTH}d}-{'9' * SEQ_WIDTH}"}
        starts: list[int] = []
        ordered = shard.startswith("shardId-")
        complete: int | None
        for _ in range(LIST_PAGES):
            page = s3.list_objects_v2(**kwargs)
            for obj in page.get("Contents", []):
                found = segment_range(obj["Key"])
                if found is None:
                    continue
                if not ordered and now - obj["LastModified"] < UNORDERED_SETTLE:
                    starts.append(found[1] - 1)  # keeps the gap below this young segment open
                if found[1] >= below:
                    complete = None
                    break
                if now - obj["LastModified"] > DEAD_AFTER:
                    log.warning("dedupe.dead_segment_ignored", key=obj["Key"])
                    continue
                starts.append(found[1])
            if complete is None or not page.get("IsTruncated"):
                complete = None
                break
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
        else:
            complete = starts[-1] if starts else after
        out[shard] = (starts, complete)
    return out


def by_key(deliveries: list[Delivery]) -> dict[str, list[Delivery]]:
    out: dict[str, list[Delivery]] = {}
    for d in deliveries:
        out.setdefault(d.ref.key, []).append(d)
    return out

