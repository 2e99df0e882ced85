"""Publishing: the TF.js export answers like Keras, a tampered export is refused, files land where serving reads."""
from __future__ import annotations

import json

import numpy as np
import pytest

from autotraining.artifacts import KERAS_FILE, METADATA_JSON, MODEL_JSON, model_key
from autotraining.generator import generate
from autotraining.predictor import Predictor
from worker import publish, trainer


@pytest.fixture(scope="module")
def trained() -> tuple[object, np.ndarray]:
    from autotraining.schema import load_schema

    s = load_schema()
    recs = generate(s, 600, seed=9)
    x = np.array([r.features for r in recs])
    y = np.array([s.label_index(r.label) for r in recs])
    return trainer.train(None, x, y, 3, trainer.TrainConfig(hidden=(8,), epochs=2)), x


def test_tfjs_export_is_legacy_keras_dense_only_and_matches_keras(trained) -> None:
    model, x = trained
    files = publish.files_for(model, trainer.fold(model), x[:32])
    assert set(files) == {MODEL_JSON, "group1-shard1of1.bin", KERAS_FILE}
    topology = json.loads(files[MODEL_JSON])["modelTopology"]
    layers = topology["model_config"]["config"]["layers"]
    assert "batch_input_shape" in layers[0]["config"]  # what TensorFlow.js 4.22 needs (not Keras 3's batch_shape)
    assert {layer["class_name"] for layer in layers} <= {"InputLayer", "Dense"}
    got = Predictor.from_bytes(files[MODEL_JSON], files).predict_proba(x[:100])
    assert np.allclose(got, trainer.predict_proba(model, x[:100]), atol=1e-5)


def test_export_that_answers_differently_is_refused(trained) -> None:
    model, x = trained
    files = publish.export_tfjs(trainer.fold(model))
    shard = bytearray(files["group1-shard1of1.bin"])
    shard[:8] = np.array([3.0, -3.0], dtype=np.float32).tobytes()
    files["group1-shard1of1.bin"] = bytes(shard)
    with pytest.raises(publish.ExportMismatch):
        publish.verify_export(files, trainer.predict_proba(model, x[:32]), x[:32])


def test_promote_copies_staged_files_and_removes_staging(aws) -> None:
    s3, bucket = aws.s3, aws.settings.bucket
    staged = publish.stage(s3, bucket, "000007", "abc", {MODEL_JSON: b"{}", METADATA_JSON: b"{}"}, b"state",
                           "state/000007-abc.npz")
    assert staged.staging == "staging/000007-abc/"
    publish.promote(s3, bucket, "000007", staged.staging, list(staged.files))
    assert s3.get_object(Bucket=bucket, Key=model_key("000007", MODEL_JSON))["Body"].read() == b"{}"
    assert s3.get_object(Bucket=bucket, Key=model_key("000007", MODEL_JSON))["ContentType"] == "application/json"
    assert not publish.exists(s3, bucket, "staging/000007-abc/model.json")
    assert publish.exists(s3, bucket, "state/000007-abc.npz")


def test_promote_writes_model_json_last() -> None:
    assert publish.promote_order([MODEL_JSON, KERAS_FILE, "group1-shard1of1.bin", METADATA_JSON])[-1] == MODEL_JSON


def test_promote_repeated_after_a_crash_finishes_without_rewriting(aws) -> None:
    s3, bucket = aws.s3, aws.settings.bucket
    staged = publish.stage(s3, bucket, "000008", "abc", {MODEL_JSON: b'{"a": 1}', METADATA_JSON: b"{}"}, b"state",
                           "state/000008-abc.npz")
    # The crash: metadata.json promoted, model.json not, the staged copies still there.
    s3.put_object(Bucket=bucket, Key=model_key("000008", METADATA_JSON), Body=b"{}", IfNoneMatch="*")
    etag = s3.head_object(Bucket=bucket, Key=model_key("000008", METADATA_JSON))["ETag"]
    publish.promote(s3, bucket, "000008", staged.staging, list(staged.files))
    assert s3.get_object(Bucket=bucket, Key=model_key("000008", MODEL_JSON))["Body"].read() == b'{"a": 1}'
    assert s3.head_object(Bucket=bucket, Key=model_key("000008", METADATA_JSON))["ETag"] == etag


def test_promote_never_replaces_a_published_file_with_other_bytes(aws) -> None:
    s3, bucket = aws.s3, aws.settings.bucket
    staged = publish.stage(s3, bucket, "000009", "abc", {MODEL_JSON: b'{"new": 1}'}, b"state", "state/000009-abc.npz")
    s3.put_object(Bucket=bucket, Key=model_key("000009", MODEL_JSON), Body=b'{"published": 1}')
    with pytest.raises(publish.ObjectExists, match="never overwrites"):
        publish.promote(s3, bucket, "000009", staged.staging, list(staged.files))
    assert s3.get_object(Bucket=bucket, Key=model_key("000009", MODEL_JSON))["Body"].read() == b'{"published": 1}'
    assert publish.exists(s3, bucket, staged.staging + MODEL_JSON)  # kept for an operator to look at


def test_a_state_write_retried_after_its_first_try_landed_succeeds(aws) -> None:
    s3, bucket = aws.s3, aws.settings.bucket
    publish.put_new(s3, bucket, "state/000010-abc.npz", b"state", "application/octet-stream")
    publish.put_new(s3, bucket, "state/000010-abc.npz", b"state", "application/octet-stream")
    with pytest.raises(publish.ObjectExists):
        publish.put_new(s3, bucket, "state/000010-abc.npz", b"other", "application/octet-stream")
    assert s3.get_object(Bucket=bucket, Key="state/000010-abc.npz")["Body"].read() == b"state"
