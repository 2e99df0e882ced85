"""One training round, from a batch of gathered queue messages to a committed ``ModelVersion``.

``run_round`` is the whole round in order: skip segments already consumed → read and dedupe
records (``worker.drain``) → load the latest committed state and model → test-then-train →
plan (``worker.plan.plan_round``, pure: drift, replay, gate rows, scaling, next state) → train
and gate (``worker.trainer``) → export, stage, commit, promote (``worker.publish``) → delete the
round's messages. ``_train_and_commit`` holds the effects around the one planning call. Nothing before the commit changes what other rounds see, so a crash or a
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
import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from autotraining.artifacts import (
    HASHES_METRIC,
    KERAS_FILE,
    METADATA_JSON,
    CorruptArtifact,
    check_file,
    file_hashes,
    model_key,
)
from autotraining.aws import Aws
from autotraining.encoding import Encoding
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
from worker import lineage, publish, trainer
from worker.drain import Delivery, PendingQueue, RecordBatch, by_key, read_records, segment_starts
from worker.plan import RoundPlan, plan_round
from worker.state import TrainingState, expire_states, state_key

log = get_logger("worker.round")

MAX_CONFLICTS = 5
MAX_WARM_START_FALLBACK = 3  # corrupt published versions passed over before training from scratch


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


def empty_state(ctx: RoundContext) -> TrainingState:
    """The state a stack's first round (or a fresh lineage) starts from."""
    s = ctx.aws.settings
    return TrainingState.empty(Encoding.from_schema(ctx.schema).width, s.reservoir_size, ctx.reservoir_seed,
                               recent_share=s.replay_recent_share, n_labels=len(ctx.schema.labels))


def load_state(ctx: RoundContext, latest: Latest | None) -> TrainingState:
    s = ctx.aws.settings
    committed = ctx.registry.get(latest.round_version) if latest is not None else None
    if committed is None or not committed.state_key:  # the first round of a stack
        return empty_state(ctx)
    body = ctx.aws.s3.get_object(Bucket=ctx.aws.settings.bucket, Key=committed.state_key)["Body"].read()
    state = TrainingState.from_bytes(body)
    r = state.reservoir
    if (r.recent_share, r.n_labels) != (s.replay_recent_share, len(ctx.schema.labels)):
        # A changed setting, or a state written before the recent window: the replay follows the settings.
        state = dataclasses.replace(state, reservoir=r.reconfigured(s.replay_recent_share, len(ctx.schema.labels)))
    return state


@dataclass(frozen=True)
class WarmStart:
    """The model a round starts from, which published version it came from, and the newer
    published versions passed over because their committed ``model.h5`` was corrupt."""

    model: Any | None
    version: str  # "" when the round trains from scratch
    skipped: tuple[tuple[str, str], ...] = ()  # (version, why)
    holdout: dict[str, Any] | None = None  # the gate's held-out scores its round recorded (drift's reference)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "skipped": [{"version": v, "error": e} for v, e in self.skipped]}


def _intact_model(ctx: RoundContext, round_: ModelVersion) -> Any:
    """The Keras model of a published round, its bytes checked against the committed sha256.
    S3 faults (ClientError, BotoCoreError) propagate: they are the loop's to back off from."""
    s3, bucket = ctx.aws.s3, ctx.aws.settings.bucket
    body = s3.get_object(Bucket=bucket, Key=model_key(round_.version, KERAS_FILE))["Body"].read()
    check_file(round_.version, KERAS_FILE, body, round_.metrics.get(HASHES_METRIC))
    try:
        return trainer.from_h5_bytes(body)
    except Exception as exc:  # noqa: BLE001 - h5py/Keras raise many types for bytes that are not a model
        raise CorruptArtifact(f"{model_key(round_.version, KERAS_FILE)} does not load: "
                              f"{type(exc).__name__}: {exc}"[:300]) from None


def _published_newest_first(registry: Registry, serving: str) -> Iterator[ModelVersion]:
    """The serving round, then older published rounds (the history is read only if needed)."""
    round_ = registry.get(serving)
    if round_ is not None:
        yield round_
    yield from (r for r in registry.history(limit=MAX_WARM_START_FALLBACK * 4, before=serving) if r.published)


def load_model(ctx: RoundContext, latest: Latest | None) -> WarmStart:
    """Warm start from the serving model; when its committed file is corrupt (another sha256, or
    not loadable), from the newest intact published version before it (at most
    ``MAX_WARM_START_FALLBACK`` back), else from scratch. Each corrupt version is one logged error
    and is recorded in the round's metrics; the round itself goes on (its segments are healthy)."""
    if latest is None or not latest.model_version:
        return WarmStart(None, "")
    publish.ensure_promoted(ctx.aws.s3, ctx.aws.settings.bucket, ctx.registry)
    skipped: list[tuple[str, str]] = []
    for round_ in _published_newest_first(ctx.registry, latest.model_version):
        if len(skipped) >= MAX_WARM_START_FALLBACK:
            break
        try:
            return WarmStart(_intact_model(ctx, round_), round_.version, tuple(skipped), round_.metrics.get("holdout"))
        except CorruptArtifact as exc:
            log.error("round.model_corrupt", version=round_.version, serving=latest.model_version, error=str(exc))
            skipped.append((round_.version, str(exc)))
    log.error("round.warm_start_unavailable", serving=latest.model_version, skipped=[v for v, _ in skipped])
    return WarmStart(None, "", tuple(skipped))


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
    """The round's effects around one pure ``plan_round``: load, train, gate, export, stage, commit, promote."""
    t0 = time.perf_counter()
    s3, bucket, schema, settings = ctx.aws.s3, ctx.aws.settings.bucket, ctx.schema, ctx.aws.settings
    latest = ctx.registry.latest()
    state = load_state(ctx, latest)
    new = batch.only(state.unseen(batch.origins))
    if new.size == 0:
        # Every record lies in a consumed interval already (logged again in an overlapping
        # segment): nothing to count or learn, and deleting the messages loses nothing.
        log.info("round.nothing_new", segments=sorted(groups))
        return None
    warm = load_model(ctx, latest)
    current = warm.model
    encoding = Encoding.from_schema(schema)  # after a schema change: migrate, widen or start a fresh lineage
    # the lineage check reads the encoding of the version the model really came from
    model_latest = dataclasses.replace(latest, model_version=warm.version) if latest and warm.skipped else latest
    state, current = lineage.adapt(ctx.registry, model_latest, state, current, encoding, len(schema.labels),
                                   functools.partial(empty_state, ctx))
    # Test-then-train: the current model on the new records, before it learns from them.
    prequential = trainer.score(current, new.x, new.y, schema.labels)
    plan = plan_round(state, new, trainer.correct(current, new.x, new.y), schema.labels, settings,
                      trainer.standardization(current) if current is not None else None, warm.holdout)
    t1 = time.perf_counter()
    judged = _judge(current, plan, schema.labels, ctx)
    # Close the consumed-interval gaps no segment can still fill (a listing of the in-flight log only).
    next_state = plan.next_state.with_gaps_closed(segment_starts(s3, bucket, plan.next_state.gaps()))
    parent = latest.round_version if latest else ""
    version, attempt = version_name(round_number(parent) + 1 if parent else 1), publish.new_attempt()
    t2 = time.perf_counter()
    files, decision = _export(judged, plan, version)
    metrics: dict[str, Any] = {
        **plan.metrics, "prequential": prequential.to_dict(), "holdout": judged.candidate.to_dict(),
        "parent_holdout": judged.current.to_dict(), "effort": judged.effort.to_dict(),
        "label_counts": next_state.label_counts, "poison_segments": list(batch.poison), "attempt": attempt,
        "schema": schema.tag, "encoding": encoding.to_dict(),
        "timings": {"read_s": round(t1 - t0, 3), "train_s": round(t2 - t1, 3)},
        **({"warm_start": warm.to_dict()} if warm.skipped else {}),
        **({"staging": publish.staging_prefix(version, attempt), "files": sorted([*files, METADATA_JSON]),
            HASHES_METRIC: file_hashes(files)} if decision.publish else {})}
    round_ = ModelVersion(
        version=version, parent=parent, created=int(time.time() * 1000),
        status=STATUS_PUBLISHED if decision.publish else STATUS_REJECTED,
        model_version=version if decision.publish else (latest.model_version if latest else ""),
        records_seen=next_state.records_seen, new_records=new.size, prequential_accuracy=prequential.accuracy,
        holdout_accuracy=judged.candidate.accuracy, parent_holdout_accuracy=judged.current.accuracy,
        gate=decision.reason, duration_s=0.0, segments=tuple(sorted(groups)), state_key=state_key(version, attempt),
        metrics=metrics)
    if decision.publish:
        files[METADATA_JSON] = publish.metadata(round_, schema, encoding)
    staged = publish.stage(s3, bucket, version, attempt, files, next_state.to_bytes(), round_.state_key)
    metrics["timings"]["publish_s"] = round(time.perf_counter() - t2, 3)
    round_ = _with_duration(round_, time.perf_counter() - t0)
    ctx.hook("before_commit")
    try:
        publish.commit_and_promote(s3, bucket, ctx.registry, parent or None, round_, staged)
    except CommitConflict:
        publish.discard(s3, bucket, staged)
        raise
    expire_states(s3, bucket, round_.state_key)
    if plan.drift.detected:  # the template's DriftMetricFilter counts this event (DriftAlarm)
        log.warning("round.drift", version=version, signals=list(plan.drift.signals), change_at=plan.drift.change_at,
                    prequential=prequential.accuracy, status=round_.status)
    log.info("round.committed", version=version, status=round_.status, n_new=new.size,
             records_seen=round_.records_seen, prequential=prequential.accuracy, holdout=judged.candidate.accuracy,
             parent_holdout=judged.current.accuracy, gate=decision.reason, drift=plan.drift.detected,
             duration_s=round_.duration_s)
    return round_


@dataclass(frozen=True)
class Judgement:
    """The trained candidate, its and the current model's scores on the gate's rows, the decision."""

    model: Any
    candidate: trainer.Scores
    current: trainer.Scores
    effort: trainer.Effort
    decision: trainer.GateDecision


def _judge(current: Any | None, plan: RoundPlan, labels: tuple[str, ...], ctx: RoundContext) -> Judgement:
    """Train the starts the effort rule names, keep the best on the gate's rows, and gate it."""
    settings = ctx.aws.settings
    effort = trainer.plan_effort(len(plan.train_y), plan.drift.detected, current is not None, ctx.config)
    base = current
    if current is not None and plan.rescale is not None:
        base = trainer.restandardize(current, *plan.rescale)
    best: tuple[Any, trainer.Scores, str] | None = None
    for start in effort.starts:
        model = trainer.train(base if start == "warm" else None, plan.train_x, plan.train_y, len(labels), ctx.config,
                              effort)
        scores = trainer.score(model, plan.holdout_x, plan.holdout_y, labels, plan.holdout_w)
        if best is None or (scores.accuracy or 0.0) > (best[1].accuracy or 0.0):
            best = (model, scores, start)
    assert best is not None
    effort = dataclasses.replace(effort, chosen=best[2])
    cur_scores = trainer.score(current, plan.holdout_x, plan.holdout_y, labels, plan.holdout_w)
    decision = trainer.gate(best[1], cur_scores, settings.gate_tolerance, first=current is None,
                            min_kappa=settings.gate_min_kappa if plan.drift.detected else None)
    return Judgement(best[0], best[1], cur_scores, effort, decision)


def _export(judged: Judgement, plan: RoundPlan, version: str) -> tuple[dict[str, bytes], trainer.GateDecision]:
    """The files to publish (none for a rejected candidate) and the final decision."""
    if not judged.decision.publish:
        return {}, judged.decision
    try:
        return publish.files_for(judged.model, trainer.fold(judged.model), plan.check_x), judged.decision
    except publish.ExportMismatch as exc:
        # Refuse to publish a model clients would not reproduce; the round's records are
        # still consumed (rejected-round policy), so nothing is lost.
        log.error("round.export_mismatch", version=version, error=str(exc))
        return {}, trainer.GateDecision(False, f"export mismatch: {exc}")


def _with_duration(round_: ModelVersion, seconds: float) -> ModelVersion:
    return dataclasses.replace(round_, duration_s=round(seconds, 3))

