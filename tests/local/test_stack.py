"""EmbeddedStack wiring: environment for handlers and children, the serialized local invoker, ports."""
from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import pytest

import handlers.starter
from autotraining.invoke import invoke_async
from autotraining.settings import Settings
from autotraining_tools.local.stack import EmbeddedStack, PortInUse


def test_stack_sets_env_serializes_starter_calls_and_restores_env(monkeypatch: pytest.MonkeyPatch) -> None:
    active, overlaps, calls = [0], [0], []
    lock = threading.Lock()

    def slow_starter(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with lock:
            active[0] += 1
            overlaps[0] = max(overlaps[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
            calls.append(event["n"])
        return {}

    monkeypatch.setattr(handlers.starter, "handler", slow_starter)
    before = os.environ.get("AWS_ENDPOINT_URL")
    with EmbeddedStack(port=0, emulator_port=0, run_poller=False, run_scheduler=False, run_agent=False) as stack:
        assert stack.api_url.startswith("http://127.0.0.1:") and stack.emulator_url.startswith("http://127.0.0.1:")
        assert os.environ["AWS_ENDPOINT_URL"] == stack.emulator_url
        assert os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] == "disabled"
        assert Settings.from_env() == stack.settings  # what a handler builds is what the stack provisioned
        assert stack.instance_state() == "stopped"
        for n in range(5):  # an Event invoke returns at once; the calls run one at a time, in order
            invoke_async(stack.aws, stack.settings.starter_function, {"n": n})
        assert len(calls) < 5
        with pytest.raises(LookupError):
            invoke_async(stack.aws, "some-other-function", {})
        deadline = time.monotonic() + 10
        while len(calls) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert calls == [0, 1, 2, 3, 4] and overlaps[0] == 1
    assert os.environ.get("AWS_ENDPOINT_URL") == before


def test_port_in_use_is_refused_before_anything_starts() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortInUse, match=f"port {port}"):
            EmbeddedStack(port=0, emulator_port=port).start()
        with pytest.raises(PortInUse, match=f"API port {port}"):
            EmbeddedStack(port=port, emulator_port=0).start()
    assert "AWS_ENDPOINT_URL" not in os.environ or os.environ["AWS_ENDPOINT_URL"] != f"http://127.0.0.1:{port}"


def test_same_port_for_api_and_emulator_is_refused_cleanly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(PortInUse, match=f"API port {port}"):
        EmbeddedStack(port=port, emulator_port=port, run_poller=False, run_scheduler=False, run_agent=False).start()
    assert os.environ.get("AWS_ENDPOINT_URL") != f"http://127.0.0.1:{port}"  # environment restored


def test_emulator_bind_failure_is_reported_not_hung(monkeypatch: pytest.MonkeyPatch) -> None:
    import autotraining_tools.local.stack as stack_module

    monkeypatch.setattr(stack_module, "check_port_free", lambda port, what, host="127.0.0.1": None)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(PortInUse, match=f"emulator port {port}"):
            EmbeddedStack(port=0, emulator_port=port).start()
    assert time.monotonic() - t0 < 10
