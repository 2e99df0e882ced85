"""Self-stop: idle clock, IMDSv2 instance id, stopping the own instance after the idle grace."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from autotraining.generator import generate
from worker.loop import Worker, WorkerOptions
from worker.selfstop import IdleClock, instance_id_from_metadata, own_instance_id


def instance_state(aws) -> str:
    out = aws.ec2.describe_instances(InstanceIds=[aws.settings.instance_id])
    return out["Reservations"][0]["Instances"][0]["State"]["Name"]


def test_idle_clock_expires_after_grace_and_resets_when_busy() -> None:
    now = [100.0]
    clock = IdleClock(10.0, clock=lambda: now[0])
    now[0] = 109.0
    assert not clock.expired()
    now[0] = 110.0
    assert clock.expired()
    clock.busy()
    assert not clock.expired() and clock.idle_for() == 0.0


@pytest.fixture
def imds() -> Iterator[str]:
    """A stand-in for the instance metadata service that insists on an IMDSv2 token."""

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            ok = self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            self._reply(200 if ok else 400, b"tok-123")

        def do_GET(self) -> None:
            if self.headers.get("X-aws-ec2-metadata-token") != "tok-123":
                self._reply(401, b"")
            elif self.path == "/latest/meta-data/instance-id":
                self._reply(200, b"i-0abc123\n")
            else:
                self._reply(404, b"")

        def _reply(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_instance_id_comes_from_imdsv2_when_not_configured(imds: str) -> None:
    assert instance_id_from_metadata(imds) == "i-0abc123"
    assert own_instance_id("", lambda: instance_id_from_metadata(imds)) == "i-0abc123"
    assert own_instance_id("i-configured", lambda: pytest.fail("metadata must not be asked")) == "i-configured"


def test_worker_stops_its_instance_after_idle_grace_and_exits_0(waws, log_segment, registry, schema, tiny_config):
    waws.ec2.start_instances(InstanceIds=[waws.settings.instance_id])
    log_segment(generate(schema, 150, seed=1), 100)
    assert Worker(waws, WorkerOptions(idle_grace=0.3, poll_seconds=0, config=tiny_config)).run() == 0
    assert instance_state(waws) == "stopped"
    assert registry.latest().records_seen == 150


def test_worker_does_not_stop_while_messages_are_in_flight(waws, log_segment, tiny_config):
    waws.ec2.start_instances(InstanceIds=[waws.settings.instance_id])
    log_segment(generate(schema_default(), 10, seed=1), 100)
    held = waws.sqs.receive_message(QueueUrl=waws.settings.queue_url, VisibilityTimeout=2)["Messages"]
    assert held  # another worker holds it: in flight, not idle
    w = Worker(waws, WorkerOptions(idle_grace=0.5, poll_seconds=0, config=tiny_config))
    assert w.run() == 0  # the message reappears after 2 s, gets trained on, then the queue idles
    assert instance_state(waws) == "stopped" and w.rounds and w.rounds[0].committed is not None


def test_no_stop_option_exits_without_stopping(waws, tiny_config):
    waws.ec2.start_instances(InstanceIds=[waws.settings.instance_id])
    assert Worker(waws, WorkerOptions(idle_grace=0.1, poll_seconds=0, stop_instance=False,
                                      config=tiny_config)).run() == 0
    assert instance_state(waws) == "running"


def schema_default():
    from autotraining.schema import load_schema

    return load_schema()
