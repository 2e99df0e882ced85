"""The worker's main loop: drain the queue round by round, then stop the own instance when idle.

``Worker.run`` repairs an interrupted promote first (``publish.ensure_promoted``), then loops:
gather up to ``max_segments`` segment messages (long poll), run a round over them
(``worker.round.run_round``), and when nothing arrives and the queue is empty for
``idle_grace`` seconds, stop the own instance (``worker.selfstop``) and return 0. With
``once`` it returns as soon as nothing is left to receive (messages other workers hold invisible
are theirs), without stopping anything.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from autotraining.aws import Aws
from autotraining.logs import get_logger
from autotraining.registry import MAX_SEGMENTS_PER_ROUND, Registry
from autotraining.schema import load_schema
from worker import publish, trainer
from worker.drain import PendingQueue
from worker.round import RoundContext, RoundOutcome, run_round
from worker.selfstop import IdleClock, own_instance_id, stop_instance

log = get_logger("worker.loop")


@dataclass(frozen=True)
class WorkerOptions:
    idle_grace: float = 60.0
    max_segments: int = 50
    poll_seconds: float = 5.0
    once: bool = False
    stop_instance: bool = True
    visibility_seconds: int = 120
    config: trainer.TrainConfig = field(default_factory=trainer.TrainConfig)

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
                with self.queue.keep_invisible(deliveries):
                    self.rounds.append(run_round(self.ctx, deliveries))
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
