"""One training round, from a batch of gathered queue messages to a committed ``ModelVersion``.

``run_round`` is the whole round in order: skip segments already consumed → read and dedupe
records (``worker.drain``) → load the latest committed state and model → test-then-train →
gate (``worker.trainer``) → export, stage, commit, promote (``worker.publish``) → delete the
round's messages. Nothing before the commit changes what other rounds see, so a crash or a
lost race anywhere before it just replays the round; a crash after it is repaired by skipping
consumed segments (their redelivered messages are deleted) and ``ensure_promoted``.

On ``CommitConflict`` the round is discarded (its staged files deleted, no message deleted)
and re-run from the new latest with the same messages, which stay invisible meanwhile: handing
them back and receiving them again would count towards the DLQ's ``maxReceiveCount`` and could
push a healthy segment to the dead-letter queue. After ``MAX_CONFLICTS`` the messages are
handed back (visibility 0).
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autotraining.artifacts import METADATA_JSON, model_key
from autotraining.aws import Aws
from autotraining.logs import get_logger
from autotraining.registry import (
    STATUS_PUBLISHED,
    STATUS_REJECTED,
    CommitConflict,
    Latest,
    ModelVersion,
    Registry,
    round_number,
    version_name,
)
from autotraining.schema import Schema
from worker import publish, trainer
from worker.drain import Delivery, PendingQueue, RecordBatch, by_key, read_records, segment_starts
from worker.state import TrainingState, expire_states, state_key

log = get_logger("worker.round")

MAX_CONFLICTS = 5
CHECK_ROWS = 64  # rows on which the exported model must match the Keras model


@dataclass(frozen=True)
class RoundOutcome:
    """What happened to one gathered batch of messages."""

    committed: ModelVersion | None  # None: nothing committed (nothing new, all poison, or gave up)
    deleted: int  # messages deleted
    released: int  # messages handed back (poison or given up)
    conflicts: int = 0
    skipped_segments: tuple[str, ...] = ()  # consumed by an earlier committed round
    poison: tuple[str, ...] = ()


@dataclass
class RoundContext:
    """What a round needs: AWS, the queue, the schema and the knobs. Hooks let tests inject faults."""

    aws: Aws
    queue: PendingQueue
    schema: Schema
    config: trainer.TrainConfig = field(default_factory=trainer.TrainConfig)
    reservoir_seed: int = 0
    # Called with a step name ("before_commit", "after_commit") — fault injection in tests.
    hook: Callable[[str], None] = lambda step: None

    @property
    def registry(self) -> Registry:
        return Registry.for_settings(self.aws.dynamodb, self.aws.settings)


def load_state(ctx: RoundContext, latest: Latest | None) -> TrainingState:
    empty = TrainingState.empty(len(ctx.schema.features), ctx.aws.settings.reservoir_size, ctx.reservoir_seed)
    if latest is None:
        return empty
    committed = ctx.registry.get(latest.round_version)
    if committed is None or not committed.state_key:
        return empty
    body = ctx.aws.s3.get_object(Bucket=ctx.aws.settings.bucket, Key=committed.state_key)["Body"].read()
    return TrainingState.from_bytes(body)


def load_model(ctx: RoundContext, latest: Latest | None) -> Any | None:
    if latest is None or not latest.model_version:
        return None
    s3, bucket = ctx.aws.s3, ctx.aws.settings.bucket
    publish.ensure_promoted(s3, bucket, ctx.registry)
    body = s3.get_object(Bucket=bucket, Key=model_key(latest.model_version, "model.h5"))["Body"].read()
    return trainer.from_h5_bytes(body)


def run_round(ctx: RoundContext, deliveries: list[Delivery]) -> RoundOutcome:
    """Consume the gathered messages in one committed round (or none when nothing is new)."""
    groups = by_key(deliveries)
    batch: RecordBatch | None = None
    poison: tuple[str, ...] = ()
    conflicts = 0
    deleted = 0
    skipped: list[str] = []
    while True:
        consumed = ctx.registry.consumed(list(groups))
        if consumed:
            done = [d for k in consumed for d in groups.pop(k)]
            ctx.queue.delete(done)
            deleted += len(done)
            skipped.extend(consumed)
            log.info("round.skipped_consumed", segments=sorted(consumed))
        if batch is None:
            batch = read_records(ctx.aws.s3, ctx.aws.settings.bucket, sorted(groups), ctx.schema)
            poison = batch.poison
            bad = [d for k in batch.poison for d in groups.pop(k)]
            ctx.queue.release(bad)
        else:
            keep = [i for i, k in enumerate(batch.segments) if k in groups]
            batch = read_records(ctx.aws.s3, ctx.aws.settings.bucket, [batch.segments[i] for i in keep], ctx.schema)
        if not groups:
            return RoundOutcome(None, deleted, sum(1 for d in deliveries if d.ref.key in poison), conflicts,
                                tuple(skipped), poison)
        try:
            committed = _train_and_commit(ctx, batch, groups)
        except CommitConflict as exc:
            conflicts += 1
            log.warning("round.conflict", attempt=conflicts, error=str(exc))
            if conflicts >= MAX_CONFLICTS:
                rest = [d for ds in groups.values() for d in ds]
                ctx.queue.release(rest)
                return RoundOutcome(None, deleted, len(rest), conflicts, tuple(skipped), poison)
            continue
        if committed is not None:
            ctx.hook("after_commit")
        done = [d for ds in groups.values() for d in ds]
        ctx.queue.delete(done)
        return RoundOutcome(committed, deleted + len(done), len(deliveries) - deleted - len(done), conflicts,
                            tuple(skipped), poison)


def _train_and_commit(ctx: RoundContext, batch: RecordBatch, groups: dict[str, list[Delivery]]) -> ModelVersion | None:
    t0 = time.perf_counter()
    s3, bucket, schema = ctx.aws.s3, ctx.aws.settings.bucket, ctx.schema
    registry = ctx.registry
    latest = registry.latest()
    state = load_state(ctx, latest)
    new = batch.only(state.unseen(batch.origins))
    if new.size == 0:
        # Every record lies in a consumed interval already (logged again in an overlapping
        # segment): nothing to count or learn, and deleting the messages loses nothing.
        log.info("round.nothing_new", segments=sorted(groups))
        return None
    current = load_model(ctx, latest)
    t_read = time.perf_counter() - t0

    # Test-then-train: the current model on the new records, before it learns from them.
    prequential = trainer.score(current, new.x, new.y, schema.labels)
    sample = state.reservoir.sample()
    all_x = np.concatenate([new.x, sample.x])
    all_y = np.concatenate([new.y, sample.y])
    held = trainer.is_holdout(np.concatenate([new.ids, sample.ids]))
    t1 = time.perf_counter()
    candidate = trainer.train(current, all_x[~held], all_y[~held], len(schema.labels), ctx.config)
    t_train = time.perf_counter() - t1
    cand_scores = trainer.score(candidate, all_x[held], all_y[held], schema.labels)
    cur_scores = trainer.score(current, all_x[held], all_y[held], schema.labels)
    decision = trainer.gate(cand_scores, cur_scores, ctx.aws.settings.gate_tolerance, first=current is None)

    next_state = state.advanced(new.x, new.y, new.ids, schema.labels, ranges=batch.ranges)
    next_state = next_state.with_gaps_closed(segment_starts(s3, bucket, next_state.gaps()))
    parent = latest.round_version if latest else ""
    version = version_name(round_number(parent) + 1 if parent else 1)
    attempt = publish.new_attempt()
    status = STATUS_PUBLISHED if decision.publish else STATUS_REJECTED
    model_version = version if decision.publish else (latest.model_version if latest else "")
    metrics: dict[str, Any] = {
        "prequential": prequential.to_dict(), "holdout": cand_scores.to_dict(), "parent_holdout": cur_scores.to_dict(),
        "train_rows": int((~held).sum()), "holdout_rows": int(held.sum()), "reservoir_rows": len(state.reservoir),
        "label_counts": next_state.label_counts, "poison_segments": list(batch.poison),
        "timings": {"read_s": round(t_read, 3), "train_s": round(t_train, 3)},
        "attempt": attempt,
    }
    files: dict[str, bytes] = {}
    t2 = time.perf_counter()
    if decision.publish:
        try:
            files = publish.files_for(candidate, trainer.fold(candidate), all_x[:CHECK_ROWS])
        except publish.ExportMismatch as exc:
            # Refuse to publish a model clients would not reproduce; the round's records are
            # still consumed (rejected-round policy), so nothing is lost.
            log.error("round.export_mismatch", version=version, error=str(exc))
            decision = trainer.GateDecision(False, f"export mismatch: {exc}")
            status, model_version = STATUS_REJECTED, (latest.model_version if latest else "")
    if decision.publish:
        metrics["staging"] = publish.staging_prefix(version, attempt)
        metrics["files"] = sorted([*files, METADATA_JSON])
    round_ = ModelVersion(
        version=version, parent=parent, created=int(time.time() * 1000), status=status, model_version=model_version,
        records_seen=next_state.records_seen, new_records=new.size, prequential_accuracy=prequential.accuracy,
        holdout_accuracy=cand_scores.accuracy, parent_holdout_accuracy=cur_scores.accuracy, gate=decision.reason,
        duration_s=0.0, segments=tuple(sorted(groups)), state_key=state_key(version, attempt), metrics=metrics)
    if decision.publish:
        files[METADATA_JSON] = publish.metadata(round_, schema.to_dict(), schema.labels, schema.feature_names)
    staged = publish.stage(s3, bucket, version, attempt, files, next_state.to_bytes(), round_.state_key)
    metrics["timings"]["publish_s"] = round(time.perf_counter() - t2, 3)
    round_ = _with_duration(round_, time.perf_counter() - t0)
    ctx.hook("before_commit")
    try:
        publish.commit_and_promote(s3, bucket, registry, parent or None, round_, staged)
    except CommitConflict:
        publish.discard(s3, bucket, staged)
        raise
    expire_states(s3, bucket, round_.state_key)
    log.info("round.committed", version=version, status=status, n_new=new.size, records_seen=round_.records_seen,
             prequential=prequential.accuracy, holdout=cand_scores.accuracy, parent_holdout=cur_scores.accuracy,
             gate=decision.reason, duration_s=round_.duration_s)
    return round_


def _with_duration(round_: ModelVersion, seconds: float) -> ModelVersion:
    return dataclasses.replace(round_, duration_s=round(seconds, 3))

