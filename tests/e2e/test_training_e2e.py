"""End to end with the real worker process: uploads → rounds → published models → /predict → self-stop.

The embedded stack's instance agent runs ``python -m worker`` (the same command the systemd
unit runs) against the moto server; the test only talks HTTP to the gateway and reads the
registry, like a client and an operator would.
"""
from __future__ import annotations

import pytest
from e2e_fixtures import call, predict_when_serving, records_seen, upload, wait_for

from autotraining.generator import generate
from autotraining.registry import Registry
from autotraining.schema import load_schema
from autotraining_tools.local.stack import EmbeddedStack

pytestmark = pytest.mark.e2e


def test_uploads_are_trained_published_served_and_the_instance_stops() -> None:
    schema = load_schema()
    first, second = generate(schema, 2000, seed=101), generate(schema, 1500, seed=102)
    with EmbeddedStack(batch_size=1000, batch_window=1.0, idle_grace=6.0, boot_delay=1.0,
                       schedule_seconds=5.0) as stack:
        registry = Registry(stack.aws.dynamodb, stack.settings.models_table)

        upload(stack.api_url, first, schema)
        wait_for("the first 2,000 records to be committed", lambda: records_seen(registry) == 2000, 120)
        upload(stack.api_url, second, schema)
        wait_for("all 3,500 records to be committed", lambda: records_seen(registry) == 3500, 120)

        history = call(f"{stack.api_url}/models")["versions"]
        assert len(history) >= 2 and history[0]["records_seen"] == 3500
        assert isinstance(history[0]["records_seen"], int)
        assert sum(v["new_records"] for v in history) == 3500

        fresh = generate(schema, 400, seed=999)
        rows = [dict(zip(schema.feature_names, r.features, strict=True)) for r in fresh]
        answer = predict_when_serving(stack.api_url, rows, registry.latest().model_version)
        correct = sum(p["label"] == r.label for p, r in zip(answer["predictions"], fresh, strict=True))
        assert correct / len(fresh) >= 0.9

        wait_for("the worker to stop its instance", lambda: stack.instance_state() == "stopped", 60)
        wait_for("the worker process to end", lambda: not stack.agent.worker_running, 30)


def test_worker_killed_mid_round_with_sigkill_replays_and_counts_exactly() -> None:
    import os
    import signal
    import sys

    schema = load_schema()
    records = generate(schema, 1500, seed=201)
    # Short visibility, so the dead worker's messages come back within seconds (the heartbeat
    # renews it every ~1.7 s while a round runs).
    command = [sys.executable, "-m", "worker", "--idle-grace", "5", "--visibility-seconds", "5", "--poll-seconds", "1"]
    with EmbeddedStack(batch_size=1000, batch_window=1.0, idle_grace=5.0, boot_delay=0.5, schedule_seconds=5.0,
                       worker_command=command) as stack:
        registry = Registry(stack.aws.dynamodb, stack.settings.models_table)
        sqs, url = stack.aws.sqs, stack.settings.queue_url

        def round_in_flight() -> bool:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
            return int(attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"]) > 0 and stack.agent.worker_running

        upload(stack.api_url, records, schema)
        wait_for("the worker to receive a segment", round_in_flight, 90)
        pid = stack.agent.worker_pid
        os.kill(pid, signal.SIGKILL)
        wait_for("the agent to restart the worker", lambda: stack.agent.starts >= 2, 60)
        wait_for("all 1,500 records to be committed",
                 lambda: (registry.latest() or type("L", (), {"records_seen": 0})).records_seen == 1500, 120)
        history = registry.history()
        assert sum(v.new_records for v in history) == 1500
        assert -signal.SIGKILL in stack.agent.exits
        wait_for("the worker to stop its instance", lambda: stack.instance_state() == "stopped", 60)
