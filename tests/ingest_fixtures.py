"""Helpers shared by the ingest tests (upload, stream log, starter, CLI): fault-injecting AWS wrappers,
stream events, table/stream inspection. Imported as ``ingest_fixtures`` (tests/ is on sys.path under
pytest, as for ``serving_fixtures``): the name ``tests`` itself can be shadowed by a ``tests`` package
that a dependency (pythermalcomfort) installs into site-packages.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from autotraining.aws import Aws
from autotraining.generator import generate
from autotraining.records import Record
from autotraining.schema import Schema
from autotraining.settings import Settings
from autotraining_tools.local.provision import provision

EVENTS_DIR = Path(__file__).parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """A captured event from ``tests/events/<name>.json`` (as ``conftest.load_event``)."""
    return json.loads((EVENTS_DIR / f"{name}.json").read_text())


def rows(schema: Schema, n: int, seed: int = 1) -> list[dict[str, Any]]:
    return [r.to_log_dict(schema) for r in generate(schema, n, seed=seed)]


def stored(aws: Aws, schema: Schema) -> dict[str, Record]:
    items = aws.dynamodb.scan(TableName=aws.settings.records_table, ConsistentRead=True)["Items"]
    return {i["id"]["S"]: Record.from_item(i, schema) for i in items}


def stream_events(aws: Aws) -> list[str]:
    """eventName of every record on the table's stream, in order."""
    arn = aws.dynamodb.describe_table(TableName=aws.settings.records_table)["Table"]["LatestStreamArn"]
    streams = aws.client("dynamodbstreams")
    names = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        names += [r["eventName"] for r in streams.get_records(ShardIterator=it)["Records"]]
    return names


class WrappedAws(Aws):
    """An Aws whose DynamoDB client is replaced by a fault-injecting wrapper around the real one."""

    def __init__(self, base: Aws, make_wrapper: Any) -> None:
        super().__init__(base.settings)
        self.wrapper = make_wrapper(base.dynamodb)

    def client(self, service: str) -> Any:
        return self.wrapper if service == "dynamodb" else super().client(service)


class Unprocessing:
    """Writes only the first ``keep`` items of each BatchWriteItem for ``times`` calls, returning the rest
    as UnprocessedItems (what DynamoDB does under throttling; moto never does)."""

    def __init__(self, real: Any, times: int, keep: int = 5) -> None:
        self.real, self.times, self.keep = real, times, keep
        self.write_sizes: list[int] = []
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:  # noqa: N803
        (table, items), = RequestItems.items()
        with self.lock:  # chunks of one request are written from several threads
            self.write_sizes.append(len(items))
            fault = self.times > 0
            self.times -= 1
        if not fault:
            return self.real.batch_write_item(RequestItems=RequestItems)
        self.real.batch_write_item(RequestItems={table: items[:self.keep]})
        return {"UnprocessedItems": {table: items[self.keep:]} if items[self.keep:] else {}}


STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/autotraining-records/stream/2026-11-26T05:39:14.814678"


def stream_batch(schema: Schema, n: int, first_seq: int = 1000, seed: int = 3, event_id: str = "") -> dict[str, Any]:
    """A Lambda DynamoDB-stream event holding ``n`` INSERTs of generated records."""
    out = []
    for k, rec in enumerate(generate(schema, n, seed=seed)):
        item = rec.to_item(schema)
        out.append({"eventID": event_id or f"e{k}", "eventName": "INSERT", "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "eventSourceARN": STREAM_ARN,
                    "dynamodb": {"Keys": {"id": item["id"]}, "NewImage": item, "SequenceNumber": str(first_seq + k),
                                 "SizeBytes": 300, "StreamViewType": "NEW_IMAGE"}})
    return {"Records": out}


class FailingS3:
    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def put_object(self, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "InternalError", "Message": "S3 is down"}}, "PutObject")


class FailingS3Aws(Aws):
    def client(self, service: str) -> Any:
        real = super().client(service)
        return FailingS3(real) if service == "s3" else real


@pytest.fixture(scope="class")
def unwritten_aws() -> Iterator[Aws]:
    """One provisioned mock for a class of tests that must all write nothing (each checks it stayed empty)."""
    from moto import mock_aws

    with mock_aws():
        yield Aws(provision(Aws(Settings(region="us-east-1"))))


IID = "i-0123456789abcdef0"


def described(state: str, iid: str = IID) -> dict[str, Any]:
    codes = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
    return {"Reservations": [{"ReservationId": "r-1", "Instances": [
        {"InstanceId": iid, "State": {"Code": codes[state], "Name": state}}]}]}


def starting(previous: str = "stopped") -> dict[str, Any]:
    return {"StartingInstances": [{"InstanceId": IID, "CurrentState": {"Code": 0, "Name": "pending"},
                                   "PreviousState": {"Code": 80, "Name": previous}}]}
