"""accept_records (autotraining.ingest): all-or-nothing, re-sent ids stored once, unprocessed items retried."""
from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from ingest_fixtures import Unprocessing, WrappedAws, rows, stored, stream_events

from autotraining.aws import Aws
from autotraining.ingest import IngestUnavailable, RetryPolicy, accept_records
from autotraining.schema import Schema
from autotraining.validation import InvalidInput

FAST = RetryPolicy(attempts=4, initial=0.0, maximum=0.0)


class UnprocessedKeys:
    """Answers only the first key of each BatchGetItem for ``times`` calls, returning the rest as UnprocessedKeys."""

    def __init__(self, real: Any, times: int) -> None:
        self.real, self.times, self.get_sizes = real, times, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        (table, req), = RequestItems.items()
        self.get_sizes.append(len(req["Keys"]))
        if self.times <= 0:
            return self.real.batch_get_item(RequestItems=RequestItems)
        self.times -= 1
        resp = self.real.batch_get_item(RequestItems={table: {**req, "Keys": req["Keys"][:1]}})
        rest = req["Keys"][1:]
        return {"Responses": resp["Responses"], "UnprocessedKeys": {table: {**req, "Keys": rest}} if rest else {}}


class Throttled:
    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                          "BatchGetItem")


def test_valid_records_are_stored_with_their_ids(aws: Aws, schema: Schema) -> None:
    payload = rows(schema, 30)
    result = accept_records(aws, schema, payload)
    assert result.accepted == 30 and result.written == 30
    assert list(result.ids) == [p["id"] for p in payload]
    table = stored(aws, schema)
    assert {r.to_log_dict(schema)["id"]: r.to_log_dict(schema) for r in table.values()} == {p["id"]: p for p in payload}
    assert stream_events(aws) == ["INSERT"] * 30


def test_records_without_id_get_fresh_ids(aws: Aws, schema: Schema) -> None:
    payload = [{k: v for k, v in p.items() if k not in ("id", "created")} for p in rows(schema, 3)]
    result = accept_records(aws, schema, {"records": payload})
    assert len(set(result.ids)) == 3
    assert set(stored(aws, schema)) == set(result.ids)


def test_re_sent_id_is_stored_and_streamed_once(aws: Aws, schema: Schema) -> None:
    first = rows(schema, 2)
    accept_records(aws, schema, first)
    changed = {**first[0], "label": "warm" if first[0]["label"] != "warm" else "cold"}
    again = accept_records(aws, schema, [changed, *rows(schema, 1, seed=2)])
    assert again.accepted == 2 and again.written == 1
    assert first[0]["id"] in again.ids
    table = stored(aws, schema)
    assert len(table) == 3
    assert table[first[0]["id"]].label == first[0]["label"]  # the first version stays
    assert stream_events(aws) == ["INSERT"] * 3  # no MODIFY: the log holds each id once


def test_invalid_record_anywhere_writes_nothing(aws: Aws, schema: Schema) -> None:
    payload = rows(schema, 40)
    payload[37]["temp"] = 500
    with pytest.raises(InvalidInput) as info:
        accept_records(aws, schema, payload)
    assert [(e.index, e.field) for e in info.value.errors] == [(37, "temp")]
    assert stored(aws, schema) == {}
    assert stream_events(aws) == []


def test_writes_go_in_chunks_of_25(aws: Aws, schema: Schema) -> None:
    faulty = WrappedAws(aws, lambda real: Unprocessing(real, times=0))
    accept_records(faulty, schema, rows(schema, 60), retry=FAST)
    assert sorted(faulty.wrapper.write_sizes) == [10, 25, 25]  # written concurrently: any order
    assert len(stored(aws, schema)) == 60


def test_unprocessed_items_of_concurrent_chunks_are_all_retried(aws: Aws, schema: Schema) -> None:
    faulty = WrappedAws(aws, lambda real: Unprocessing(real, times=3, keep=5))
    result = accept_records(faulty, schema, rows(schema, 100), retry=FAST)
    assert result.written == 100 and len(stored(aws, schema)) == 100
    assert len(faulty.wrapper.write_sizes) == 4 + 3  # four chunks, three calls answered partly
    assert stream_events(aws) == ["INSERT"] * 100


def test_unprocessed_items_are_retried_until_written(aws: Aws, schema: Schema) -> None:
    faulty = WrappedAws(aws, lambda real: Unprocessing(real, times=3, keep=5))
    result = accept_records(faulty, schema, rows(schema, 25), retry=FAST)
    assert faulty.wrapper.write_sizes == [25, 20, 15, 10]  # each retry sends only what was left
    assert result.written == 25
    assert len(stored(aws, schema)) == 25
    assert stream_events(aws) == ["INSERT"] * 25


def test_unprocessed_items_past_the_bound_raise_ingest_unavailable_and_a_resend_completes(
        aws: Aws, schema: Schema) -> None:
    payload = rows(schema, 25)
    faulty = WrappedAws(aws, lambda real: Unprocessing(real, times=100, keep=5))
    with pytest.raises(IngestUnavailable, match="unprocessed after 4 attempts"):
        accept_records(faulty, schema, payload, retry=FAST)
    assert faulty.wrapper.write_sizes == [25, 20, 15, 10]
    assert len(stored(aws, schema)) == 20
    again = accept_records(aws, schema, payload, retry=FAST)  # the client's retry, fault gone
    assert again.accepted == 25 and again.written == 5
    assert len(stored(aws, schema)) == 25
    assert stream_events(aws) == ["INSERT"] * 25


def test_unprocessed_keys_of_the_lookup_are_retried(aws: Aws, schema: Schema) -> None:
    payload = rows(schema, 4)
    accept_records(aws, schema, payload[:2])
    faulty = WrappedAws(aws, lambda real: UnprocessedKeys(real, times=2))
    result = accept_records(faulty, schema, payload, retry=FAST)
    assert faulty.wrapper.get_sizes == [4, 3, 2]
    assert result.written == 2
    assert stream_events(aws) == ["INSERT"] * 4


def test_throttled_table_is_reported_as_unavailable(aws: Aws, schema: Schema) -> None:
    with pytest.raises(IngestUnavailable, match="ProvisionedThroughputExceededException"):
        accept_records(WrappedAws(aws, Throttled), schema, rows(schema, 2), retry=FAST)
    assert stored(aws, schema) == {}
