"""``BackgroundLoop``: the start/stop life cycle the embedded run's poller, scheduler and agent share.

A subclass implements ``_run`` as a loop that checks ``self._stop`` (and sleeps with
``self._stop.wait(seconds)``, so ``stop`` interrupts the sleep at once).
"""
from __future__ import annotations

import threading
from typing import Self


class BackgroundLoop:
    def __init__(self, name: str, stop_timeout: float) -> None:
        self._name = name
        self._stop_timeout = stop_timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Ask the loop to end and wait for it (at most ``timeout``, default the loop's own bound)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._stop_timeout if timeout is None else timeout)
            self._thread = None

    def _run(self) -> None:
        raise NotImplementedError
