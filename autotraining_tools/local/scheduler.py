"""The embedded run's scheduler: the stand-in for the stack's EventBridge schedules.

moto stores EventBridge rules but never fires them, so this thread does: every
``schedule_seconds`` it invokes the starter asynchronously (through ``invoke.invoke_async``,
exactly as the stack's rule targets it) with a ``Scheduled Event``; when ``generate`` is on,
every ``generate_every`` seconds it invokes the synthetic-data generator
(``handlers.generator.handler``, in-process like the gateway's handlers) with its own
``Scheduled Event``.
"""
from __future__ import annotations

import importlib
import time
import uuid
from collections.abc import Callable
from typing import Any

from autotraining.aws import Aws
from autotraining.invoke import invoke_async
from autotraining.logs import get_logger
from autotraining_tools.local.background import BackgroundLoop

log = get_logger(__name__)


def scheduled_event(rule: str, region: str) -> dict[str, Any]:
    """An EventBridge ``Scheduled Event`` as a Lambda target receives it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [f"arn:aws:events:{region}:123456789012:rule/{rule}"],
        "detail": {},
    }


class Scheduler(BackgroundLoop):
    """Fires the starter (and optionally the generator) on fixed periods in a thread."""

    def __init__(self, aws: Aws, schedule_seconds: float = 60.0, generate: bool = False,
                 generate_every: float = 10.0, invoke: Callable[[Aws, str, dict[str, Any]], None] = invoke_async,
                 ) -> None:
        super().__init__(name="scheduler", stop_timeout=35.0)
        self.aws = aws
        self.schedule_seconds = schedule_seconds
        self.generate = generate
        self.generate_every = generate_every
        self.invoke = invoke
        self.starter_calls = 0
        self.generator_calls = 0

    def _run(self) -> None:
        now = time.monotonic()
        next_start = now + self.schedule_seconds
        next_generate = now + (1.0 if self.generate else float("inf"))
        log.info("scheduler.started", schedule_seconds=self.schedule_seconds, generate=self.generate)
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_start:
                next_start = now + self.schedule_seconds
                self.fire_starter()
            if now >= next_generate:
                next_generate = now + self.generate_every
                self.fire_generator()
            self._stop.wait(max(0.05, min(next_start, next_generate) - time.monotonic()))

    def fire_starter(self) -> None:
        settings = self.aws.settings
        try:
            self.invoke(self.aws, settings.starter_function, scheduled_event("autotraining-start-schedule", settings.region))
            self.starter_calls += 1
        except Exception as exc:
            log.warning("scheduler.starter_failed", error=repr(exc))

    def fire_generator(self) -> None:
        settings = self.aws.settings
        tick = self.generator_calls
        self.generator_calls += 1
        try:
            from autotraining_tools.local.context import LambdaContext

            generator = importlib.import_module("handlers.generator")
            result = generator.handler(scheduled_event("autotraining-generate-schedule", settings.region),
                                       LambdaContext("autotraining-generator"))
            log.info("scheduler.generated", tick=tick, accepted=result.get("accepted"))
        except Exception as exc:
            log.warning("scheduler.generator_failed", error=repr(exc))
