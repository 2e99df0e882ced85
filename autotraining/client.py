"""The HTTP API as the CLI's client commands see it: POST /predict and GET /models over urllib.

``ApiClient`` turns every failure into ``ApiError`` with a one-line message (the API's own
message and first field errors for 4xx/5xx, the reason for an unreachable host), so commands
print it without a traceback. ``read_rows`` reads prediction rows from CSV, JSON Lines or JSON
and remembers each row's line in the file, so errors can point at lines instead of indexes.
"""
from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


class ApiError(RuntimeError):
    """A request failed; ``status`` is the HTTP status (0 when the API could not be reached)."""

    def __init__(self, message: str, status: int = 0, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class InputRows:
    """Rows read from a file: the objects to send and the file line each one came from."""

    rows: tuple[dict[str, Any], ...]
    lines: tuple[int, ...]


class ApiClient:
    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ApiError(f"the API URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _request(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"content-type": "application/json", "accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            message = body.get("message") if isinstance(body, dict) else None
            raise ApiError(f"HTTP {exc.code} from {method} {path}: {message or raw[:200].decode(errors='replace')}",
                           exc.code, body) from None
        except urllib.error.URLError as exc:
            raise ApiError(f"cannot reach the API at {self.base_url}: {exc.reason}") from None
        except (TimeoutError, ConnectionError) as exc:
            raise ApiError(f"cannot reach the API at {self.base_url}: {exc}") from None
        except ValueError:
            raise ApiError(f"{method} {path} did not answer JSON; is {self.base_url} the autotraining API?") from None

    def predict(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return self._request("POST", "/predict", rows)  # type: ignore[no-any-return]

    def history(self, limit: int = 20, before: str | None = None) -> dict[str, Any]:
        query = {"limit": str(limit), **({"before": before} if before else {})}
        return self._request("GET", "/models?" + urllib.parse.urlencode(query))  # type: ignore[no-any-return]

    def all_history(self, limit: int | None = None, page_size: int = 100) -> list[dict[str, Any]]:
        """Rounds newest first, following ``next`` until ``limit`` rounds (or all of them)."""
        out: list[dict[str, Any]] = []
        before: str | None = None
        while limit is None or len(out) < limit:
            size = page_size if limit is None else min(page_size, limit - len(out))
            page = self.history(limit=size, before=before)
            out.extend(page.get("versions", []))
            before = page.get("next")
            if not before:
                break
        return out


def _number(text: str) -> Any:
    text = text.strip()
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text  # the API names the field and says it must be a number


def read_rows(text: str, name: str = "input") -> InputRows:
    """Rows from CSV (a header line of feature names), JSON Lines, or a JSON array / ``{"rows": [...]}``."""
    stripped = text.lstrip()
    if not stripped:
        raise ValueError(f"{name} is empty")
    if stripped[0] in "[{":
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if data is not None:
            if isinstance(data, dict) and "rows" in data:
                data = data["rows"]
            if isinstance(data, dict):
                data = [data]
            if not isinstance(data, list):
                raise ValueError(f"{name}: expected a JSON array of objects")
            return InputRows(tuple(data), tuple(range(1, len(data) + 1)))
        rows, lines = [], []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise ValueError(f"{name} line {n}: not JSON ({exc})") from None
            lines.append(n)
        return InputRows(tuple(rows), tuple(lines))
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader)]
    rows, lines = [], []
    for record in reader:
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            raise ValueError(f"{name} line {reader.line_num}: {len(record)} values for {len(header)} columns")
        rows.append({h: (c.strip() if h in ("id", "label") else _number(c)) for h, c in zip(header, record, strict=False)})
        lines.append(reader.line_num)
    return InputRows(tuple(rows), tuple(lines))
