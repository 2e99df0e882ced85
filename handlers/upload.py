"""``POST /records``: labeled records in, ``201 {"accepted", "ids"}`` out (core: ``autotraining.ingest``).

400/413 carry ``{"message", "errors": [{"index", "field", "message"}]}`` and nothing is written;
503 means the table stayed busy past the retry bound and the same request may be re-sent.
"""
from __future__ import annotations

from typing import Any

from autotraining import api
from autotraining.aws import Aws
from autotraining.aws import shared as aws_for
from autotraining.ingest import IngestUnavailable, RetryPolicy, accept_records
from autotraining.schema import load_schema
from autotraining.settings import Settings
from autotraining.validation import InvalidInput, parse_json


def handle(event: dict[str, Any], aws: Aws, retry: RetryPolicy | None = None) -> dict[str, Any]:
    """The handler with its AWS clients (and the settings they carry) and retry bound passed in."""
    if api.method(event) != "POST":
        return api.json_response(405, {"message": "use POST to send records"}, headers={"allow": "POST"})
    settings = aws.settings
    try:
        payload = parse_json(api.body_text(event))
        result = accept_records(aws, load_schema(settings.schema_file), payload, settings.max_records_per_request,
                                retry or RetryPolicy())
    except InvalidInput as exc:
        return api.invalid_response(exc)
    except IngestUnavailable as exc:
        return api.json_response(503, {"message": str(exc)}, headers={"retry-after": "1"})
    return api.json_response(201, {"accepted": result.accepted, "ids": list(result.ids)})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, aws_for(Settings.from_env()))
