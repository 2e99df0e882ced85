"""``POST /records``: labeled records in, ``201 {"accepted", "ids"}`` out (core: ``autotraining.ingest``).

400/413 carry ``{"message", "errors": [{"index", "field", "message"}], "error_count"}`` and nothing
is written; 415 a body that is not JSON; 503 means the table stayed busy past the retry bound
and the same request may be re-sent (``autotraining.errors`` lists every answer).
"""
from __future__ import annotations

from typing import Any

from autotraining import api
from autotraining.aws import Aws
from autotraining.aws import shared as aws_for
from autotraining.ingest import RetryPolicy, accept_records
from autotraining.schema import load_schema
from autotraining.settings import Settings


@api.answers_errors
def handle(event: dict[str, Any], aws: Aws, retry: RetryPolicy | None = None) -> dict[str, Any]:
    """The handler with its AWS clients (and the settings they carry) and retry bound passed in."""
    api.require_method(event, "POST")
    settings = aws.settings
    result = accept_records(aws, load_schema(settings.schema_file), api.json_body(event, storable=True),
                            settings.max_records_per_request, retry or RetryPolicy())
    return api.json_response(201, {"accepted": result.accepted, "ids": list(result.ids)})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, aws_for(Settings.from_env()))
