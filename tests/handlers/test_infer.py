"""POST /predict: validation like uploads, 503 before a model, answers equal to Keras, reload on publish, no TF."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from serving_fixtures import commit_rejected, export_model, http_event, publish

from autotraining.aws import Aws
from autotraining.generator import generate_features
from autotraining.predictor import Predictor
from autotraining.registry import Registry
from autotraining.serving import ModelCache
from autotraining.settings import Settings
from autotraining_tools.local.provision import provision
from handlers import infer

ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _cache(aws: Aws, clock: FakeClock | None = None) -> ModelCache:
    s = aws.settings
    return ModelCache(Registry(aws.dynamodb, s.models_table), lambda v: Predictor.from_s3(aws.s3, s.bucket, v),
                      ttl=s.model_cache_seconds, clock=clock or FakeClock())


def _predict(aws: Aws, cache: ModelCache, body: object) -> tuple[int, dict]:
    resp = infer.handle(http_event("POST", "/predict", body), aws, cache)
    return resp["statusCode"], json.loads(resp["body"])


class UntouchableCache:
    """A model cache that fails the test if asked for a model: refusals must come before any model load."""

    def get(self) -> None:
        raise AssertionError("the model was loaded for a request that should have been refused")


OFFLINE = Aws(Settings())  # no call is made through it: validation needs only the settings


def _refused(body: object) -> tuple[int, dict]:
    return _predict(OFFLINE, UntouchableCache(), body)  # type: ignore[arg-type]


def _rows(schema, n: int, seed: int = 7) -> list[dict[str, float]]:
    return [dict(zip(schema.feature_names, map(float, r), strict=False)) for r in generate_features(schema, n, seed)]


def test_predict_before_any_model_answers_503_with_a_clear_message(aws, schema):
    status, body = _predict(aws, _cache(aws), _rows(schema, 1))
    assert status == 503
    assert "no model has been published yet" in body["message"]


def test_predict_after_only_a_rejected_round_still_answers_503(aws, schema):
    commit_rejected(aws, schema, records_seen=100)
    status, _ = _predict(aws, _cache(aws), _rows(schema, 1))
    assert status == 503


@pytest.mark.parametrize("body, expected", [
    ([{"temp": 70, "rh": 40, "clo": 0.5}], [{"index": 0, "field": "wind",
                                             "message": "missing; every schema feature is required"}]),
    ([{"temp": 70, "rh": 40, "clo": 0.5, "wind": None}], [{"index": 0, "field": "wind",
                                                           "message": "is null; a number is required"}]),
    ([{"temp": "hot", "rh": 40, "clo": 0.5, "wind": 0.1}], [{"index": 0, "field": "temp",
                                                             "message": "must be a number, got a string"}]),
    ([{"temp": 70, "rh": 40, "clo": 0.5, "wind": 0.1, "colour": 1}],
     [{"index": 0, "field": "colour", "message": "unknown field; allowed: clo, id, label, rh, temp, wind"}]),
    ([{"temp": 70, "rh": 40, "clo": 0.5, "wind": 0.1}, 5], [{"index": 1, "field": None,
                                                             "message": "must be a JSON object, got a number"}]),
    ([], [{"index": None, "field": None, "message": "the array is empty; send at least one row"}]),
    ({"records": []}, [{"index": None, "field": None,
                        "message": "send a JSON array or an object with only the key 'rows'"}]),
])
def test_invalid_rows_answer_400_with_the_upload_error_format(body, expected):
    status, answer = _refused(body)
    assert status == 400
    assert answer["errors"] == expected
    assert answer["message"]


def test_out_of_range_feature_names_the_range(schema):
    row = {"temp": 70, "rh": 40, "clo": 0.5, "wind": 0.1}
    row[schema.features[0].name] = schema.features[0].max + 1
    status, answer = _refused([row])
    assert status == 400
    assert answer["errors"][0]["field"] == schema.features[0].name
    assert "out of range" in answer["errors"][0]["message"]


@pytest.mark.parametrize("raw", ["not json", "", "[NaN]", '[{"temp": Infinity}]'])
def test_unparseable_bodies_answer_400(raw):
    status, answer = _refused(raw)
    assert status == 400
    assert answer["errors"][0]["index"] is None


def test_too_many_rows_answer_413():
    status, _ = _refused([{"temp": 70, "rh": 40, "clo": 0.5, "wind": 0.1}] * 10_001)
    assert status == 413


def test_non_post_answers_405():
    resp = infer.handle(http_event("GET", "/predict"), OFFLINE, UntouchableCache())  # type: ignore[arg-type]
    assert resp["statusCode"] == 405


def test_predictions_equal_keras_on_the_published_weights(aws, schema):
    artifact = export_model(schema)
    round_ = publish(aws, schema, artifact)
    rows = _rows(schema, 200)
    status, answer = _predict(aws, _cache(aws), {"rows": rows})
    assert status == 200
    assert answer["version"] == round_.version
    x = np.array([[r[f] for f in schema.feature_names] for r in rows], dtype=np.float32)
    expected = artifact.keras_model.predict(x, verbose=0)
    got = np.array([[p["probabilities"][label] for label in schema.labels] for p in answer["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [p["label"] for p in answer["predictions"]] == [schema.labels[i] for i in expected.argmax(axis=1)]
    assert len({p["label"] for p in answer["predictions"]}) > 1  # the fixture model is not constant


def test_model_reloads_when_latest_moves_but_only_after_the_cache_period(aws, schema):
    clock = FakeClock()
    cache = _cache(aws, clock)
    first = publish(aws, schema, export_model(schema, seed=0))
    rows = _rows(schema, 20)
    _, a1 = _predict(aws, cache, rows)
    second = publish(aws, schema, export_model(schema, seed=1))
    clock.now += aws.settings.model_cache_seconds / 2
    _, a2 = _predict(aws, cache, rows)
    assert a2["version"] == first.version == a1["version"]  # not re-checked yet
    clock.now += aws.settings.model_cache_seconds
    _, a3 = _predict(aws, cache, rows)
    assert a3["version"] == second.version
    assert a3["predictions"] != a1["predictions"]
    commit_rejected(aws, schema, records_seen=3000)  # a rejected round: the same model keeps serving
    clock.now += aws.settings.model_cache_seconds
    _, a4 = _predict(aws, cache, rows)
    assert a4["version"] == second.version
    assert cache.loads == 2


def test_registry_is_checked_at_most_once_per_cache_period(aws, schema):
    publish(aws, schema, export_model(schema))
    clock = FakeClock()
    cache = _cache(aws, clock)
    calls = []
    original = cache.registry.latest
    cache.registry.latest = lambda: calls.append(1) or original()  # type: ignore[method-assign]
    for _ in range(50):
        _predict(aws, cache, _rows(schema, 1))
    assert len(calls) == 1


def test_handler_answers_from_the_environment_settings(aws, schema, monkeypatch):
    publish(aws, schema, export_model(schema))
    for key, value in aws.settings.to_env().items():
        if value:
            monkeypatch.setenv(key, value)
    infer._container.cache_clear()
    try:
        resp = infer.handler(http_event("POST", "/predict", _rows(schema, 3)), None)
    finally:
        infer._container.cache_clear()
    assert resp["statusCode"] == 200
    assert len(json.loads(resp["body"])["predictions"]) == 3


def test_tensorflow_is_not_imported_after_the_handler_answered(moto_server_url, schema):
    """A fresh interpreter imports the handler and answers a request: no TensorFlow module gets loaded."""
    settings = provision(Aws(Settings(endpoint_url=moto_server_url)), prefix=f"notf-{uuid.uuid4().hex[:8]}")
    publish(Aws(settings), schema, export_model(schema))
    script = (
        "import json, sys\n"
        "import handlers.infer as h\n"
        "import handlers.model_proxy, handlers.generator  # the rest of the serving side\n"
        f"event = {http_event('POST', '/predict', _rows(schema, 5))!r}\n"
        "resp = h.handler(event, None)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras', 'tensorflowjs'))\n"
        "print(json.dumps({'status': resp['statusCode'], 'heavy': heavy, 'n': len(json.loads(resp['body'])['predictions'])}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOTRAINING_")}
    env.update({k: v for k, v in settings.to_env().items() if v})
    env["AUTOTRAINING_LOG_FORMAT"] = "json"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"status": 200, "heavy": [], "n": 5}


def test_a_committed_version_whose_files_are_not_promoted_yet_keeps_the_previous_model(aws, schema):
    """The worker commits before it copies files to models/<version>/: serve the old model meanwhile."""
    clock = FakeClock()
    cache = _cache(aws, clock)
    status, _ = _predict(aws, cache, _rows(schema, 1))
    assert status == 503
    first = publish(aws, schema, export_model(schema))
    clock.now += aws.settings.model_cache_seconds
    assert _predict(aws, cache, _rows(schema, 1))[1]["version"] == first.version
    clock.now += aws.settings.model_cache_seconds
    registry = Registry(aws.dynamodb, aws.settings.models_table)
    pending = first.__class__(**{**first.to_dict(), "segments": (), "version": "000002", "parent": first.version,
                                 "model_version": "000002"})
    registry.commit_round(first.version, pending)  # committed, files not in models/000002/ yet
    status, answer = _predict(aws, cache, _rows(schema, 2))
    assert status == 200 and answer["version"] == first.version
    fresh = _cache(aws)  # a new container (cold start) serves the model that served before
    status, answer = _predict(aws, fresh, _rows(schema, 1))
    assert status == 200 and answer["version"] == first.version


def test_a_cold_container_serves_the_previous_model_until_the_newest_is_promoted(aws, schema):
    """A container started between a round's commit and its promotion (or when the newest files are
    corrupt) falls back along the rounds' parents, past rejected rounds, and moves on once it can."""
    clock = FakeClock()
    first = publish(aws, schema, export_model(schema))
    commit_rejected(aws, schema, records_seen=1500)  # keeps ``first`` serving
    second = publish(aws, schema, export_model(schema, seed=1))
    promoted = {k["Key"]: aws.s3.get_object(Bucket=aws.settings.bucket, Key=k["Key"])["Body"].read()
                for k in aws.s3.list_objects_v2(Bucket=aws.settings.bucket,
                                                Prefix=f"models/{second.version}/")["Contents"]}
    for key in promoted:  # the newest round committed, its files not promoted yet
        aws.s3.delete_object(Bucket=aws.settings.bucket, Key=key)
    cache = _cache(aws, clock)
    status, answer = _predict(aws, cache, _rows(schema, 2))
    assert status == 200 and answer["version"] == first.version
    for key, body in promoted.items():  # the worker promotes
        aws.s3.put_object(Bucket=aws.settings.bucket, Key=key, Body=body)
    clock.now += aws.settings.model_cache_seconds
    assert _predict(aws, cache, _rows(schema, 2))[1]["version"] == second.version


def test_a_cold_container_with_no_older_model_answers_503_naming_the_newest(aws, schema):
    only = publish(aws, schema, export_model(schema))
    for obj in aws.s3.list_objects_v2(Bucket=aws.settings.bucket, Prefix=f"models/{only.version}/")["Contents"]:
        aws.s3.delete_object(Bucket=aws.settings.bucket, Key=obj["Key"])
    status, answer = _predict(aws, _cache(aws), _rows(schema, 1))
    assert status == 503 and f"model {only.version} is not available yet" in answer["message"]


class FixedCache:
    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    def get(self) -> Predictor:
        return self.predictor


def test_rows_are_fed_in_the_models_feature_order_and_a_foreign_model_answers_503(schema):
    artifact = export_model(schema)
    names = list(schema.feature_names)
    in_order = Predictor.from_bytes(artifact.files["model.json"], artifact.files,
                                    json.dumps({"version": "000001", "feature_names": names, "labels": list(schema.labels)}))
    # The same weights declared with the features in reverse order: the handler must reorder the columns.
    reversed_model = json.loads(artifact.files["model.json"])
    kernel_bytes = artifact.files["group1-shard1of1.bin"]
    n_in, n_hidden = len(names), 16
    kernel = np.frombuffer(kernel_bytes[:n_in * n_hidden * 4], dtype="<f4").reshape(n_in, n_hidden)[::-1]
    shard = kernel.astype("<f4").tobytes() + kernel_bytes[n_in * n_hidden * 4:]
    reordered = Predictor.from_bytes(json.dumps(reversed_model), {"group1-shard1of1.bin": shard}, json.dumps(
        {"version": "000001", "feature_names": names[::-1], "labels": list(schema.labels)}))
    rows = _rows(schema, 20)
    _, a = _predict(OFFLINE, FixedCache(in_order), rows)  # type: ignore[arg-type]
    _, b = _predict(OFFLINE, FixedCache(reordered), rows)  # type: ignore[arg-type]
    for p, q in zip(a["predictions"], b["predictions"], strict=True):
        assert p["probabilities"] == pytest.approx(q["probabilities"], abs=1e-5)  # float32 sums in another order
    foreign = Predictor.from_bytes(artifact.files["model.json"], artifact.files, json.dumps(
        {"version": "000009", "feature_names": [*names[:-1], "altitude"], "labels": list(schema.labels)}))
    status, answer = _predict(OFFLINE, FixedCache(foreign), rows)  # type: ignore[arg-type]
    assert status == 503 and "needs features ['altitude']" in answer["message"]


def test_a_truncated_model_json_published_after_a_good_one_keeps_the_good_one_serving_and_logs_once(aws, schema):
    from structlog.testing import capture_logs

    from autotraining.artifacts import MODEL_JSON, model_key

    clock = FakeClock()
    cache = _cache(aws, clock)
    artifact = export_model(schema)
    good = publish(aws, schema, artifact)
    assert _predict(aws, cache, _rows(schema, 1))[1]["version"] == good.version
    bad = publish(aws, schema, artifact)
    whole = artifact.files[MODEL_JSON]
    aws.s3.put_object(Bucket=aws.settings.bucket, Key=model_key(bad.version, MODEL_JSON), Body=whole[: len(whole) // 2])
    with capture_logs() as logs:
        for _ in range(3):
            clock.now += aws.settings.model_cache_seconds
            status, answer = _predict(aws, cache, _rows(schema, 2))
            assert status == 200 and answer["version"] == good.version
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [(e["event"], e["version"], e["serving"]) for e in errors] == [("model.load_failed", bad.version, good.version)]
    aws.s3.put_object(Bucket=aws.settings.bucket, Key=model_key(bad.version, MODEL_JSON), Body=whole)  # repaired
    clock.now += aws.settings.model_cache_seconds
    assert _predict(aws, cache, _rows(schema, 1))[1]["version"] == bad.version
