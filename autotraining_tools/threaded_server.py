"""The tooling's loopback HTTP servers (the embedded run's gateway, the dashboard proxy): what they
share — ``ThreadedServer``'s life cycle (served from a daemon thread, one thread per connection,
stopped and closed by ``stop``), the ``HttpResponse`` value, and ``ResponseWriter``, the request
handler base that writes one on a kept-alive connection."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from autotraining.logs import get_logger

log = get_logger(__name__)

# Written by ``ResponseWriter.write`` itself (length, keep-alive), never copied from a response.
_OWN_HEADERS = frozenset({"content-length", "connection", "transfer-encoding"})


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class ThreadedServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    thread_name = "http-server"

    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.server_close()


class ResponseWriter(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: browsers and load clients reuse their connections
    # Headers and body leave in separate writes: without TCP_NODELAY the body waits for the ACK of
    # the headers, which a client on a kept-alive connection delays by 40 ms (measured:
    # scripts/bench_dashboard_proxy.py, POST /predict 44 ms → 0.5 ms on a kept-alive connection).
    disable_nagle_algorithm = True
    log_event = "http.request"

    def write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        names = set()
        for name, value in response.headers:
            if name not in _OWN_HEADERS:
                names.add(name)
                self.send_header(name, value)
        if "content-type" not in names and response.body:
            self.send_header("content-type", "application/octet-stream")
        self.send_header("content-length", str(len(response.body)))
        if self.close_connection:
            self.send_header("connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        log.debug(self.log_event, message=format % args)
