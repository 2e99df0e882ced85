"""The embedded run's stream poller: the stand-in for Lambda's DynamoDB-stream event source mapping.

It reads the records table's stream over HTTP (``dynamodbstreams``) from ``TRIM_HORIZON``,
follows every shard (children after their parent is closed), and delivers Lambda-shaped
stream events (``{"Records": [...]}`` with ``eventID``, ``eventName``, ``eventVersion`` "1.1",
``eventSource`` "aws:dynamodb", ``awsRegion``, ``eventSourceARN`` and ``dynamodb{...}``) to a
delivery function, by default ``handlers.stream.handler``.

Batching follows the event source mapping: at most ``batch_size`` records per event, never
mixing shards; a partial batch is delivered once the oldest buffered record has waited
``batch_window`` seconds (0: as soon as records are read). A failed delivery is retried with
the *same* batch, with exponential back-off, until it succeeds or the poller stops: delivery
is at-least-once and no record is ever skipped (Lambda's default for stream sources, with no
maximum retry age). moto serves about 1,500 stream records/s, so reads ask for up to 1,000
records at a time and idle polls back off to ``poll_interval``.
"""
from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_when_event_set, wait_exponential

from autotraining.aws import Aws
from autotraining.logs import get_logger
from autotraining_tools.local.background import BackgroundLoop
from autotraining_tools.local.context import LambdaContext

log = get_logger(__name__)

MAX_READ = 1000  # GetRecords' own limit
Deliver = Callable[[dict[str, Any]], None]


def deliver_to_stream_handler(event: dict[str, Any]) -> None:
    """Call ``handlers.stream.handler`` (imported at call time: a missing module is a failed delivery)."""
    handler = importlib.import_module("handlers.stream").handler
    result = handler(event, LambdaContext("autotraining-stream", timeout_seconds=300.0))
    # A handler may report partial batch failures like Lambda's ReportBatchItemFailures; the poller
    # retries the whole batch (same records), which the stream handler's idempotent segments absorb.
    if isinstance(result, dict) and result.get("batchItemFailures"):
        raise RuntimeError(f"stream handler reported failures: {result['batchItemFailures'][:3]}")


def lambda_record(raw: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A ``GetRecords`` record as Lambda delivers it (numbers for times, the source ARN, version 1.1)."""
    ddb = dict(raw.get("dynamodb", {}))
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        ddb["ApproximateCreationDateTime"] = float(int(created.timestamp()))
    ddb.setdefault("SizeBytes", len(repr(ddb.get("NewImage", {}))))
    ddb.setdefault("StreamViewType", "NEW_IMAGE")
    return {
        "eventID": raw.get("eventID", ""),
        "eventName": raw.get("eventName", ""),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion", region),
        "dynamodb": ddb,
        "eventSourceARN": stream_arn,
    }


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    iterator: str | None = None
    last_sequence: str | None = None
    closed: bool = False  # no more records will be read (NextShardIterator was null)
    buffer: list[dict[str, Any]] = field(default_factory=list)
    buffer_since: float = 0.0  # monotonic time the oldest buffered record was read


@dataclass(frozen=True)
class PollerStats:
    delivered_records: int
    delivered_batches: int
    failed_deliveries: int


class StreamPoller(BackgroundLoop):
    """Reads one table's stream and delivers batches; ``start()`` runs it in a thread, ``stop()`` ends it."""

    def __init__(self, aws: Aws, table_name: str, deliver: Deliver | None = None, batch_size: int = 100,
                 batch_window: float = 0.0, poll_interval: float = 0.25, retry_base: float = 0.5,
                 retry_max: float = 10.0, shard_refresh: float = 10.0) -> None:
        super().__init__(name="stream-poller", stop_timeout=15.0)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if batch_window < 0:
            raise ValueError("batch_window must not be negative")
        self.aws = aws
        self.table_name = table_name
        self.deliver = deliver or deliver_to_stream_handler
        self.batch_size = batch_size
        self.batch_window = batch_window
        self.poll_interval = poll_interval
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.shard_refresh = shard_refresh
        self._shards: dict[str, _Shard] = {}
        self._stream_arn = ""
        self._delivered_records = 0
        self._delivered_batches = 0
        self._failed = 0
        self._idle_rounds = 0  # polls that read nothing with every buffer empty
        self._idle_cond = threading.Condition()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def stats(self) -> PollerStats:
        return PollerStats(self._delivered_records, self._delivered_batches, self._failed)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until everything written before the call has been read and delivered (tests, scripts)."""
        with self._idle_cond:
            target = self._idle_rounds + 2  # one more full empty poll after any poll already under way
            return self._idle_cond.wait_for(lambda: self._idle_rounds >= target, timeout)

    # -- the loop --------------------------------------------------------------------------
    @property
    def _streams(self) -> Any:
        return self.aws.client("dynamodbstreams")

    def _sleep(self, seconds: float) -> None:
        """Back-off that ``stop`` interrupts at once."""
        self._stop.wait(seconds)

    def _run(self) -> None:
        log.info("poller.started", table=self.table_name, batch_size=self.batch_size, batch_window=self.batch_window)
        next_refresh = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_refresh:
                    self._refresh_shards()
                    next_refresh = time.monotonic() + self.shard_refresh
                got_any = self.poll_once()
            except Exception as exc:  # the emulator restarting, a network blip: log and keep polling
                log.warning("poller.read_failed", error=repr(exc))
                got_any = False
                next_refresh = 0.0
                self._stop.wait(min(self.retry_max, 1.0))
                continue
            if not got_any:
                if all(not s.buffer for s in self._shards.values()):
                    with self._idle_cond:
                        self._idle_rounds += 1
                        self._idle_cond.notify_all()
                self._stop.wait(self.poll_interval)
        log.info("poller.stopped", delivered=self._delivered_records, batches=self._delivered_batches)

    def _refresh_shards(self) -> None:
        if not self._stream_arn:
            table = self.aws.dynamodb.describe_table(TableName=self.table_name)["Table"]
            self._stream_arn = table.get("LatestStreamArn", "")
            if not self._stream_arn:
                raise RuntimeError(f"table {self.table_name} has no stream")
        desc = self._streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]
        for shard in desc.get("Shards", []):
            sid = shard["ShardId"]
            if sid not in self._shards:
                self._shards[sid] = _Shard(sid, shard.get("ParentShardId"))
                log.info("poller.shard_found", shard=sid)

    def _readable(self, shard: _Shard) -> bool:
        """A child shard is read only after its parent is finished (records stay in order)."""
        parent = self._shards.get(shard.parent_id or "")
        return parent is None or (parent.closed and not parent.buffer)

    def poll_once(self) -> bool:
        """Read each shard once and deliver what is due. True when any record was read or delivered."""
        if not self._stream_arn:
            self._refresh_shards()
        busy = False
        for shard in list(self._shards.values()):
            if self._stop.is_set():
                break
            if not shard.closed and len(shard.buffer) < self.batch_size and self._readable(shard):
                busy |= self._read(shard)
            while shard.buffer and self._due(shard) and not self._stop.is_set():
                busy |= self._deliver_batch(shard)
        return busy

    def _read(self, shard: _Shard) -> bool:
        if shard.iterator is None:
            kwargs: dict[str, Any] = {"StreamArn": self._stream_arn, "ShardId": shard.shard_id}
            if shard.last_sequence is None:
                kwargs["ShardIteratorType"] = "TRIM_HORIZON"
            else:
                kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.last_sequence)
            shard.iterator = self._streams.get_shard_iterator(**kwargs)["ShardIterator"]
        try:
            out = self._streams.get_records(ShardIterator=shard.iterator, Limit=MAX_READ)
        except self._streams.exceptions.ExpiredIteratorException:
            shard.iterator = None  # re-open after the last sequence number read
            return True
        records = out.get("Records", [])
        shard.iterator = out.get("NextShardIterator")
        if shard.iterator is None:
            shard.closed = True
            log.info("poller.shard_closed", shard=shard.shard_id)
        if records:
            if not shard.buffer:
                shard.buffer_since = time.monotonic()
            shard.buffer.extend(lambda_record(r, self._stream_arn, self.aws.settings.region) for r in records)
            shard.last_sequence = records[-1]["dynamodb"]["SequenceNumber"]
        return bool(records)

    def _due(self, shard: _Shard) -> bool:
        if len(shard.buffer) >= self.batch_size or shard.closed:
            return True
        return time.monotonic() - shard.buffer_since >= self.batch_window

    def _deliver_batch(self, shard: _Shard) -> bool:
        batch = shard.buffer[: self.batch_size]
        event = {"Records": batch}
        retrying = Retrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential(multiplier=self.retry_base, max=self.retry_max),
            stop=stop_when_event_set(self._stop),
            sleep=self._sleep,
            before_sleep=self._log_retry(shard, batch),
            reraise=True,
        )
        try:
            retrying(self.deliver, event)
        except Exception as exc:  # only reached when stopping: the batch stays buffered, nothing is lost
            log.warning("poller.delivery_abandoned_on_stop", shard=shard.shard_id, records=len(batch), error=repr(exc))
            return False
        del shard.buffer[: len(batch)]
        shard.buffer_since = time.monotonic()
        self._delivered_records += len(batch)
        self._delivered_batches += 1
        log.info("poller.delivered", shard=shard.shard_id, records=len(batch),
                 first=batch[0]["dynamodb"]["SequenceNumber"], last=batch[-1]["dynamodb"]["SequenceNumber"])
        return True

    def _log_retry(self, shard: _Shard, batch: list[dict[str, Any]]) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            self._failed += 1
            exc = state.outcome.exception() if state.outcome else None
            log.warning("poller.delivery_failed", shard=shard.shard_id, records=len(batch),
                        attempt=state.attempt_number, retry_in=round(state.upcoming_sleep, 2), error=repr(exc))
        return before_sleep
