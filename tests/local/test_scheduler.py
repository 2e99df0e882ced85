"""The embedded scheduler: the starter on its period (EventBridge stand-in), the generator when on."""
from __future__ import annotations

import time
from typing import Any

import pytest

from autotraining.aws import Aws
from autotraining.schema import load_schema
from autotraining.settings import Settings
from autotraining_tools.local.scheduler import Scheduler


class Invocations:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], float]] = []

    def __call__(self, aws: Aws, function_name: str, event: dict[str, Any]) -> None:
        self.calls.append((function_name, event, time.monotonic()))


def test_starter_is_invoked_every_period_with_a_scheduled_event() -> None:
    aws = Aws(Settings(starter_function="stack-starter", region="eu-west-1"))
    invoke = Invocations()
    started = time.monotonic()
    scheduler = Scheduler(aws, schedule_seconds=0.3, invoke=invoke).start()
    time.sleep(1.05)
    scheduler.stop()
    assert 3 <= len(invoke.calls) <= 4
    assert invoke.calls[0][2] - started >= 0.29  # the first call comes after one period, like a rate() rule
    name, event, _ = invoke.calls[0]
    assert name == "stack-starter"
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["region"] == "eu-west-1" and event["resources"][0].startswith("arn:aws:events:eu-west-1:")


def test_stop_returns_promptly_between_long_periods() -> None:
    scheduler = Scheduler(Aws(Settings()), schedule_seconds=3600, invoke=Invocations()).start()
    t0 = time.monotonic()
    scheduler.stop()
    assert time.monotonic() - t0 < 1.0


def test_generator_tick_stores_a_batch_through_the_generator_handler(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = aws.settings.replace(generator_batch=7)
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)  # the handler builds its Settings from the environment, as in Lambda
    scheduler = Scheduler(Aws(settings), schedule_seconds=3600, generate=True, invoke=Invocations())
    scheduler.fire_generator()
    scheduler.fire_generator()
    items = aws.dynamodb.scan(TableName=settings.records_table)["Items"]
    assert len(items) == 14  # two ticks, two distinct event ids, no id collides
    assert all(item["id"]["S"].startswith("gen-") for item in items)
    assert {item["label"]["S"] for item in items} <= set(load_schema().labels)
    assert scheduler.generator_calls == 2
