"""POST /predict never serves a corrupted published model: every file is checked against the sha256
its committed round recorded, and a mismatch keeps the last good model serving with one error."""
from __future__ import annotations

import json

from serving_fixtures import export_model, http_event, publish
from structlog.testing import capture_logs

from autotraining.artifacts import HASHES_METRIC, METADATA_JSON, MODEL_JSON, file_hashes, model_key
from autotraining.aws import Aws
from autotraining.generator import generate_features
from autotraining.predictor import Predictor
from autotraining.serving import ModelCache
from handlers import infer

SHARD = "group1-shard1of1.bin"


def _predict(aws: Aws, cache: ModelCache, rows: list) -> dict:
    resp = infer.handle(http_event("POST", "/predict", {"rows": rows}), aws, cache)
    assert resp["statusCode"] == 200, resp["body"]
    return json.loads(resp["body"])


def test_a_shard_overwritten_with_other_valid_weights_is_refused_and_the_good_model_keeps_serving(aws, schema):
    aws = Aws(aws.settings.replace(model_cache_seconds=0))  # check the registry on every request
    cache = ModelCache.for_aws(aws)  # the handler's own wiring
    rows = [dict(zip(schema.feature_names, r, strict=True)) for r in generate_features(schema, 5, seed=3)]
    first, second = export_model(schema, seed=0), export_model(schema, seed=1)
    good = publish(aws, schema, first, metrics={HASHES_METRIC: file_hashes(first.files)})
    assert _predict(aws, cache, rows)["version"] == good.version
    bad = publish(aws, schema, second, metrics={HASHES_METRIC: file_hashes(second.files)})
    # the injected fault: the new version's shard replaced by other bytes of the same size that still
    # parse as weights (the first model's), so only the hash tells them apart
    bucket = aws.settings.bucket
    aws.s3.put_object(Bucket=bucket, Key=model_key(bad.version, SHARD), Body=first.files[SHARD])
    unchecked = Predictor.from_s3(aws.s3, bucket, bad.version)  # would load, and answer with mixed weights
    assert unchecked.version == bad.version
    with capture_logs() as logs:
        answers = [_predict(aws, cache, rows) for _ in range(3)]
    assert {a["version"] for a in answers} == {good.version}
    errors = [e for e in logs if e["log_level"] == "error"]
    assert len(errors) == 1 and errors[0]["event"] == "model.load_failed"
    assert errors[0]["version"] == bad.version and errors[0]["serving"] == good.version
    assert "CorruptArtifact" in errors[0]["error"] and model_key(bad.version, SHARD) in errors[0]["error"]
    # repaired: the committed bytes are back, and the new version serves
    aws.s3.put_object(Bucket=bucket, Key=model_key(bad.version, SHARD), Body=second.files[SHARD])
    assert _predict(aws, cache, rows)["version"] == bad.version


def test_a_rewritten_model_json_is_refused_even_when_it_parses(aws, schema):
    aws = Aws(aws.settings.replace(model_cache_seconds=0))
    cache = ModelCache.for_aws(aws)
    rows = [dict(zip(schema.feature_names, r, strict=True)) for r in generate_features(schema, 2, seed=4)]
    artifact = export_model(schema, seed=0)
    good = publish(aws, schema, artifact, metrics={HASHES_METRIC: file_hashes(artifact.files)})
    assert _predict(aws, cache, rows)["version"] == good.version
    bad = publish(aws, schema, artifact, metrics={HASHES_METRIC: file_hashes(artifact.files)})
    doc = json.loads(artifact.files[MODEL_JSON])
    doc["generatedBy"] = "someone else"  # still a valid model.json, not the committed one
    aws.s3.put_object(Bucket=aws.settings.bucket, Key=model_key(bad.version, MODEL_JSON), Body=json.dumps(doc).encode())
    with capture_logs() as logs:
        assert _predict(aws, cache, rows)["version"] == good.version
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["model.load_failed"]


def test_a_model_committed_without_hashes_still_loads(aws, schema):
    # rounds committed before hashes were recorded: nothing to check against, served as before
    aws = Aws(aws.settings.replace(model_cache_seconds=0))
    artifact = export_model(schema, seed=0)
    old = publish(aws, schema, artifact)
    rows = [dict(zip(schema.feature_names, r, strict=True)) for r in generate_features(schema, 2, seed=5)]
    assert _predict(aws, ModelCache.for_aws(aws), rows)["version"] == old.version
    assert METADATA_JSON not in file_hashes(artifact.files)  # metadata.json is never in the hashed set
