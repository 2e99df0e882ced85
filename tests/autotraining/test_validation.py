"""Validation of uploaded records (autotraining.validation): every refusal with its exact error entries."""
from __future__ import annotations

import math
from typing import Any

import pytest

from autotraining.records import Record
from autotraining.schema import Schema, load_schema
from autotraining.validation import FieldError, InvalidInput, parse_json, validate_records, validate_rows

GOOD = {"temp": 72.5, "rh": 45, "clo": 0.6, "wind": 0.1, "label": "ok"}
ALLOWED = "clo, created, id, label, rh, temp, wind"


def refusal(payload: Any, schema: Schema, max_rows: int = 1000) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        validate_records(payload, schema, max_rows=max_rows)
    return info.value


@pytest.mark.parametrize("body, message", [
    ("not json", "the body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    ('[{"temp": NaN}]', "the body is not valid JSON: NaN is not allowed in JSON"),
    ('[{"temp": Infinity}]', "the body is not valid JSON: Infinity is not allowed in JSON"),
    ('[{"temp": -Infinity}]', "the body is not valid JSON: -Infinity is not allowed in JSON"),
    ("", "the request body is empty; send a JSON array"),
    ("  \n", "the request body is empty; send a JSON array"),
    (None, "the request body is empty; send a JSON array"),
])
def test_parse_json_refuses_non_json_and_non_finite_constants(body: str | None, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_json(body)
    assert info.value.status == 400
    assert info.value.errors == [FieldError(None, None, message)]


@pytest.mark.parametrize("payload, message", [
    ([], "the array is empty; send at least one row"),
    ({}, "send a JSON array or an object with only the key 'records'"),
    ({"records": []}, "the array is empty; send at least one row"),
    ({"records": [GOOD], "extra": 1}, "send a JSON array or an object with only the key 'records'"),
    ("a string", "expected a JSON array of objects, got a string"),
    (5, "expected a JSON array of objects, got a number"),
    (None, "expected a JSON array of objects, got null"),
])
def test_body_level_refusals_name_no_row(payload: Any, message: str, schema: Schema) -> None:
    exc = refusal(payload, schema)
    assert exc.status == 400
    assert exc.errors == [FieldError(None, None, message)]


CREATED_MESSAGE = "must be a whole number of epoch milliseconds from 0 to 253402300799999 (year 9999)"

@pytest.mark.parametrize("change, field, message", [
    ({"temp": None}, "temp", "is null; a number is required"),
    ({"temp": "72"}, "temp", "must be a number, got a string"),
    ({"temp": True}, "temp", "must be a number, got a boolean"),
    ({"temp": [1]}, "temp", "must be a number, got an array"),
    ({"temp": 200}, "temp", "200 is out of range [-40, 130]"),
    ({"rh": -0.5}, "rh", "-0.5 is out of range [0, 100]"),
    ({"clo": math.inf}, "clo", "must be a finite number"),
    ({"wind": math.nan}, "wind", "must be a finite number"),
    ({"label": "hot"}, "label", "'hot' is not a known label; one of cold, ok, warm"),
    ({"label": None}, "label", "is null; one of cold, ok, warm"),
    ({"label": 1}, "label", "1 is not a known label; one of cold, ok, warm"),
    ({"colour": "red"}, "colour", "unknown field; allowed: " + ALLOWED),
    ({"id": ""}, "id", "must be a string of 1-128 letters, digits or . _ : -"),
    ({"id": "has space"}, "id", "must be a string of 1-128 letters, digits or . _ : -"),
    ({"created": -1}, "created", CREATED_MESSAGE),
    ({"created": 1.5}, "created", CREATED_MESSAGE),
    ({"created": 10**30}, "created", CREATED_MESSAGE),
    ({"id": "abc\n"}, "id", "must be a string of 1-128 letters, digits or . _ : -"),
    ({"id": "ab\u0663"}, "id", "must be a string of 1-128 letters, digits or . _ : -"),
])
def test_one_bad_field_is_refused_with_its_row_and_field(change: dict[str, Any], field: str, message: str,
                                                          schema: Schema) -> None:
    exc = refusal([GOOD, {**GOOD, **change}], schema)
    assert exc.status == 400
    assert exc.errors == [FieldError(1, field, message)]


@pytest.mark.parametrize("missing", ["temp", "rh", "clo", "wind", "label"])
def test_missing_field_is_refused(missing: str, schema: Schema) -> None:
    row = {k: v for k, v in GOOD.items() if k != missing}
    expected = ("missing; one of cold, ok, warm" if missing == "label"
                else "missing; every schema feature is required")
    assert refusal([row], schema).errors == [FieldError(0, missing, expected)]


def test_every_bad_field_of_every_row_is_listed(schema: Schema) -> None:
    rows = [GOOD, {"temp": "x", "rh": 101, "label": "hot", "zzz": 1}, 7]
    exc = refusal(rows, schema)
    assert [e.to_dict() for e in exc.errors] == [
        {"index": 1, "field": "zzz", "message": "unknown field; allowed: " + ALLOWED},
        {"index": 1, "field": "temp", "message": "must be a number, got a string"},
        {"index": 1, "field": "rh", "message": "101 is out of range [0, 100]"},
        {"index": 1, "field": "clo", "message": "missing; every schema feature is required"},
        {"index": 1, "field": "wind", "message": "missing; every schema feature is required"},
        {"index": 1, "field": "label", "message": "'hot' is not a known label; one of cold, ok, warm"},
        {"index": 2, "field": None, "message": "must be a JSON object, got a number"},
    ]
    assert exc.to_body()["message"].startswith("row 1, field 'zzz': unknown field")


def test_more_rows_than_the_limit_is_413(schema: Schema) -> None:
    exc = refusal([GOOD] * 1001, schema)
    assert exc.status == 413
    assert exc.errors == [FieldError(None, None, "1001 rows is more than the limit of 1000 per request; "
                                                 "split it into smaller requests")]
    assert len(validate_records([GOOD] * 1000, schema)) == 1000


def test_valid_records_keep_client_id_and_created_and_fill_the_rest(schema: Schema) -> None:
    out = validate_records({"records": [{**GOOD, "id": "a-1", "created": 5}, {**GOOD, "rh": 46}]}, schema,
                           now_ms=1234)
    assert out[0] == Record(id="a-1", features=(72.5, 45.0, 0.6, 0.1), label="ok", created=5)
    assert out[1].created == 1234 and out[1].id and out[1].id != "a-1"


def test_rows_sharing_an_id_collapse_to_the_first(schema: Schema) -> None:
    out = validate_records([{**GOOD, "id": "same"}, {**GOOD, "id": "same", "label": "cold"}], schema)
    assert [(r.id, r.label) for r in out] == [("same", "ok")]


def test_validation_follows_a_custom_schema_not_the_example() -> None:
    custom = Schema.from_dict({"name": "iris", "features": [{"name": "petal", "min": 0, "max": 10},
                                                            {"name": "legs", "type": "integer", "min": 0, "max": 8}],
                               "labels": ["a", "b"]})
    assert validate_records([{"petal": 1.5, "legs": 4, "label": "b"}], custom)[0].features == (1.5, 4.0)
    with pytest.raises(InvalidInput) as info:
        validate_records([{"petal": 1.5, "legs": 2.5, "label": "ok", "temp": 1}], custom)
    assert [(e.field, e.message) for e in info.value.errors] == [
        ("temp", "unknown field; allowed: created, id, label, legs, petal"),
        ("legs", "must be a whole number"),
        ("label", "'ok' is not a known label; one of a, b"),
    ]


def test_prediction_rows_need_no_label_but_refuse_unknown_fields() -> None:
    schema = load_schema()
    assert validate_rows([{"temp": 70, "rh": 50, "clo": 1, "wind": 0}], schema) == [(70.0, 50.0, 1.0, 0.0)]
    with pytest.raises(InvalidInput) as info:
        validate_rows({"rows": [{"temp": 70, "rh": 50, "clo": 1, "wind": 0, "x": 1}]}, schema)
    assert [(e.index, e.field) for e in info.value.errors] == [(0, "x")]
