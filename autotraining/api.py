"""HTTP API shapes shared by the handlers: API Gateway v2 (payload 2.0) events in, responses out.

The cloud stack's HTTP API and the embedded run's gateway both deliver the same event shape
(``requestContext.http.method``, ``rawPath``, ``pathParameters``, ``queryStringParameters``,
``body`` with ``isBase64Encoded``), and both return what these helpers build. ``answers_errors``
is the one adapter between the error vocabulary (``autotraining.errors``) and responses: every
HTTP handler is wrapped in it, so an ``ApiError`` raised anywhere below becomes its status,
headers and JSON body. ``json_body`` reads a POST body the same way for every handler: JSON
content-type required (415), base64 decoded when flagged (400 when it is not base64), parsed
with ``validation.parse_json``'s bounds.
"""
from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable, Mapping
from typing import Any

from autotraining import strictjson
from autotraining.errors import ApiError, FieldError, InvalidInput, MethodNotAllowed, UnsupportedMediaType
from autotraining.validation import parse_json

JSON_TYPES = ("application/json",)  # and any "+json" type, e.g. application/merge-patch+json

# CORS only where a browser on another origin calls: the model files and their preflight, the
# history, and POST /predict (TensorFlow.js pages elsewhere). Uploads and the page need none.
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
    ("GET", "/openapi.json", "page"),
)

# Routes that change what the model learns: always authorized (IAM SigV4 by default, or JWT).
# Every other route is a read, public unless the stack's ReadAuthorization says otherwise.
WRITE_ROUTES: frozenset[tuple[str, str]] = frozenset({("POST", "/records")})


def body_text(event: Mapping[str, Any]) -> str | bytes | None:
    """The raw body; ``InvalidInput`` when it is flagged base64 but is not."""
    body = event.get("body")
    if body is not None and event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput([FieldError(None, None, "the body is flagged base64 but is not valid base64")]) from None
    return body


def header(event: Mapping[str, Any], name: str) -> str:
    """A request header by lower-case name ('' when absent); payload 2.0 lower-cases names."""
    headers = event.get("headers") or {}
    return str(headers.get(name) or headers.get(name.title()) or "")


def json_body(event: Mapping[str, Any], storable: bool = False) -> Any:
    """The parsed JSON body of a POST: 415 unless the content-type is JSON, 400 for a bad body.

    ``storable``: the body will be written to DynamoDB, so numbers it cannot store are a 400 too.
    """
    media = header(event, "content-type").split(";")[0].strip().lower()
    if media not in JSON_TYPES and not media.endswith("+json"):
        raise UnsupportedMediaType(f"send the body as JSON with content-type: application/json (got {media[:80] or 'none'!r})")
    return parse_json(body_text(event), storable=storable)


def require_method(event: Mapping[str, Any], *allowed: str) -> str:
    """The request's method; ``MethodNotAllowed`` (405 with ``allow``) unless it is one of ``allowed``."""
    verb = method(event)
    if verb not in allowed:
        raise MethodNotAllowed(f"use {' or '.join(allowed)} on this path", allow=",".join(allowed))
    return verb


def method(event: Mapping[str, Any]) -> str:
    return str(event.get("requestContext", {}).get("http", {}).get("method", "GET")).upper()


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None,
                  cors: bool = False) -> dict[str, Any]:
    """A JSON answer; ``cors`` adds the CORS headers (only where a browser on another origin needs them)."""
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(CORS_HEADERS if cors else {}), **(headers or {})},
        "body": strictjson.dumps(payload, separators=(",", ":")),  # no NaN/Infinity for browsers
        "isBase64Encoded": False,
    }


def error_response_for(exc: ApiError, cors: bool = False) -> dict[str, Any]:
    """The response an ``ApiError`` stands for: its status, its headers, its JSON body."""
    return json_response(exc.status, exc.body(), headers=exc.headers, cors=cors)


Handle = Callable[..., dict[str, Any]]


def answers_errors(handle: Handle | None = None, *, cors: bool = False) -> Any:
    """Wrap an HTTP handler so an ``ApiError`` it raises is answered with its response (the one adapter).

    ``@answers_errors`` or ``@answers_errors(cors=True)`` (errors a browser script must read, too).
    """
    def wrap(inner: Handle) -> Handle:
        @functools.wraps(inner)
        def wrapper(*args: Any, **kwargs: Any) -> dict[str, Any]:
            try:
                return inner(*args, **kwargs)
            except ApiError as exc:
                return error_response_for(exc, cors=cors)
        return wrapper
    return wrap(handle) if handle is not None else wrap
