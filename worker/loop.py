"""The worker's main loop: drain the queue round by round, then stop the own instance when idle.

``Worker.run`` repairs an interrupted promote first (``publish.ensure_promoted``), then loops:
gather up to ``max_segments`` segment messages (long poll), run a round over them
(``worker.round.run_round``), and when nothing arrives and the queue is empty for
``idle_grace`` seconds, stop the own instance (``worker.selfstop``) and return 0. With
``once`` it returns as soon as nothing is left to receive (messages other workers hold invisible
are theirs), without stopping anything.

A round that fails for a reason that is not its segments' (segment faults are sorted out inside
the round: an unreadable segment is released towards the dead-letter queue) is an AWS fault
(AccessDenied, S3 5xx past the client's retries) or a corrupt committed state. It is retried in
place with the same receipt handles (no receive is counted) with backoff, ``FaultPolicy``; past
the bound its messages are *parked*: re-queued fresh and delayed (``PendingQueue.park``), so the
fault never pushes healthy segments to the dead-letter queue, the worker goes idle and stops
its instance, and the schedule retries later. Each failed attempt logs one ``worker.round_failed``
error (the WorkerErrors alarm counts them).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tenacity import RetryError

from autotraining.aws import Aws, Backoff
from autotraining.logs import get_logger
from autotraining.registry import MAX_SEGMENTS_PER_ROUND, Registry
from autotraining.schema import load_schema
from worker import publish, trainer
from worker.drain import Delivery, PendingQueue
from worker.round import RoundContext, RoundOutcome, run_round
from worker.selfstop import IdleClock, own_instance_id, stop_instance

log = get_logger("worker.loop")


@dataclass(frozen=True)
class FaultPolicy(Backoff):
    """How a round that fails for a non-segment reason is retried in place, then parked for ``park_seconds``."""

    attempts: int = 3
    initial: float = 2.0
    maximum: float = 30.0
    park_seconds: int = 300  # SQS allows up to 900


@dataclass(frozen=True)
class WorkerOptions:
    idle_grace: float = 60.0
    max_segments: int = 50
    poll_seconds: float = 5.0
    once: bool = False
    stop_instance: bool = True
    visibility_seconds: int = 120
    config: trainer.TrainConfig = field(default_factory=trainer.TrainConfig)
    faults: FaultPolicy = field(default_factory=FaultPolicy)

    def __post_init__(self) -> None:
        if not 1 <= self.max_segments <= MAX_SEGMENTS_PER_ROUND:
            raise ValueError(f"max segments per round must be 1..{MAX_SEGMENTS_PER_ROUND}")


class Worker:
    def __init__(self, aws: Aws, options: WorkerOptions, hook: Callable[[str], None] = lambda step: None) -> None:
        s = aws.settings
        self.aws = aws
        self.options = options
        self.queue = PendingQueue(aws.sqs, s.queue_url, options.visibility_seconds)
        self.ctx = RoundContext(aws=aws, queue=self.queue, schema=load_schema(s.schema_file), config=options.config,
                                hook=hook)
        self.rounds: list[RoundOutcome] = []
        self.parked = 0  # rounds parked after non-segment faults

    def run(self) -> int:
        s = self.aws.settings
        publish.ensure_promoted(self.aws.s3, s.bucket, Registry(self.aws.dynamodb, s.models_table))
        idle = IdleClock(self.options.idle_grace)
        log.info("worker.started", queue=s.queue_url, idle_grace=self.options.idle_grace,
                 max_segments=self.options.max_segments)
        while True:
            deliveries = self.queue.gather(self.options.max_segments, self.options.poll_seconds)
            if deliveries:
                idle.busy()
                outcome = self._round(deliveries)
                if outcome is not None:
                    self.rounds.append(outcome)
                continue
            waiting, in_flight = self.queue.counts()
            if self.options.once and waiting == 0:
                # Messages in flight belong to another worker (or a dead one, until their timeout).
                log.info("worker.drained", rounds=len(self.rounds), in_flight=in_flight)
                return 0
            if waiting + in_flight:
                idle.busy()  # another worker's round, a poison message on its way to the DLQ
            elif idle.expired():
                log.info("worker.idle", seconds=round(idle.idle_for(), 1), rounds=len(self.rounds))
                if self.options.stop_instance:
                    stop_instance(self.aws.ec2, own_instance_id(s.instance_id))
                return 0
            if self.options.poll_seconds < 1:
                time.sleep(0.1)  # no long poll to wait in: do not spin on the queue

    def _round(self, deliveries: list[Delivery]) -> RoundOutcome | None:
        """``run_round``, riding out faults that are not the segments' (see the module docstring)."""
        faults = self.options.faults
        with self.queue.keep_invisible(deliveries):
            try:
                for attempt in faults.retrying(Exception):
                    with attempt:
                        try:
                            return run_round(self.ctx, deliveries)
                        except Exception as exc:
                            log.error("worker.round_failed", attempt=attempt.retry_state.attempt_number,
                                      of=faults.attempts, segments=len(deliveries),
                                      error=f"{type(exc).__name__}: {exc}"[:1000], exc_info=True)
                            raise
            except RetryError:
                pass
        self.queue.park(deliveries, faults.park_seconds)
        self.parked += 1
        log.error("worker.round_parked", segments=sorted({d.ref.key for d in deliveries}),
                  retry_in=faults.park_seconds)
        return None
