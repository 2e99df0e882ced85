"""Fixtures of the worker's unit tests: a tiny model, a segment logger, worker factories.

``log_segment(records, first_sequence)`` plays the stream handler: it writes one segment with
the core's ``encode_segment`` under the core's ``segment_key`` and sends its queue message,
so the worker reads exactly what the ingest path writes: record i gets stream sequence number
``first_sequence + i``, so the same record logged twice (a retried or bisected batch) is given
the same first sequence offset by the test.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from autotraining.aws import Aws
from autotraining.records import Record
from autotraining.registry import Registry
from autotraining.schema import Schema
from autotraining.segments import SegmentRef, encode_segment, segment_key
from autotraining.segments import queue_counts as segment_counts

SHARD = "shardId-00000001"

# Small enough that a round takes well under a second of TensorFlow time.
TINY = {"hidden": (8,), "epochs": 2, "batch_size": 128}


@pytest.fixture
def tiny_config() -> Any:
    from worker.trainer import TrainConfig

    return TrainConfig(**TINY)


@pytest.fixture
def waws(aws: Aws) -> Aws:
    """The provisioned stack with a small reservoir (keeps rounds fast)."""
    return Aws(aws.settings.replace(reservoir_size=300))


LogSegment = Callable[..., SegmentRef]


@pytest.fixture
def log_segment(waws: Aws, schema: Schema) -> LogSegment:
    def _log(records: list[Record], first_sequence: int, send: bool = True, copies: int = 1) -> SegmentRef:
        first, last = str(first_sequence), str(first_sequence + max(len(records), 1) - 1)
        ref = SegmentRef(key=segment_key(SHARD, first, last), count=len(records), shard=SHARD,
                         first_sequence=first, last_sequence=last)
        # Like the stream handler, each line carries its stream sequence number (first, first + 1, ...).
        lines = [dataclasses.replace(r, seq=str(first_sequence + i)) for i, r in enumerate(records)]
        waws.s3.put_object(Bucket=waws.settings.bucket, Key=ref.key, Body=encode_segment(lines, schema))
        for _ in range(copies if send else 0):
            waws.sqs.send_message(QueueUrl=waws.settings.queue_url, MessageBody=ref.to_message())
        return ref

    return _log


@pytest.fixture
def registry(waws: Aws) -> Registry:
    return Registry(waws.dynamodb, waws.settings.models_table)


@pytest.fixture
def make_worker(waws: Aws, tiny_config: Any) -> Callable[..., Any]:
    """A ``Worker`` on the test stack: drains until empty (``once``), tiny model, no waiting."""
    from worker.loop import Worker, WorkerOptions

    def _make(hook: Callable[[str], None] = lambda step: None, **options: Any) -> Any:
        opts = {"once": True, "poll_seconds": 0, "idle_grace": 0.0, "config": tiny_config, **options}
        return Worker(waws, WorkerOptions(**opts), hook=hook)

    return _make


@pytest.fixture
def queue_counts(waws: Aws) -> Callable[..., tuple[int, int]]:
    """(visible, in flight) messages of the pending queue, or of ``url``."""

    def _counts(url: str = "") -> tuple[int, int]:
        return segment_counts(waws.sqs, url or waws.settings.queue_url)

    return _counts
