"""Typed schema features: the schema file's checks, validation, storage shapes and the encoding."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from schema_fixtures import mixed_rows, mixed_schema

from autotraining import strictjson
from autotraining.encoding import Encoding
from autotraining.records import Record
from autotraining.schema import Schema, SchemaError, load_schema
from autotraining.validation import FieldError, InvalidInput, validate_records, validate_rows

LABELED = [{**row, "label": "cool"} for row in mixed_rows()]


def write(tmp_path: Path, features: list[dict[str, Any]]) -> str:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"name": "t", "features": features, "labels": ["a", "b"]}))
    return str(path)


@pytest.mark.parametrize("feature, says", [
    ({"name": "x", "type": "string"}, "type must be one of"),
    ({"name": "x", "type": "category"}, "a category needs 'values'"),
    ({"name": "x", "type": "category", "values": ["a", "a"]}, "repeated value"),
    ({"name": "x", "type": "boolean", "min": 0}, "'min' applies to number and integer"),
    ({"name": "x", "type": "number", "values": ["a"]}, "'values' applies to category"),
    ({"name": "x", "optional": "yes"}, "'optional' must be true or false"),
    ({"name": "x", "mni": 3}, "unknown key 'mni'"),
    ({"name": "x", "min": 5, "max": 1}, "min must be below max"),
    ({"name": "x", "min": 0, "max": 10, "impute": 11}, "'impute' must lie inside"),
])
def test_a_bad_schema_file_is_refused_in_one_line_naming_file_and_feature(tmp_path: Path, feature: dict[str, Any],
                                                                          says: str) -> None:
    path = write(tmp_path, [{"name": "ok"}, feature])
    with pytest.raises(SchemaError) as info:
        load_schema(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: feature 'x': ") and says in message


def test_unbounded_features_write_no_infinity(schema: Schema) -> None:
    s = Schema.from_dict({"features": [{"name": "a"}, {"name": "b", "min": 0}], "labels": ["x", "y"]})
    text = json.dumps(s.to_dict(), allow_nan=False)  # raises on Infinity
    assert Schema.from_dict(json.loads(text)) == s
    assert strictjson.dumps({"v": [math.inf, -math.inf, math.nan, 1.5]}) == '{"v": [null, null, null, 1.5]}'


def test_content_hash_follows_content_not_layout(tmp_path: Path) -> None:
    s = mixed_schema()
    again = Schema.from_dict(json.loads(json.dumps(s.to_dict(), indent=4)))
    assert again.content_hash == s.content_hash and s.tag == f"device_health@{s.content_hash}"
    wider = Schema.from_dict({**s.to_dict(), "labels": ["cool", "warm", "hot", "melting"]})
    assert wider.content_hash != s.content_hash


def test_mixed_rows_validate_to_typed_values() -> None:
    records = validate_records(LABELED, mixed_schema())
    assert [r.features for r in records] == [
        ("phone", True, 31.5, 12.0), ("tablet", False, None, 80.0), ("laptop", True, None, 55.5),
        ("smartwatch", False, 44.0, 99.0), ("laptop", False, -3.25, 0.0)]


@pytest.mark.parametrize("change, field, message", [
    ({"charging": 1}, "charging", "must be true or false, got a number"),
    ({"charging": "true"}, "charging", "must be true or false, got a string"),
    ({"device": 3}, "device", "must be a string (one of phone, tablet, laptop), got a number"),
    ({"charging": None}, "charging", "is null; true or false is required"),
    ({"cpu_load": None}, "cpu_load", "is null; a number is required"),
    ({"battery_temp": "hot"}, "battery_temp", "must be a number, got a string"),
    ({"battery_temp": 81}, "battery_temp", "81 is out of range [-20, 80]"),
])
def test_each_typed_refusal_names_the_field(change: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_records([LABELED[0], {**LABELED[0], **change}], mixed_schema())
    assert info.value.errors == [FieldError(1, field, message)] and info.value.status == 400


def test_an_unseen_category_is_refused_unless_the_feature_has_other() -> None:
    closed = Schema.from_dict({**mixed_schema().to_dict(), "features": [
        {"name": "device", "type": "category", "values": ["phone", "tablet", "laptop"]}]})
    with pytest.raises(InvalidInput) as info:
        validate_rows([{"device": "phone"}, {"device": "smartwatch"}], closed)
    assert info.value.errors == [FieldError(1, "device", "'smartwatch' is not a known value; one of phone, "
                                                       "tablet, laptop")]
    assert validate_rows([{**mixed_rows()[0], "device": "smartwatch"}], mixed_schema())[0][0] == "smartwatch"


def test_a_missing_required_feature_is_refused_and_every_bad_field_listed() -> None:
    rows = [{"device": "tv", "charging": 0, "label": "cool"}, {"charging": True, "cpu_load": 1, "label": "x"}]
    closed = mixed_schema()
    with pytest.raises(InvalidInput) as info:
        validate_records(rows, closed)
    assert [(e.index, e.field) for e in info.value.errors] == [
        (0, "charging"), (0, "cpu_load"), (1, "device"), (1, "label")]


def test_typed_records_round_trip_through_dynamodb_and_the_log() -> None:
    s = mixed_schema()
    for r in validate_records(LABELED, s):
        item = r.to_item(s)
        assert set(item) == {"id", "label", "created", *s.feature_names}
        assert Record.from_item(item, s) == r
        assert Record.from_log_dict(json.loads(r.to_log_line(s)), s) == r
    item = validate_records(LABELED[1:2], s)[0].to_item(s)
    assert item["device"] == {"S": "tablet"} and item["charging"] == {"BOOL": False}
    assert item["battery_temp"] == {"NULL": True} and item["cpu_load"] == {"N": "80"}


def test_a_log_line_without_a_newer_optional_feature_reads_as_missing() -> None:
    s = mixed_schema()
    old_line = {"id": "a", "device": "phone", "charging": True, "cpu_load": 3, "label": "cool", "created": 1}
    assert Record.from_log_dict(old_line, s).features == ("phone", True, None, 3.0)
    with pytest.raises(ValueError):
        Record.from_log_dict({**old_line, "charging": "yes"}, s)


def test_encoding_one_hots_categories_flags_booleans_and_imputes_missing() -> None:
    s = mixed_schema()
    enc = Encoding.from_schema(s)
    assert enc.columns == ("device=phone", "device=tablet", "device=laptop", "device=(other)", "charging",
                           "battery_temp", "battery_temp?missing", "cpu_load")
    x = enc.encode(validate_rows(mixed_rows(), s))
    assert x.tolist() == [
        [1, 0, 0, 0, 1, 31.5, 0, 12.0], [0, 1, 0, 0, 0, 30.0, 1, 80.0], [0, 0, 1, 0, 1, 30.0, 1, 55.5],
        [0, 0, 0, 1, 0, 44.0, 0, 99.0], [0, 0, 1, 0, 0, -3.25, 0, 0.0]]
    assert Encoding.from_dict(json.loads(json.dumps(enc.to_dict()))) == enc


def test_plain_numeric_schemas_encode_as_their_raw_values(schema: Schema) -> None:
    enc = Encoding.from_schema(schema)
    assert enc == Encoding.identity(schema.feature_names) and enc.columns == schema.feature_names
    assert enc.encode([(70.0, 50.0, 0.6, 0.1)]).tolist() == [[70.0, 50.0, 0.6, 0.1]]


def test_migrate_fills_columns_of_a_new_optional_feature_and_a_new_category_value() -> None:
    s = mixed_schema()
    d = s.to_dict()
    d["features"][0]["values"].append("watch")
    d["features"].append({"name": "fan", "type": "boolean", "optional": True})
    old, new = Encoding.from_schema(s), Encoding.from_schema(Schema.from_dict(d))
    rows = validate_rows(mixed_rows(), s)
    migrated = new.migrate(old.encode(rows), old)
    assert np.array_equal(migrated, new.encode([(*r, None) for r in rows]))


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_generated_typed_records_round_trip_through_every_file_format(tmp_path: Path, fmt: str) -> None:
    from schema_fixtures import MIXED_SCHEMA_FILE

    from autotraining.generator import generate
    from autotraining_tools.cli import main
    from autotraining_tools.rowfiles import read_rows

    path = tmp_path / f"out.{fmt}"
    assert main(["generate", "-n", "200", "--seed", "3", "--schema", MIXED_SCHEMA_FILE, "--out", str(path)]) == 0
    records = generate(mixed_schema(), 200, seed=3)
    assert any(None in r.features for r in records) and any("unseen" in str(r.features[0]) for r in records)
    assert validate_records(list(read_rows(path.read_text(), fmt).rows), mixed_schema()) == records


def test_segments_say_which_schema_wrote_them() -> None:
    from autotraining.segments import SegmentRef

    ref = SegmentRef(key="log/s/1-2.jsonl.gz", count=2, schema=mixed_schema().tag)
    assert SegmentRef.from_message(ref.to_message()) == ref
    old = '{"key": "log/s/1-2.jsonl.gz", "count": 2}'  # a message from before schema tags still reads
    assert SegmentRef.from_message(old).schema == ""


def test_upload_refusals_answer_400_and_write_nothing(aws: Any, tmp_path: Path) -> None:
    from schema_fixtures import MIXED_SCHEMA_FILE
    from serving_fixtures import http_event

    from autotraining.aws import Aws
    from handlers.upload import handle

    typed = Aws(aws.settings.replace(schema_file=MIXED_SCHEMA_FILE))
    closed = Aws(aws.settings.replace(schema_file=write(tmp_path, [
        {"name": "device", "type": "category", "values": ["phone"]}, {"name": "cpu_load"}])))

    def stored() -> list[Any]:
        return typed.dynamodb.scan(TableName=typed.settings.records_table)["Items"]

    bad = [LABELED[0], {**LABELED[1], "charging": "true"}, {**LABELED[2], "cpu_load": None},
           {"charging": True, "cpu_load": 1, "label": "cool"}]
    response = handle(http_event("POST", "/records", bad), typed)
    assert response["statusCode"] == 400 and stored() == []
    assert [(e["index"], e["field"]) for e in json.loads(response["body"])["errors"]] == [
        (1, "charging"), (2, "cpu_load"), (3, "device")]
    response = handle(http_event("POST", "/records", [{"device": "tv", "cpu_load": 1, "label": "a"}]), closed)
    assert response["statusCode"] == 400 and stored() == []
    assert json.loads(response["body"])["errors"][0]["field"] == "device"
    ok = handle(http_event("POST", "/records", [{**LABELED[0], "device": "tv"}]), typed)  # "other" takes it
    assert ok["statusCode"] == 201 and len(stored()) == 1

