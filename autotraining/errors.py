"""Every error the project reports to a caller: the HTTP API's, each with its status and body, and the CLI's.

A leaf module (it imports nothing of ours), so the core, the handlers and the CLI all raise from
here without import cycles. The HTTP errors share one body shape, ``{"message": str}``, which
``InvalidInput`` extends with the first ``MAX_LISTED_ERRORS`` field errors and their total count;
``autotraining.api.error_response_for`` turns any of them into the API Gateway response, and
``autotraining.api.answers_errors`` is the one adapter every HTTP handler is wrapped in.
Anything else a handler raises is a bug: it propagates, Lambda counts it, API Gateway answers 500.

    Exception
    ├── ApiError                  500  {"message"}                      base of every HTTP answer below
    │   ├── InvalidInput          400  {"message", "errors", "error_count"}  (413 when too large)
    │   ├── Refused               400/404 {"message"}                   a path or query the rules refuse
    │   ├── MethodNotAllowed      405  {"message"} + allow              wrong method for the route
    │   ├── UnsupportedMediaType  415  {"message"}                      a POST body that is not JSON
    │   └── Unavailable           503  {"message"} + retry-after        try the same request again later
    │       ├── NoModel           503  retry-after 30                   no servable model yet
    │       └── IngestUnavailable 503  retry-after 1                    the records table stayed busy
    └── UsageError                exit 2, one line on stderr            the CLI: a mistake the user can fix

Each class keeps the builtin it replaced as a second base (``ValueError``, ``LookupError``,
``RuntimeError``), so code that caught those still does.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_LISTED_ERRORS = 50  # field errors listed in a 400 body; the rest are counted (bounds the body size)
MAX_TEXT = 200  # characters of a field name or message echoed back (a field name is the client's text)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of one row (``index``/``field`` None: the body as a whole)."""

    index: int | None
    field: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": None if self.field is None else _clip(self.field),
                "message": _clip(self.message)}

    def describe(self) -> str:
        where = []
        if self.index is not None:
            where.append(f"row {self.index}")
        if self.field is not None:
            where.append(f"field {_clip(self.field)!r}")
        return (", ".join(where) + ": " if where else "") + _clip(self.message)


class ApiError(Exception):
    """An HTTP answer other than success; ``status``, ``headers`` and ``body()`` make the response."""

    status = 500
    headers: Mapping[str, str] = {}

    def __init__(self, message: str, status: int | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        if headers is not None:
            self.headers = dict(headers)

    def body(self) -> dict[str, Any]:
        return {"message": str(self)}


class InvalidInput(ApiError, ValueError):
    """The request cannot be accepted (400, or 413 when it is too large); nothing was written."""

    status = 400

    def __init__(self, errors: list[FieldError], status: int = 400) -> None:
        self.errors = errors
        described = "; ".join(e.describe() for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(described + more, status)

    def to_body(self) -> dict[str, Any]:
        return self.body()

    def body(self) -> dict[str, Any]:
        return {"message": str(self), "errors": [e.to_dict() for e in self.errors[:MAX_LISTED_ERRORS]],
                "error_count": len(self.errors)}


class Refused(ApiError, ValueError):
    """A path or query the serving rules refuse (400 malformed, 404 unknown)."""

    status = 400

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, status)


class MethodNotAllowed(ApiError):
    """The route does not take this method; ``allow`` lists the ones it does."""

    status = 405

    def __init__(self, message: str, allow: str) -> None:
        super().__init__(message, headers={"allow": allow})


class UnsupportedMediaType(ApiError):
    """A POST whose content-type is not JSON."""

    status = 415


class Unavailable(ApiError, RuntimeError):
    """Not now: the same request may succeed later (``retry-after`` seconds)."""

    status = 503
    retry_after = 5

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"retry-after": str(self.retry_after)})


class NoModel(Unavailable, LookupError):
    """No model can serve yet (none published, or the newest one cannot be loaded in a new container)."""

    retry_after = 30


class IngestUnavailable(Unavailable):
    """The records table did not take the records within the retry bound; re-send the same request."""

    retry_after = 1


class UsageError(Exception):
    """A problem the CLI's user can fix; printed as ``autotraining <cmd>: error: <message>``, exit 2."""
