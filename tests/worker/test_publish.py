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
