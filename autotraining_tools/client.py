"""The HTTP API as the CLI's commands see it: POST /records, POST /predict and GET /models over urllib.

``ApiClient`` turns every failure into ``ApiError`` with a one-line message (the API's own
message for 4xx/5xx, the reason for an unreachable host) and says whether it is worth retrying
(``transient``), so commands print it without a traceback and retry only what may succeed.

Every request is signed with SigV4 (``autotraining_tools.signing``) using the user's AWS credential
chain, as the stack's IAM authorizer requires for ``POST /records`` (and for reads when the stack
makes them authorized); the region comes from an ``execute-api`` host name, else the user's
configuration. A client given a ``token`` sends it as a JWT bearer instead. With no credentials
at all the request goes unsigned, and a 403 says how to fix that.
"""
from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from botocore.credentials import Credentials

from autotraining_tools.signing import sign_headers, user_credentials, user_region

_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?::\d+)?$")
_USER_CHAIN: Any = object()  # sentinel: resolve the user's credential chain


class ApiError(RuntimeError):
    """A request failed; ``status`` is the HTTP status (0 when the API could not be reached)."""

    def __init__(self, message: str, status: int = 0, body: Any = None, answered: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.answered = answered  # False: no HTTP answer at all (refused, reset, timed out)

    @property
    def transient(self) -> bool:
        """Worth retrying: no answer, 429 or a 5xx."""
        return not self.answered or self.status == 429 or self.status >= 500


class ApiClient:
    def __init__(self, base_url: str, timeout: float = 60.0, credentials: Credentials | None = _USER_CHAIN,
                 region: str | None = None, token: str | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ApiError(f"the API URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.token = token
        self.credentials = user_credentials() if credentials is _USER_CHAIN else credentials
        host = _EXECUTE_API_HOST.match(urllib.parse.urlsplit(self.base_url).netloc)
        self.region = region or (host["region"] if host else user_region())

    def auth_headers(self, method: str, url: str, data: bytes, headers: dict[str, str]) -> dict[str, str]:
        """What authorizes ``method url`` with body ``data``: a bearer, SigV4 headers, or nothing (no credentials)."""
        if self.token:
            return {"authorization": f"Bearer {self.token}"}
        if self.credentials is None:
            return {}
        return sign_headers(method, url, data, self.credentials, self.region, headers)

    def _request(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        url = self.base_url + path
        headers = {"content-type": "application/json", "accept": "application/json"}
        headers.update(self.auth_headers(method, url, data or b"", headers))
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            # urlopen on the base URL, checked to be http(s) in __init__: never a file: or custom scheme
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # nosec B310
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            message = body.get("message") if isinstance(body, dict) else None
            if exc.code in (401, 403) and not self.token and self.credentials is None:
                message = f"{message or 'Forbidden'} (no AWS credentials found to sign with; configure them as for the AWS CLI)"
            raise ApiError(f"HTTP {exc.code} from {method} {path}: {message or raw[:200].decode(errors='replace')}",
                           exc.code, body) from None
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
            raise ApiError(f"cannot reach the API at {self.base_url}: {getattr(exc, 'reason', exc)}",
                           answered=False) from None
        except ValueError:
            raise ApiError(f"{method} {path} did not answer JSON; is {self.base_url} the autotraining API?") from None

    def post_records(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return self._request("POST", "/records", rows)  # type: ignore[no-any-return]

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

