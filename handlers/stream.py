"""DynamoDB stream batch → one immutable S3 log segment + one queue message (core: ``autotraining.recordlog``).

Every failure propagates, so Lambda retries the whole batch (the segment key and bytes are the
same on a retry); nothing is dropped silently.
"""
from __future__ import annotations

from typing import Any

from autotraining.aws import Aws
from autotraining.aws import shared as aws_for
from autotraining.recordlog import log_stream_batch
from autotraining.schema import load_schema
from autotraining.settings import Settings


def handle(event: dict[str, Any], aws: Aws) -> dict[str, Any]:
    """The handler with its AWS clients (and the settings they carry) passed in."""
    result = log_stream_batch(aws, load_schema(aws.settings.schema_file), event)
    return {
        "segment": result.segment.key if result.segment else None,
        "count": result.segment.count if result.segment else 0,
        "skipped": result.skipped,
        "pending": result.pending,
        "start_requested": result.start_requested,
    }


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, aws_for(Settings.from_env()))
