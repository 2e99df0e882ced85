"""handlers.upload (POST /records): every refusal answers its status with exact errors and writes nothing."""
from __future__ import annotations

import base64
import copy
import json
from typing import Any

import ingest_fixtures
import pytest
from ingest_fixtures import Unprocessing, WrappedAws, load_event, stored, stream_events

import handlers.upload
from autotraining.aws import Aws
from autotraining.generator import generate
from autotraining.ingest import RetryPolicy
from autotraining.schema import Schema

OK = {"temp": 72.5, "rh": 45, "clo": 0.6, "wind": 0.1, "label": "ok"}
ALLOWED = "clo, created, id, label, rh, temp, wind"


def post(body: str | None, base: dict[str, Any] | None = None) -> dict[str, Any]:
    event = copy.deepcopy(base or load_event("apigw_post_records"))
    event["body"] = body
    return event


def with_row(**change: Any) -> str:
    row = {k: v for k, v in {**OK, **change}.items() if v is not ...}
    return json.dumps([OK, row])


def answer(response: dict[str, Any]) -> tuple[int, Any]:
    assert response["headers"]["content-type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


REFUSALS = [
    ("non-JSON", "{not json", 400,
     [(None, None, "the body is not valid JSON: Expecting property name enclosed in double quotes: "
                   "line 1 column 2 (char 1)")]),
    ("empty body", "", 400, [(None, None, "the request body is empty; send a JSON array")]),
    ("empty array", "[]", 400, [(None, None, "the array is empty; send at least one row")]),
    ("empty object", "{}", 400, [(None, None, "send a JSON array or an object with only the key 'records'")]),
    ("missing field", with_row(clo=...), 400, [(1, "clo", "missing; every schema feature is required")]),
    ("null field", with_row(rh=None), 400, [(1, "rh", "is null; a number is required")]),
    ("wrong type", with_row(temp="warmish"), 400, [(1, "temp", "must be a number, got a string")]),
    ("out of range", with_row(wind=25), 400, [(1, "wind", "25 is out of range [0, 20]")]),
    ("NaN", '[{"temp": NaN, "rh": 45, "clo": 0.6, "wind": 0.1, "label": "ok"}]', 400,
     [(None, None, "the body is not valid JSON: NaN is not allowed in JSON")]),
    ("Infinity", '[{"temp": Infinity, "rh": 45, "clo": 0.6, "wind": 0.1, "label": "ok"}]', 400,
     [(None, None, "the body is not valid JSON: Infinity is not allowed in JSON")]),
    ("unknown label", with_row(label="hot"), 400, [(1, "label", "'hot' is not a known label; one of cold, ok, warm")]),
    ("unknown extra field", with_row(mood="grumpy"), 400, [(1, "mood", "unknown field; allowed: " + ALLOWED)]),
    ("record not an object", json.dumps([OK, "temp=70"]), 400, [(1, None, "must be a JSON object, got a string")]),
    ("more than 1000 records", json.dumps([OK] * 1001), 413,
     [(None, None, "1001 rows is more than the limit of 1000 per request; split it into smaller requests")]),
]


unwritten_aws = ingest_fixtures.unwritten_aws  # a class-scoped fixture: one emulator for tests that write nothing


class TestRefusals:
    @pytest.mark.parametrize("what, body, status, errors", REFUSALS, ids=[r[0] for r in REFUSALS])
    def test_refused_body_answers_error_and_writes_nothing(self, unwritten_aws: Aws, schema: Schema, what: str,
                                                           body: str, status: int,
                                                           errors: list[tuple[Any, Any, str]]) -> None:
        aws = unwritten_aws
        code, payload = answer(handlers.upload.handle(post(body), aws))
        assert code == status
        assert payload["errors"] == [{"index": i, "field": f, "message": m} for i, f, m in errors]
        assert payload["message"]
        assert stored(aws, schema) == {}
        assert stream_events(aws) == []

    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
    def test_other_methods_answer_405(self, unwritten_aws: Aws, schema: Schema, method: str) -> None:
        event = load_event("apigw_post_records")
        event["requestContext"]["http"]["method"] = method
        response = handlers.upload.handle(event, unwritten_aws)
        assert response["statusCode"] == 405 and response["headers"]["allow"] == "POST"
        assert stored(unwritten_aws, schema) == {}


def test_every_bad_field_is_listed_in_one_answer(aws: Aws, schema: Schema) -> None:
    body = json.dumps([{**OK, "temp": 999}, OK, {"rh": "x", "clo": 0.5, "wind": 0, "label": "nope"}])
    code, payload = answer(handlers.upload.handle(post(body), aws))
    assert code == 400
    assert [(e["index"], e["field"]) for e in payload["errors"]] == [(0, "temp"), (2, "temp"), (2, "rh"), (2, "label")]
    assert stored(aws, schema) == {}


def test_captured_request_is_accepted(aws: Aws, schema: Schema) -> None:
    code, payload = answer(handlers.upload.handle(load_event("apigw_post_records"), aws))
    assert code == 201
    assert payload["accepted"] == 2 and payload["ids"][0] == "r-1" and len(set(payload["ids"])) == 2
    table = stored(aws, schema)
    assert set(table) == set(payload["ids"])
    assert table["r-1"].features == (72.5, 45.0, 0.6, 0.1) and table["r-1"].label == "ok"
    assert table[payload["ids"][1]].created == 1767225600000


def test_records_wrapped_in_an_object_and_base64_body_are_accepted(aws: Aws, schema: Schema) -> None:
    rows = [r.to_log_dict(schema) for r in generate(schema, 3, seed=5)]
    event = post(base64.b64encode(json.dumps({"records": rows}).encode()).decode())
    event["isBase64Encoded"] = True
    code, payload = answer(handlers.upload.handle(event, aws))
    assert (code, payload) == (201, {"accepted": 3, "ids": [r["id"] for r in rows]})


def test_re_sent_records_are_stored_and_streamed_once(aws: Aws, schema: Schema) -> None:
    body = json.dumps([r.to_log_dict(schema) for r in generate(schema, 10, seed=6)])
    first = answer(handlers.upload.handle(post(body), aws))
    second = answer(handlers.upload.handle(post(body), aws))
    assert first == second and first[0] == 201
    assert len(stored(aws, schema)) == 10
    assert stream_events(aws) == ["INSERT"] * 10


def test_table_busy_past_the_bound_answers_503_and_a_resend_completes(aws: Aws, schema: Schema) -> None:
    body = json.dumps([r.to_log_dict(schema) for r in generate(schema, 25, seed=8)])
    busy = WrappedAws(aws, lambda real: Unprocessing(real, times=100, keep=10))
    fast = RetryPolicy(attempts=2, initial=0.0, maximum=0.0)
    response = handlers.upload.handle(post(body), busy, retry=fast)
    assert response["statusCode"] == 503 and response["headers"]["retry-after"] == "1"
    assert "retry the same request" in json.loads(response["body"])["message"]
    code, payload = answer(handlers.upload.handle(post(body), aws, retry=fast))
    assert code == 201 and payload["accepted"] == 25
    assert len(stored(aws, schema)) == 25
    assert stream_events(aws) == ["INSERT"] * 25


def test_lambda_entry_point_reads_settings_from_the_environment(aws: Aws, schema: Schema,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in aws.settings.replace(max_records_per_request=2).to_env().items():
        if value:
            monkeypatch.setenv(name, value)
    code, payload = answer(handlers.upload.handler(post(json.dumps([OK] * 3)), None))
    assert code == 413
    code, payload = answer(handlers.upload.handler(post(json.dumps([OK, OK])), None))
    assert code == 201 and len(stored(aws, schema)) == 2
