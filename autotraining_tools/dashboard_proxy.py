"""``DashboardProxy``: a stack's dashboard on 127.0.0.1, every request authorized with the user's credentials.

A browser cannot SigV4-sign a navigation, nor send a bearer token with one, so a stack whose reads
are authorized (``ReadAuthorization=SAME``) cannot serve its dashboard to a browser directly. The
proxy does what ``kubectl proxy`` does: it listens on the loopback interface only, forwards each
request (method, raw path and query, body and the headers that matter) to the stack's API, signed
by the ``ApiClient`` of the client commands (SigV4 with the user's AWS credential chain, or
``Authorization: Bearer`` with a JWT), and returns the stack's answer unchanged. Credentials never
reach the browser.

What it decides itself, before anything is forwarded:

* only the API's own read routes (``api.ROUTES`` minus ``api.WRITE_ROUTES``, matched on the raw
  path as API Gateway matches them) are forwarded; any other path is a 404 and a write is a 403,
  so nothing the browser sends through it can teach the model;
* the ``Host`` must name the proxy itself and an ``Origin``, when sent, must be the proxy's own:
  another web site open in the same browser (or one that rebinds its DNS name to 127.0.0.1)
  cannot borrow the user's credentials. The stack's CORS headers are dropped from what is passed
  back for the same reason; the page, served by the proxy, is same-origin and needs none;
* bodies over 6 MB (Lambda's payload limit) are a 413.

The model proxy's 302 to a presigned S3 URL is passed back as is: the browser follows it to S3
itself (the data bucket allows any origin on presigned GETs), nothing is signed for S3 and no
model byte goes through here. An unreachable stack is a 502 naming it; any answer of the stack,
403 for missing or expired credentials included, reaches the browser with its status and body.
"""
from __future__ import annotations

import http.client
import time
from typing import Any, Self
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError

from autotraining import api
from autotraining.logs import get_logger
from autotraining_tools.client import ApiClient
from autotraining_tools.local.gateway import json_error, match_route
from autotraining_tools.threaded_server import HttpResponse, ResponseWriter, ThreadedServer

log = get_logger(__name__)

HOST = "127.0.0.1"
MAX_BODY_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit: the stack would refuse more anyway
# Request headers worth passing on (content negotiation, caching); cookies, the browser's own
# authorization and anything else stay here.
FORWARDED_REQUEST_HEADERS = frozenset({
    "accept", "accept-encoding", "accept-language", "cache-control", "content-type", "if-modified-since",
    "if-none-match", "pragma", "range", "user-agent", "access-control-request-method",
    "access-control-request-headers",
})
# Response headers that are not passed back: hop-by-hop ones, those the proxy writes itself
# (length, date, server), and CORS (see the module docstring).
DROPPED_RESPONSE_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "content-length", "date", "server",
})


class Upstream:
    """One keep-alive connection to the stack's API (one per browser connection)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        split = urlsplit(base_url)
        self.scheme, self.netloc, self.prefix = split.scheme, split.netloc, split.path.rstrip("/")
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self.netloc, timeout=self.timeout)
        return self._conn

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes) -> HttpResponse:
        """Send once; on a kept-alive connection the stack closed meanwhile, once more on a fresh one."""
        for attempt in (1, 2):
            reused = self._conn is not None
            conn = self._connection()
            try:
                conn.request(method, self.prefix + target, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if reused and attempt == 1:  # every forwarded route is a read: sending it again is safe
                    continue
                raise
            except BaseException:
                self.close()
                raise
            if resp.will_close:
                self.close()
            return HttpResponse(resp.status, tuple((k.lower(), v) for k, v in resp.getheaders()), data)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class DashboardProxy(ThreadedServer):
    """A loopback HTTP server that forwards the API's read routes to ``client.base_url``, authorized by ``client``."""

    thread_name = "dashboard-proxy"

    def __init__(self, client: ApiClient, port: int = 0, timeout: float = 60.0, host: str = HOST) -> None:
        self.client = client
        self.upstream_timeout = timeout
        super().__init__((host, port), _ProxyRequestHandler)
        bound_port = self.server_address[1]
        self.allowed_hosts = frozenset({f"{host}:{bound_port}", f"localhost:{bound_port}"})
        self.allowed_origins = frozenset(f"http://{h}" for h in self.allowed_hosts)

    def start(self) -> Self:
        super().start()
        log.info("dashboard.ready", url=self.url, api=self.client.base_url,
                 auth="bearer" if self.client.token else "sigv4" if self.client.credentials else "none")
        return self

    def refusal(self, method: str, target: str, headers: dict[str, str]) -> HttpResponse | None:
        """The proxy's own answer when the request must not be forwarded, else None."""
        if headers.get("host", "") not in self.allowed_hosts:
            return json_error(403, f"this proxy answers only requests addressed to {self.url}")
        origin = headers.get("origin")
        if origin is not None and origin not in self.allowed_origins:
            return json_error(403, f"requests from {origin[:100]} are not forwarded: only the dashboard served "
                                    f"by {self.url} may use this proxy")
        path = urlsplit(target).path if target.startswith("/") else ""
        found = match_route("GET" if method == "HEAD" else method, path) if path else None
        if found is None:
            return json_error(404, "Not Found")
        if (found[0].method, found[0].key) in api.WRITE_ROUTES:
            return json_error(403, "the dashboard proxy forwards reads only; send records with `autotraining upload`")
        return None

    def forward(self, upstream: Upstream, method: str, target: str, headers: dict[str, str],
                body: bytes) -> HttpResponse:
        """The stack's answer to the request, authorized by the client; a 502 when the stack cannot be reached."""
        outgoing = {k: v for k, v in headers.items() if k in FORWARDED_REQUEST_HEADERS}
        outgoing["host"] = upstream.netloc
        url = f"{upstream.scheme}://{upstream.netloc}{upstream.prefix}{target}"
        try:
            # Sign only the host (with the date and body hash SigV4 adds): the other headers may
            # differ in case or spacing on the way without breaking the signature.
            outgoing.update(self.client.auth_headers(method, url, body, {"host": upstream.netloc}))
        except BotoCoreError as exc:  # e.g. SSO or role credentials that can no longer be refreshed
            log.warning("dashboard.unsigned", reason=str(exc)[:200])
        try:
            answer = upstream.send(method, target, outgoing, body)
        except (OSError, http.client.HTTPException) as exc:
            log.warning("dashboard.upstream_unreachable", api=self.client.base_url, error=str(exc)[:200])
            return json_error(502, f"cannot reach the API at {self.client.base_url}: {exc}")
        kept = tuple((k, v) for k, v in answer.headers
                     if k not in DROPPED_RESPONSE_HEADERS and not k.startswith("access-control-"))
        return HttpResponse(answer.status, kept, answer.body)

    def handle_request_from(self, upstream: Upstream, method: str, target: str, headers: dict[str, str],
                            body: bytes) -> HttpResponse:
        started = time.perf_counter()
        response = self.refusal(method, target, headers) or self.forward(upstream, method, target, headers, body)
        log.debug("dashboard.request", method=method, path=urlsplit(target).path[:200], status=response.status,
                  ms=round((time.perf_counter() - started) * 1000, 1))
        return response


class _ProxyRequestHandler(ResponseWriter):
    server: DashboardProxy
    log_event = "dashboard.http"

    def setup(self) -> None:
        super().setup()
        self.upstream = Upstream(self.server.client.base_url, self.server.upstream_timeout)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.upstream.close()

    def _serve(self) -> None:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        body = self._read_body(headers)
        if body is None:
            return
        self.write(self.server.handle_request_from(self.upstream, self.command, self.path, headers, body))

    do_GET = do_HEAD = do_POST = do_OPTIONS = _serve

    def __getattr__(self, name: str) -> Any:
        # Any other method is refused like an unknown route (JSON 404), not with http.server's HTML 501.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _read_body(self, headers: dict[str, str]) -> bytes | None:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.close_connection = True
            self.write(json_error(411, "send the body with a content-length"))
            return None
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body cannot be skipped safely
            self.write(json_error(413 if length > 0 else 400,
                                  f"the body must have a content-length of at most {MAX_BODY_BYTES} bytes"))
            return None
        return self.rfile.read(length) if length else b""
