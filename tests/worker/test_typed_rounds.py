"""Rounds on a mixed-type schema, and schema changes across rounds (compatible, incompatible)."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from schema_fixtures import MIXED_SCHEMA_FILE, mixed_rows, mixed_schema

from autotraining.artifacts import METADATA_JSON, model_key
from autotraining.aws import Aws
from autotraining.encoding import Encoding
from autotraining.generator import generate
from autotraining.predictor import Predictor
from autotraining.records import Record
from autotraining.registry import Registry
from autotraining.schema import Schema
from autotraining.segments import SegmentRef, encode_segment, segment_key
from autotraining.serving import predict_rows
from autotraining.validation import validate_rows
from autotraining_tools.cli import UsageError


def write_schema(tmp_path: Any, schema: Schema, name: str) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(schema.to_dict()))
    return str(path)


def run_worker(aws: Aws, schema_file: str, tiny_config: Any, records: list[Record], schema: Schema, first: int,
               new_lineage: bool = False, drift_delta: float | None = None) -> Aws:
    from worker.cli import check_schema
    from worker.loop import Worker, WorkerOptions

    settings = aws.settings.replace(schema_file=schema_file, new_lineage=new_lineage)
    waws = Aws(settings if drift_delta is None else settings.replace(drift_delta=drift_delta))
    ref = SegmentRef(key=segment_key("shard-1", str(first), str(first + len(records) - 1)), count=len(records))
    waws.s3.put_object(Bucket=waws.settings.bucket, Key=ref.key, Body=encode_segment(records, schema))
    waws.sqs.send_message(QueueUrl=waws.settings.queue_url, MessageBody=ref.to_message())
    check_schema(waws)
    Worker(waws, WorkerOptions(once=True, poll_seconds=0, idle_grace=0.0, config=tiny_config)).run()
    return waws


@pytest.mark.slow
def test_a_mixed_schema_trains_publishes_its_encoding_and_serves_rows_with_missing_values(waws, tiny_config):
    schema = mixed_schema()
    run_worker(waws, MIXED_SCHEMA_FILE, tiny_config, generate(schema, 600, seed=1), schema, 100)
    registry = Registry(waws.dynamodb, waws.settings.models_table)
    version = registry.latest().model_version
    meta = json.loads(waws.s3.get_object(Bucket=waws.settings.bucket,
                                         Key=model_key(version, METADATA_JSON))["Body"].read())
    assert meta["schema_hash"] == schema.content_hash and meta["encoding"] == Encoding.from_schema(schema).to_dict()
    assert registry.get(version).metrics["schema"] == schema.tag
    predictor = Predictor.from_s3(waws.s3, waws.settings.bucket, version)
    answer = predict_rows(validate_rows(mixed_rows(), schema), schema, predictor)
    assert len(answer["predictions"]) == len(mixed_rows())
    for p in answer["predictions"]:
        assert abs(sum(p["probabilities"].values()) - 1) < 1e-5 and p["label"] in schema.labels


def changed(schema: Schema, **edits: Any) -> Schema:
    d = json.loads(json.dumps(schema.to_dict()))
    d["features"][0]["values"] += edits.get("new_values", [])
    d["features"] += edits.get("new_features", [])
    if edits.get("drop"):
        d["features"] = [f for f in d["features"] if f["name"] != edits["drop"]]
    return Schema.from_dict(d)


@pytest.mark.slow
def test_a_compatible_change_continues_the_lineage_with_a_widened_model(waws, tiny_config, tmp_path):
    from worker import lineage, trainer

    old = mixed_schema()
    run_worker(waws, MIXED_SCHEMA_FILE, tiny_config, generate(old, 500, seed=1), old, 100)
    new = changed(old, new_values=["watch"], new_features=[{"name": "fan", "type": "boolean", "optional": True}])
    registry = Registry(waws.dynamodb, waws.settings.models_table)

    # The widened model answers exactly like the old one on old rows, re-expressed.
    model = trainer.from_h5_bytes(waws.s3.get_object(Bucket=waws.settings.bucket,
                                                     Key=model_key("000001", "model.h5"))["Body"].read())
    old_enc, new_enc = Encoding.from_schema(old), Encoding.from_schema(new)
    x_old = old_enc.encode(validate_rows(mixed_rows(), old))
    wide = lineage.widen(model, old_enc, new_enc)
    np.testing.assert_allclose(trainer.predict_proba(wide, new_enc.migrate(x_old, old_enc)),
                               trainer.predict_proba(model, x_old), atol=1e-6)

    # The new schema's generated records also shift the label shares (hot 0.60 → 0.06), which the
    # drift monitor rightly reports, cutting the replay; the migration is what is checked here.
    run_worker(waws, write_schema(tmp_path, new, "new"), tiny_config, generate(new, 300, seed=2), new, 1000,
               drift_delta=0.0)
    v2 = registry.get("000002")
    assert v2.parent == "000001" and v2.records_seen == 800 and v2.metrics["schema"] == new.tag
    assert v2.metrics["encoding"]["columns"] == list(new_enc.columns)
    assert v2.metrics["reservoir_rows"] > 0  # the migrated replay sample was used
    served = Predictor.from_s3(waws.s3, waws.settings.bucket, registry.latest().model_version)
    rows = [{**r, "device": "watch", "fan": True} for r in mixed_rows()]
    assert len(predict_rows(validate_rows(rows, new), new, served)["predictions"]) == len(rows)


@pytest.mark.slow
def test_an_incompatible_change_is_refused_at_worker_start_unless_new_lineage(waws, tiny_config, tmp_path):
    old = mixed_schema()
    run_worker(waws, MIXED_SCHEMA_FILE, tiny_config, generate(old, 400, seed=1), old, 100)
    new = changed(old, drop="charging")
    path = write_schema(tmp_path, new, "dropped")
    with pytest.raises(UsageError) as info:
        run_worker(waws, path, tiny_config, generate(new, 300, seed=2), new, 1000)
    message = str(info.value)
    assert "\n" not in message and "feature 'charging' was removed" in message and "--new-lineage" in message
    registry = Registry(waws.dynamodb, waws.settings.models_table)
    assert registry.latest().round_version == "000001"  # nothing changed

    run_worker(waws, path, tiny_config, generate(new, 300, seed=2), new, 1000, new_lineage=True)
    v2 = registry.get("000002")
    # A fresh lineage (a first model, no warm start) over the same stream: records_seen still counts
    # every distinct record consumed (400 + 300), and the consumed ranges carry over, so nothing
    # logged before the change can be counted again.
    assert v2.parent == "000001" and v2.gate == "first model" and v2.records_seen == 700
    assert registry.get("000001").published  # the old version stays readable
    assert Predictor.from_s3(waws.s3, waws.settings.bucket, "000001").feature_names == old.feature_names


def test_metadata_json_is_strict_json_even_for_an_unbounded_feature():
    from autotraining.registry import ModelVersion
    from worker.publish import metadata

    schema = Schema.from_dict({"features": [{"name": "a"}, {"name": "b", "min": 0}], "labels": ["x", "y"]})
    round_ = ModelVersion(version="000001", parent="", created=1, status="published", model_version="000001",
                          records_seen=1, new_records=1, prequential_accuracy=float("nan"), holdout_accuracy=1.0,
                          parent_holdout_accuracy=None, gate="first model", duration_s=float("inf"),
                          metrics={"drift": float("-inf")})
    text = metadata(round_, schema, Encoding.from_schema(schema)).decode()
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in metadata.json"))
    assert doc["schema"]["features"][0] == {"name": "a", "type": "number", "unit": "", "description": "",
                                            "optional": False}
    assert doc["metrics"]["prequential_accuracy"] is None and doc["metrics"]["drift"] is None


def test_status_names_the_schema_the_serving_model_was_trained_on():
    from autotraining_tools.commands.status import serving_schema_line

    rounds = [{"version": "000003", "model_version": "000002", "metrics": {"schema": "t@abc"}},
              {"version": "000002", "model_version": "000002", "metrics": {"schema": "t@def"}}]
    assert serving_schema_line(rounds) == "serving model 000002 was trained on schema t@def"
    assert serving_schema_line([{"version": "000001", "model_version": "000001", "metrics": {}}]) == ""


def test_a_round_from_before_encodings_continues_only_when_its_width_fits():
    from types import SimpleNamespace

    from worker.lineage import continues, recorded_encoding

    legacy = SimpleNamespace(get=lambda version: SimpleNamespace(metrics={}))  # a registry with an old round
    enc = Encoding.from_schema(mixed_schema())
    assert recorded_encoding(legacy, "000001", enc.width, enc) == enc
    unknown = recorded_encoding(legacy, "000001", 4, enc)  # e.g. thermal comfort's 4 plain numbers
    assert unknown is None and not continues(unknown, enc)  # a fresh lineage, never a shape error


def test_the_replay_sample_is_migrated_row_for_row_into_a_wider_encoding():
    from worker.lineage import migrate_reservoir
    from worker.reservoir import Reservoir

    old_schema = mixed_schema()
    new_schema = changed(old_schema, new_features=[{"name": "fan", "type": "boolean", "optional": True}])
    old, new = Encoding.from_schema(old_schema), Encoding.from_schema(new_schema)
    rows = validate_rows(mixed_rows(), old_schema)
    r = Reservoir(capacity=10, n_features=old.width, seed=1)
    r.add(old.encode(rows), np.arange(len(rows)) % 3, np.arange(len(rows), dtype=np.uint64))
    m = migrate_reservoir(r, old, new)
    assert m.n_features == new.width and np.array_equal(m.y, r.y) and np.array_equal(m.ids, r.ids)
    assert np.array_equal(m.x, new.encode([(*row, None) for row in rows]))  # "fan" missing for old records
