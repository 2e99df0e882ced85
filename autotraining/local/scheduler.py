"""The embedded run's scheduler: the stand-in for the stack's EventBridge schedules.

moto stores EventBridge rules but never fires them, so this thread does: every
``schedule_seconds`` it invokes the starter asynchronously (through ``invoke.invoke_async``,
exactly as the stack's rule targets it) with a ``Scheduled Event``; when ``generate`` is on,
every ``generate_every`` seconds it runs the synthetic-data generator. The generator is
``handlers.generator.handler`` when that module exists; until it does, ``post_generated``
posts seeded records from ``autotraining.generator`` to the gateway's ``/records`` itself.
"""
from __future__ import annotations

import importlib
import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from autotraining.aws import Aws
from autotraining.generator import generate
from autotraining.invoke import invoke_async
from autotraining.local.background import BackgroundLoop
from autotraining.local.context import LambdaContext
from autotraining.logs import get_logger
from autotraining.schema import load_schema

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


def post_generated(api_url: str, n: int, seed: int, id_prefix: str, schema_file: str = "",
                   timeout: float = 30.0) -> int:
    """Post ``n`` seeded synthetic records to ``api_url``/records; the number accepted.

    The fallback used while ``handlers.generator`` does not exist.
    """
    schema = load_schema(schema_file)
    records = [r.to_log_dict(schema) for r in generate(schema, n, seed=seed, id_prefix=id_prefix)]
    req = urllib.request.Request(f"{api_url.rstrip('/')}/records", data=json.dumps(records).encode("utf-8"),
                                 headers={"content-type": "application/json"}, method="POST")
    # urlopen on the embedded gateway URL (http://127.0.0.1), never a user-chosen scheme
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # nosec B310
        return int(json.loads(resp.read()).get("accepted", 0))


class Scheduler(BackgroundLoop):
    """Fires the starter (and optionally the generator) on fixed periods in a thread."""

    def __init__(self, aws: Aws, api_url: str, schedule_seconds: float = 60.0, generate: bool = False,
                 generate_every: float = 10.0, invoke: Callable[[Aws, str, dict[str, Any]], None] = invoke_async,
                 ) -> None:
        super().__init__(name="scheduler", stop_timeout=35.0)
        self.aws = aws
        self.api_url = api_url
        self.schedule_seconds = schedule_seconds
        self.generate = generate
        self.generate_every = generate_every
        self.invoke = invoke
        self._run_token = uuid.uuid4().hex[:8]  # keeps generated ids unique across runs
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
            try:
                module = importlib.import_module("handlers.generator")
            except ModuleNotFoundError as exc:
                if exc.name not in ("handlers.generator", "handlers"):
                    raise
                module = None
            if module is not None:
                module.handler(scheduled_event("autotraining-generate-schedule", settings.region),
                               LambdaContext("autotraining-generator"))
                log.info("scheduler.generated", via="handlers.generator")
            else:
                accepted = post_generated(self.api_url, settings.generator_batch, seed=int(self._run_token, 16) + tick,
                                          id_prefix=f"gen-{self._run_token}-{tick}-", schema_file=settings.schema_file)
                log.info("scheduler.generated", via="gateway", accepted=accepted)
        except Exception as exc:
            log.warning("scheduler.generator_failed", error=repr(exc))
