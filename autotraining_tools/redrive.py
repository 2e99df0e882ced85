"""Moving dead-lettered segment messages back to the pending queue after the fault is fixed.

``redrive`` receives every message of the dead-letter queue (each once: a message seen again in
the same run ends it), sends each one that names a log segment to the pending queue as a fresh
message (receive count 0) and deletes it from the dead-letter queue only after that send
succeeded, so a failure midway loses nothing and at worst leaves a copy in both queues, which
the worker's consumed-segment check makes harmless. A message that is not a segment reference
stays where it is and is reported. ``dry_run`` only lists: every received message is made
visible again at once. (SQS's own ``StartMessageMoveTask`` does the same move, but moto does not
implement it, and it cannot tell a segment from garbage.)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autotraining.logs import get_logger
from autotraining.segments import SegmentError, SegmentRef

log = get_logger(__name__)


@dataclass(frozen=True)
class Redriven:
    """What a redrive found: segment keys moved (or, dry, that would move), and messages left alone."""

    segments: tuple[str, ...] = ()
    not_segments: tuple[str, ...] = field(default=())  # message ids
    dry_run: bool = False


def redrive(sqs: Any, dlq_url: str, queue_url: str, dry_run: bool = False, limit: int | None = None) -> Redriven:
    """Move (or list, with ``dry_run``) up to ``limit`` segment messages from ``dlq_url`` to ``queue_url``."""
    moved: list[str] = []
    skipped: list[str] = []
    seen: set[str] = set()
    held: list[str] = []  # receipt handles to hand back (dry run, non-segments)
    try:
        while limit is None or len(moved) < limit:
            want = 10 if limit is None else max(1, min(10, limit - len(moved)))
            messages = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=want, WaitTimeSeconds=0,
                                           VisibilityTimeout=60).get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen]
            held += [m["ReceiptHandle"] for m in messages if m["MessageId"] in seen]
            if not fresh:
                break
            for m in fresh:
                seen.add(m["MessageId"])
                try:
                    ref = SegmentRef.from_message(m.get("Body", ""))
                except SegmentError:
                    skipped.append(m["MessageId"])
                    held.append(m["ReceiptHandle"])
                    continue
                if dry_run or (limit is not None and len(moved) >= limit):
                    held.append(m["ReceiptHandle"])
                    if dry_run:
                        moved.append(ref.key)
                    continue
                sqs.send_message(QueueUrl=queue_url, MessageBody=m["Body"])
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"])
                moved.append(ref.key)
                log.info("redrive.moved", segment=ref.key)
    finally:
        for i in range(0, len(held), 10):
            sqs.change_message_visibility_batch(QueueUrl=dlq_url, Entries=[
                {"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0} for n, h in enumerate(held[i:i + 10])])
    return Redriven(tuple(moved), tuple(skipped), dry_run)
