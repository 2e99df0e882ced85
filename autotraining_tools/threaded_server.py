"""``ThreadedServer``: the life cycle of the tooling's loopback HTTP servers (the embedded run's
gateway, the dashboard proxy): served from a daemon thread, one thread per connection, stopped
and closed by ``stop``."""
from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Self


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
