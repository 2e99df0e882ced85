"""The embedded run's HTTP gateway: the stand-in for the stack's API Gateway v2 HTTP API.

It turns each HTTP request into an API Gateway v2 (payload format 2.0) event, matches it
against ``autotraining.api.ROUTES``, calls ``handlers.<module>.handler(event, context)``
in-process (one thread per request, like concurrent Lambda invocations) and writes the
handler's response dict back as HTTP.

Path handling follows API Gateway: routing uses the *raw* request path, split on ``/``
without any percent-decoding or ``.``/``..`` normalisation, so ``/models/latest/%2e%2e/x``
has four segments and matches no route (404), while ``/models/latest/%2e%2e%2fx`` matches
``/models/{version}/{file}`` with ``rawPath`` kept as sent and ``pathParameters`` decoded
(``{"version": "latest", "file": "../x"}``): a handler sees exactly what it would see in
the cloud and must refuse such names itself. Query parameters with repeated names are
joined with commas; headers are lower-cased and repeated ones joined with commas (payload
2.0 rules). Bodies over ``max_body_bytes`` (6 MB by default, Lambda's synchronous payload
limit) answer 413 without calling the handler; an unknown route answers 404 JSON; a handler
exception answers 500 JSON and is logged with its traceback.

Authorization follows the stack's: an ``AccessPolicy`` (``autotraining_tools.local.authorizers``) names
the authorizer of each route (SigV4 for ``POST /records`` in the embedded stack, JWT as the
alternative, reads public unless configured otherwise); a request it refuses gets API Gateway's
403/401 answer without reaching the handler, and an allowed one carries its identity in
``requestContext.authorizer``.
"""
from __future__ import annotations

import base64
import importlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from autotraining import api
from autotraining.api import ROUTES
from autotraining.errors import ApiError
from autotraining.logs import get_logger
from autotraining_tools.local.authorizers import OPEN, AccessPolicy, Denied, IncomingRequest
from autotraining_tools.local.context import LambdaContext
from autotraining_tools.threaded_server import HttpResponse, ResponseWriter, ThreadedServer

log = get_logger(__name__)

MAX_BODY_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit
HANDLER_PACKAGE = "handlers"

Handler = Callable[[dict[str, Any], Any], Any]
HandlerResolver = Callable[[str], Handler]


@dataclass(frozen=True)
class Route:
    """One entry of ``api.ROUTES`` compiled for matching against a raw path."""

    method: str
    key: str  # e.g. "/models/{version}/{file}"
    module: str  # handler module name under ``handlers``

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.key}"

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Path parameters (decoded) when ``raw_path`` matches this route, else None."""
        want = self.key.strip("/").split("/") if self.key != "/" else []
        got = raw_path.strip("/").split("/") if raw_path not in ("", "/") else []
        if raw_path.endswith("/") and raw_path != "/":
            return None  # API Gateway does not match "/records/" to "/records"
        params: dict[str, str] = {}
        for i, part in enumerate(want):
            if i >= len(got):
                return None
            if part.startswith("{") and part.endswith("}"):
                if got[i] == "":
                    return None
                params[part[1:-1]] = unquote(got[i])
            elif part != got[i]:
                return None
        return params if len(got) == len(want) else None


COMPILED_ROUTES: tuple[Route, ...] = tuple(Route(m, k, mod) for m, k, mod in ROUTES)


def match_route(method: str, raw_path: str,
                routes: tuple[Route, ...] = COMPILED_ROUTES) -> tuple[Route, dict[str, str]] | None:
    """The route (and decoded path parameters) for a method and a raw, undecoded path."""
    literal_first = sorted(routes, key=lambda r: r.key.count("{"))  # a literal route beats a parameter
    for route in literal_first:
        if route.method != method.upper():
            continue
        params = route.match(raw_path)
        if params is not None:
            return route, params
    return None


def build_event(method: str, target: str, headers: Mapping[str, str] | list[tuple[str, str]], body: bytes,
                route: Route | None, path_parameters: Mapping[str, str] | None,
                source_ip: str = "127.0.0.1") -> dict[str, Any]:
    """An API Gateway v2 (payload format 2.0) event for one request."""
    split = urlsplit(target)
    raw_path, raw_query = split.path or "/", split.query
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in items:
        lname = name.lower()
        if lname == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[lname] = f"{merged[lname]},{value}" if lname in merged else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    now = time.time()
    route_key = route.route_key if route else "$default"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": merged.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {"method": method.upper(), "path": raw_path, "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": merged.get("user-agent", "")},
            "requestId": uuid.uuid4().hex,
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def to_http(result: Any) -> HttpResponse:
    """A handler's return value as HTTP, with API Gateway's rules for payload 2.0 responses."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # API Gateway infers a 200 JSON response from anything without a statusCode.
        text = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(200, (("content-type", "application/json"),), text.encode("utf-8"))
    body = result.get("body")
    if body is None:
        data = b""
    elif result.get("isBase64Encoded"):
        data = base64.b64decode(body)
    else:
        data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
    headers = [(str(k).lower(), str(v)) for k, v in (result.get("headers") or {}).items()]
    for cookie in result.get("cookies") or []:
        headers.append(("set-cookie", str(cookie)))
    return HttpResponse(int(result["statusCode"]), tuple(headers), data)


def json_error(status: int, message: str) -> HttpResponse:
    """The gateway's own errors (no route, too large, not authorized) in the handlers' error shape."""
    return to_http(api.error_response_for(ApiError(message, status)))


def import_handler(module: str) -> Handler:
    """``handlers.<module>.handler`` (a route names only modules that exist; a broken one is a 500)."""
    return importlib.import_module(f"{HANDLER_PACKAGE}.{module}").handler  # type: ignore[no-any-return]


class Gateway(ThreadedServer):
    """A threading HTTP server that serves the HTTP API from the handler functions."""

    thread_name = "gateway"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, resolver: HandlerResolver = import_handler,
                 routes: tuple[Route, ...] = COMPILED_ROUTES, max_body_bytes: int = MAX_BODY_BYTES,
                 function_prefix: str = "autotraining", access: AccessPolicy = OPEN) -> None:
        self.resolver = resolver
        self.access = access
        self.routes = routes
        self.max_body_bytes = max_body_bytes
        self.function_prefix = function_prefix
        super().__init__((host, port), _RequestHandler)

    def dispatch(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
                 source_ip: str) -> HttpResponse:
        raw_path = urlsplit(target).path or "/"
        found = match_route(method, raw_path, self.routes)
        if found is None:
            return json_error(404, "Not Found")
        route, params = found
        authorizer = self.access.authorizer_for(method, route.key)
        identity: dict[str, Any] | None = None
        if authorizer is not None:
            lowered: dict[str, str] = {}
            for name, value in headers:
                lowered[name.lower()] = f"{lowered[name.lower()]},{value}" if name.lower() in lowered else value
            try:
                identity = authorizer.authorize(IncomingRequest(method, target, lowered, body))
            except Denied as exc:
                log.info("gateway.denied", route=route.route_key, status=exc.status, reason=exc.message[:80])
                denied = json_error(exc.status, exc.message)
                return HttpResponse(denied.status, denied.headers + tuple(exc.headers.items()), denied.body)
        try:
            handler = self.resolver(route.module)
        except Exception:  # the module exists but fails to import: a broken deployment, not a crash
            log.exception("gateway.handler_import_failed", route=route.route_key)
            return json_error(500, "Internal Server Error")
        event = build_event(method, target, headers, body, route, params, source_ip)
        if identity is not None:
            event["requestContext"]["authorizer"] = identity
        started = time.perf_counter()
        try:
            result = handler(event, LambdaContext(f"{self.function_prefix}-{route.module}"))
            response = to_http(result)
        except Exception:
            log.exception("gateway.handler_failed", route=route.route_key, path=raw_path)
            return json_error(500, "Internal Server Error")
        log.debug("gateway.request", route=route.route_key, status=response.status,
                  ms=round((time.perf_counter() - started) * 1000, 1))
        return response


class _RequestHandler(ResponseWriter):
    server: Gateway
    log_event = "gateway.http"

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        response = self.server.dispatch(self.command, self.path, list(self.headers.items()), body,
                                        self.client_address[0])
        self.write(response)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, PROPFIND, ...) is routed like the rest: no route has it, so it
        # gets API Gateway's JSON 404, not http.server's HTML 501.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _read_body(self) -> bytes | None:
        limit = self.server.max_body_bytes
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked(limit)
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            self.close_connection = True
            self.write(json_error(400, "bad content-length"))
            return None
        if length > limit:
            self.close_connection = True  # the unread body cannot be skipped safely
            self.write(json_error(413, f"request body is larger than {limit} bytes"))
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self, limit: int) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                self.close_connection = True
                self.write(json_error(400, "bad chunked encoding"))
                return None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > limit:
                self.close_connection = True
                self.write(json_error(413, f"request body is larger than {limit} bytes"))
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(3)
