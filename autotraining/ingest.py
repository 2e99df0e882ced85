"""Accepting uploaded records into the records table: validate all, skip the known, write the new.

``accept_records`` is the core of ``POST /records``. It validates the whole payload first
(all-or-nothing: ``InvalidInput`` and nothing written), looks up which ids are already stored
(BatchGetItem) so a re-sent record is stored, and therefore logged, once, and writes the rest
with BatchWriteItem in chunks of 25. Items DynamoDB leaves unprocessed (throttling, partition
limits) are retried with backoff up to a bound; past it ``IngestUnavailable`` tells the caller
to answer 503. A client may then re-send the same request safely: ids make the write
idempotent, and the ids already written are skipped.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from tenacity import RetryError

from autotraining.aws import Aws, Backoff
from autotraining.errors import IngestUnavailable
from autotraining.logs import get_logger
from autotraining.records import Record
from autotraining.schema import ID_FIELD, Schema
from autotraining.validation import validate_records

log = get_logger(__name__)

WRITE_CHUNK = 25  # BatchWriteItem's limit per call
READ_CHUNK = 100  # BatchGetItem's limit per call
# Chunks of one request are written on this many threads (boto3 clients are thread-safe): a
# 1,000-record request is 40 latency-bound calls. Two overlap them without thrashing a busy
# host (scripts/bench_ingest.py, 1 and 4 clients: 2 beat 1 and 4; numbers in docs/ingest.md).
WRITE_THREADS = 2
# DynamoDB errors that mean "try again later", not "this request is wrong".
TRANSIENT_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException",
                             "RequestLimitExceeded", "InternalServerError", "ServiceUnavailable"})


@dataclass(frozen=True)
class RetryPolicy(Backoff):
    """How long to keep retrying unprocessed items/keys: attempts per chunk, exponential backoff in seconds."""

    attempts: int = 8
    initial: float = 0.05
    maximum: float = 2.0


@dataclass(frozen=True)
class AcceptResult:
    """``accepted``: records the request holds (distinct ids), all stored now; ``written``: of those, newly written."""

    accepted: int
    ids: tuple[str, ...]
    written: int = 0


class _Unfinished(Exception):
    """Some items or keys of a batch call were left unprocessed (retried)."""


def accept_records(aws: Aws, schema: Schema, payload: Any, max_rows: int = 1000,
                   retry: RetryPolicy = RetryPolicy()) -> AcceptResult:
    """Validate ``payload`` (a parsed JSON body) and store its records; see the module docstring."""
    records = validate_records(payload, schema, max_rows=max_rows)
    table = aws.settings.records_table
    try:
        stored = _stored_ids(aws.dynamodb, table, [r.id for r in records], retry)
        new = [r for r in records if r.id not in stored]
        chunks = [new[start:start + WRITE_CHUNK] for start in range(0, len(new), WRITE_CHUNK)]
        with ThreadPoolExecutor(WRITE_THREADS) as pool:
            # list() re-raises a failed chunk's error; leaving the block waits for the other chunks
            list(pool.map(lambda chunk: _write_chunk(aws.dynamodb, table, chunk, schema, retry), chunks))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in TRANSIENT_CODES:
            raise IngestUnavailable(f"the records table is busy ({code}); retry the same request") from exc
        raise
    log.info("records.accepted", table=table, accepted=len(records), written=len(new), known=len(stored))
    return AcceptResult(accepted=len(records), ids=tuple(r.id for r in records), written=len(new))


def _stored_ids(ddb: Any, table: str, ids: list[str], retry: RetryPolicy) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), READ_CHUNK):
        request: dict[str, Any] = {table: {"Keys": [{ID_FIELD: {"S": i}} for i in ids[start:start + READ_CHUNK]],
                           "ProjectionExpression": "#id", "ExpressionAttributeNames": {"#id": ID_FIELD},
                           "ConsistentRead": True}}
        try:
            for attempt in retry.retrying(_Unfinished):
                with attempt:
                    resp = ddb.batch_get_item(RequestItems=request)
                    found.update(item[ID_FIELD]["S"] for item in resp.get("Responses", {}).get(table, []))
                    request = resp.get("UnprocessedKeys") or {}
                    if request.get(table, {}).get("Keys"):
                        log.warning("records.unprocessed_keys", table=table, n=len(request[table]["Keys"]))
                        raise _Unfinished()
        except RetryError:
            raise IngestUnavailable(f"the records table left keys unprocessed after {retry.attempts} attempts; "
                                    "retry the same request") from None
    return found


def _write_chunk(ddb: Any, table: str, records: list[Record], schema: Schema, retry: RetryPolicy) -> None:
    pending = [{"PutRequest": {"Item": r.to_item(schema)}} for r in records]
    try:
        for attempt in retry.retrying(_Unfinished):
            with attempt:
                resp = ddb.batch_write_item(RequestItems={table: pending})
                pending = (resp.get("UnprocessedItems") or {}).get(table, [])
                if pending:
                    log.warning("records.unprocessed_items", table=table, n=len(pending))
                    raise _Unfinished()
    except RetryError:
        raise IngestUnavailable(f"the records table left {len(pending)} items unprocessed after "
                                f"{retry.attempts} attempts; retry the same request") from None
