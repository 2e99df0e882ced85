"""HTTP API shapes shared by the handlers: API Gateway v2 (payload 2.0) events in, responses out.

The cloud stack's HTTP API and the embedded run's gateway both deliver the same event shape
(``requestContext.http.method``, ``rawPath``, ``pathParameters``, ``queryStringParameters``,
``body`` with ``isBase64Encoded``), and both return what these helpers build.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from autotraining.validation import FieldError, InvalidInput

CORS_HEADERS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET,POST,OPTIONS",
    "access-control-allow-headers": "content-type",
    "access-control-max-age": "600",
}

# Routes of the HTTP API: (method, route key, handler module). The embedded gateway routes from
# this table; the template's routes are written by hand and checked against it
# (tests/deploy/test_template.py), as is the OpenAPI description.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("POST", "/records", "upload"),
    ("POST", "/predict", "infer"),
    ("GET", "/models", "model_proxy"),
    ("GET", "/models/{version}/{file}", "model_proxy"),
    ("OPTIONS", "/models/{version}/{file}", "model_proxy"),
    ("GET", "/", "page"),
    ("GET", "/static/{file}", "page"),
)

# Routes that change what the model learns: always authorized (IAM SigV4 by default, or JWT).
# Every other route is a read, public unless the stack's ReadAuthorization says otherwise.
WRITE_ROUTES: frozenset[tuple[str, str]] = frozenset({("POST", "/records")})


def body_text(event: Mapping[str, Any]) -> str | bytes | None:
    body = event.get("body")
    if body is not None and event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body


def method(event: Mapping[str, Any]) -> str:
    return str(event.get("requestContext", {}).get("http", {}).get("method", "GET")).upper()


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **CORS_HEADERS, **(headers or {})},
        "body": json.dumps(payload, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def error_response(status: int, message: str, errors: list[FieldError] | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"message": message}
    if errors is not None:
        payload["errors"] = [e.to_dict() for e in errors]
    return json_response(status, payload)


def invalid_response(exc: InvalidInput) -> dict[str, Any]:
    return json_response(exc.status, exc.to_body())
