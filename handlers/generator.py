"""Scheduled synthetic labeled records into the upload path (the demo's data source; off by default).

Each invocation (an EventBridge ``Scheduled Event``; the embedded scheduler calls it when
``autotraining local --generate`` / ``make demo`` is on) draws ``settings.generator_batch``
records from ``autotraining.generator`` (or ``event["count"]``) with a seed and id prefix taken
from the event id, and stores them through ``autotraining.ingest.accept_records``: the same
validation, dedupe and write path as ``POST /records``. Off by default: the cloud schedule is
disabled unless switched on, and the embedded run only calls it with ``--generate``.
"""
from __future__ import annotations

import hashlib
import uuid
from typing import Any

from autotraining.aws import Aws
from autotraining.aws import shared as aws_for
from autotraining.generator import generate
from autotraining.ingest import accept_records
from autotraining.logs import get_logger
from autotraining.schema import load_schema
from autotraining.settings import Settings

log = get_logger(__name__)


def handle(event: dict[str, Any], aws: Aws) -> dict[str, Any]:
    """Generate and store one batch; ``{"accepted": n, "first_id": ...}``."""
    settings = aws.settings
    count = int(event.get("count", settings.generator_batch))
    token = str(event.get("id") or uuid.uuid4())
    seed = int.from_bytes(hashlib.sha256(token.encode()).digest()[:4], "little")
    schema = load_schema(settings.schema_file)
    records = generate(schema, count, seed=seed, id_prefix=f"gen-{token[:18]}-") if count > 0 else []
    if not records:
        return {"accepted": 0, "first_id": None}
    result = accept_records(aws, schema, [r.to_log_dict(schema) for r in records], max_rows=count)
    log.info("generator.batch", accepted=result.accepted, seed=seed)
    return {"accepted": result.accepted, "first_id": records[0].id}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, aws_for(Settings.from_env()))
