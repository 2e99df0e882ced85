"""The embedded scheduler: the starter on its period (EventBridge stand-in), the generator when on."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from autotraining.aws import Aws
from autotraining.local.gateway import Gateway
from autotraining.local.scheduler import Scheduler, post_generated
from autotraining.schema import load_schema
from autotraining.settings import Settings


class Invocations:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], float]] = []

    def __call__(self, aws: Aws, function_name: str, event: dict[str, Any]) -> None:
        self.calls.append((function_name, event, time.monotonic()))


def test_starter_is_invoked_every_period_with_a_scheduled_event() -> None:
    aws = Aws(Settings(starter_function="stack-starter", region="eu-west-1"))
    invoke = Invocations()
    started = time.monotonic()
    scheduler = Scheduler(aws, "http://unused", schedule_seconds=0.3, invoke=invoke).start()
    time.sleep(1.05)
    scheduler.stop()
    assert 3 <= len(invoke.calls) <= 4
    assert invoke.calls[0][2] - started >= 0.29  # the first call comes after one period, like a rate() rule
    name, event, _ = invoke.calls[0]
    assert name == "stack-starter"
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["region"] == "eu-west-1" and event["resources"][0].startswith("arn:aws:events:eu-west-1:")


def test_stop_returns_promptly_between_long_periods() -> None:
    scheduler = Scheduler(Aws(Settings()), "http://unused", schedule_seconds=3600, invoke=Invocations()).start()
    t0 = time.monotonic()
    scheduler.stop()
    assert time.monotonic() - t0 < 1.0


@pytest.fixture
def posted() -> Iterator[tuple[Gateway, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    def upload(event: dict[str, Any], context: Any) -> dict[str, Any]:
        rows = json.loads(event["body"])
        seen.append(event)
        return {"statusCode": 201, "body": json.dumps({"accepted": len(rows), "ids": [r["id"] for r in rows]})}

    def resolve(module: str) -> Any:
        if module != "upload":
            raise LookupError(module)
        return upload

    gw = Gateway("127.0.0.1", 0, resolver=resolve).start()
    yield gw, seen
    gw.stop()


def test_fallback_generator_posts_valid_seeded_records(posted: tuple[Gateway, list[dict[str, Any]]]) -> None:
    gw, seen = posted
    assert post_generated(gw.url, 7, seed=3, id_prefix="t-") == 7
    rows = json.loads(seen[0]["body"])
    schema = load_schema()
    assert [r["id"] for r in rows] == [f"t-{i:08d}" for i in range(7)]
    assert all(set(r) == {"id", *schema.feature_names, "label", "created"} for r in rows)
    assert post_generated(gw.url, 7, seed=3, id_prefix="t-") == 7
    assert json.loads(seen[1]["body"]) == rows  # same seed, same records
