"""The model registry: the ``models`` DynamoDB table, its commit point and its history.

Layout (one table, string hash key ``pk``):

- ``pk = "latest"``: ``round_version`` (the last committed round, published or rejected),
  ``model_version`` (the model that serves; empty before the first publish), ``records_seen``.
- ``pk = "version#<version>"``: one item per committed round (``ModelVersion``), published or
  rejected, with its metrics and the segment keys it consumed. These items alone carry
  ``kind = "version"``, the hash key of the ``history`` index (range key ``version``): history is
  a Query on that index, newest first, ``Limit`` items a page, never a Scan.
- ``pk = "segment#<log key>"``: marks a log segment as consumed, with the round that took it. The
  marks live in their own table (``Settings.consumed_table``; the models table itself when none is
  given), so however many there are they cost history reads nothing; each has ``expires`` (epoch
  seconds, the TTL attribute), set past the queue's retention: after that no message can name the
  segment, and the worker's consumed sequence intervals (``worker.state``) cover its records anyway.

``commit_round`` is the commit point of a training round: ONE DynamoDB transaction that moves
``latest`` from the expected previous round to the new one (condition) and writes the round's
item. A worker that loses a race gets ``CommitConflict`` and changes nothing. Only then are the
round's segments marked consumed (one ``BatchWriteItem``): the marks are the fast path that lets
a redelivered message be deleted without reading its segment, not the truth — that is the
committed state's consumed intervals, which the condition on ``latest`` serializes. A crash
between the two leaves marks missing; the next round loads the state, finds every record of
those segments counted and deletes their messages. Versions are zero-padded round numbers, so
they sort in commit order.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from tenacity import RetryError

from autotraining.aws import Backoff
from autotraining.logs import get_logger

log = get_logger(__name__)

LATEST_PK = "latest"
VERSION_PREFIX = "version#"
SEGMENT_PREFIX = "segment#"
HISTORY_INDEX = "history"  # GSI: hash ``kind``, range ``version``
VERSION_KIND = "version"
EXPIRES_ATTRIBUTE = "expires"  # the table's TTL attribute (epoch seconds)
SEGMENT_MARK_TTL_SECONDS = 15 * 24 * 3600  # the pending queue keeps a message 14 days at most
MAX_SEGMENTS_PER_ROUND = 90  # keeps a round's item (which lists its segments) small
STATUS_PUBLISHED = "published"
STATUS_REJECTED = "rejected"

_ser = TypeSerializer()
_deser = TypeDeserializer()


MARKS_BACKOFF = Backoff(attempts=8, initial=0.05, maximum=2.0)


class _Unprocessed(Exception):
    """BatchWriteItem left items unprocessed (throttling); write them again."""


class CommitConflict(RuntimeError):
    """Another round committed first (``latest`` moved) or a segment was already consumed."""


def version_name(round_number: int) -> str:
    return f"{round_number:06d}"


def round_number(version: str) -> int:
    return int(version)


@dataclass(frozen=True)
class ModelVersion:
    """One committed training round."""

    version: str
    parent: str  # the round this one follows ("" for the first)
    created: int  # epoch ms of the commit
    status: str  # "published" | "rejected"
    model_version: str  # the model serving after this round (== version when published)
    records_seen: int  # distinct records consumed by all rounds up to and including this one
    new_records: int  # distinct records this round consumed
    prequential_accuracy: float | None = None  # current model on this round's new records, before training
    holdout_accuracy: float | None = None  # the candidate on the held-out records
    parent_holdout_accuracy: float | None = None  # the current model on the same held-out records
    gate: str = ""  # why it was published or rejected, e.g. "first model", "passed", "worse by 0.031"
    duration_s: float = 0.0
    segments: tuple[str, ...] = ()
    state_key: str = ""  # S3 key of the reservoir + counts after this round
    metrics: dict[str, Any] = field(default_factory=dict)  # anything more (per class, timings, sizes)

    @property
    def published(self) -> bool:
        return self.status == STATUS_PUBLISHED

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["segments"] = list(self.segments)
        return d

    def to_item(self) -> dict[str, Any]:
        plain = self.to_dict()
        plain["metrics"] = json.dumps(self.metrics, sort_keys=True)
        plain = {k: v for k, v in plain.items() if v is not None}
        plain = json.loads(json.dumps(plain), parse_float=Decimal)
        item = {k: _ser.serialize(v) for k, v in plain.items()}
        item["pk"] = {"S": VERSION_PREFIX + self.version}
        item["kind"] = {"S": VERSION_KIND}
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ModelVersion:
        plain = {k: _deser.deserialize(v) for k, v in item.items() if k not in ("pk", "kind")}
        kwargs: dict[str, Any] = {}
        for f in cls.__dataclass_fields__:
            if f not in plain:
                continue
            v = plain[f]
            if f == "metrics":
                v = json.loads(v) if v else {}
            elif f == "segments":
                v = tuple(v)
            elif f in ("created", "records_seen", "new_records"):
                v = int(v)
            elif isinstance(v, Decimal):
                v = float(v)
            kwargs[f] = v
        return cls(**kwargs)


@dataclass(frozen=True)
class Latest:
    round_version: str
    model_version: str
    records_seen: int


class Registry:
    """Reads and commits rounds in the models table. Takes a DynamoDB client (no resource)."""

    def __init__(self, dynamodb: Any, table: str, marks_table: str = "") -> None:
        self.ddb = dynamodb
        self.table = table
        self.marks_table = marks_table or table

    @classmethod
    def for_settings(cls, dynamodb: Any, settings: Any) -> Registry:
        return cls(dynamodb, settings.models_table, settings.consumed_table)

    def latest(self) -> Latest | None:
        item = self.ddb.get_item(TableName=self.table, Key={"pk": {"S": LATEST_PK}}, ConsistentRead=True).get("Item")
        if not item:
            return None
        return Latest(round_version=item["round_version"]["S"], model_version=item.get("model_version", {}).get("S", ""),
                      records_seen=int(item["records_seen"]["N"]))

    def get(self, version: str) -> ModelVersion | None:
        item = self.ddb.get_item(TableName=self.table, Key={"pk": {"S": VERSION_PREFIX + version}},
                                 ConsistentRead=True).get("Item")
        return ModelVersion.from_item(item) if item else None

    def latest_model(self) -> ModelVersion | None:
        """The round whose model serves now (None before the first publish)."""
        latest = self.latest()
        if latest is None or not latest.model_version:
            return None
        return self.get(latest.model_version)

    def history(self, limit: int = 50, before: str | None = None) -> list[ModelVersion]:
        """Committed rounds, newest first; ``before`` pages on (versions strictly older).

        One Query on the history index (more only when DynamoDB's 1 MB page limit cuts it short):
        the cost follows ``limit``, not the number of rounds or of consumed segments.
        """
        values: dict[str, Any] = {":k": {"S": VERSION_KIND}}
        condition = "kind = :k"
        if before is not None:
            condition += " AND version < :before"
            values[":before"] = {"S": before}
        kwargs: dict[str, Any] = {"TableName": self.table, "IndexName": HISTORY_INDEX,
                                  "KeyConditionExpression": condition, "ExpressionAttributeValues": values,
                                  "ScanIndexForward": False}
        versions: list[ModelVersion] = []
        while len(versions) < limit:
            page = self.ddb.query(Limit=limit - len(versions), **kwargs)
            versions.extend(ModelVersion.from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return versions[:limit]

    def consumed(self, keys: Iterable[str]) -> dict[str, str]:
        """Of these segment keys, those already consumed by a committed round → that round's version."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        for i in range(0, len(keys), 100):
            request = {self.marks_table: {"Keys": [{"pk": {"S": SEGMENT_PREFIX + k}} for k in keys[i:i + 100]],
                                    "ConsistentRead": True}}
            while request:
                resp = self.ddb.batch_get_item(RequestItems=request)
                for item in resp.get("Responses", {}).get(self.marks_table, []):
                    found[item["pk"]["S"][len(SEGMENT_PREFIX):]] = item["version"]["S"]
                request = resp.get("UnprocessedKeys") or {}
        return found

    def commit_round(self, expected_round: str | None, round_: ModelVersion) -> None:
        """The commit point: move ``latest`` from ``expected_round`` (None: no round yet) to ``round_``."""
        if len(round_.segments) > MAX_SEGMENTS_PER_ROUND:
            raise ValueError(f"a round may consume at most {MAX_SEGMENTS_PER_ROUND} segments")
        if expected_round is None:
            cond, values = "attribute_not_exists(pk)", {}
        else:
            cond, values = "round_version = :expected", {":expected": {"S": expected_round}}
        values.update({":rv": {"S": round_.version}, ":mv": {"S": round_.model_version},
                       ":seen": {"N": str(round_.records_seen)}})
        actions: list[dict[str, Any]] = [
            {"Update": {"TableName": self.table, "Key": {"pk": {"S": LATEST_PK}},
                        "UpdateExpression": "SET round_version = :rv, model_version = :mv, records_seen = :seen",
                        "ConditionExpression": cond, "ExpressionAttributeValues": values}},
            {"Put": {"TableName": self.table, "Item": round_.to_item(), "ConditionExpression": "attribute_not_exists(pk)"}},
        ]
        try:
            self.ddb.transact_write_items(TransactItems=actions)
        except self.ddb.exceptions.TransactionCanceledException as exc:
            raise CommitConflict(f"round {round_.version} lost the commit race: {exc}") from None
        self.mark_consumed(round_.version, round_.segments)

    def mark_consumed(self, version: str, keys: Iterable[str]) -> None:
        """Mark these segments consumed by ``version`` (after its commit), with their expiry."""
        expires = {"N": str(int(time.time()) + SEGMENT_MARK_TTL_SECONDS)}
        requests = [{"PutRequest": {"Item": {"pk": {"S": SEGMENT_PREFIX + k}, "version": {"S": version},
                                             EXPIRES_ATTRIBUTE: expires}}} for k in dict.fromkeys(keys)]
        for i in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.marks_table: requests[i:i + 25]}
            try:
                for attempt in MARKS_BACKOFF.retrying(_Unprocessed):
                    with attempt:
                        pending = self.ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                        if pending:
                            raise _Unprocessed()
            except RetryError:
                # Marks are a fast path (see the module docstring): a missing one costs a read later.
                log.warning("registry.marks_unprocessed", version=version, left=len(pending.get(self.marks_table, [])))
