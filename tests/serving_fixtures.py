"""Publish small real models for the serving tests (and anyone else's) without the worker.

``export_model`` builds a tiny legacy-Keras model over the schema's features (scaling folded
into the first Dense layer, softmax over ``schema.labels``), fits it briefly on the project's
own seeded generator, and exports it with ``tensorflowjs`` exactly as the worker publishes:
``model.json`` + ``group1-shard1of1.bin`` and ``model.h5``. The export is cached per process,
so only the first call pays for TensorFlow. ``publish`` puts those bytes plus a
``metadata.json`` under ``models/<version>/`` and commits the round via
``Registry.commit_round`` (the real commit point); it needs no TensorFlow.

    from serving_fixtures import export_model, publish   # tests/ is on sys.path under pytest
    artifact = export_model(schema)
    publish(aws, schema, artifact)                        # version 000001, serving
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from autotraining.artifacts import KERAS_FILE, METADATA_JSON, model_key
from autotraining.aws import Aws
from autotraining.encoding import Encoding
from autotraining.generator import generate
from autotraining.registry import STATUS_PUBLISHED, STATUS_REJECTED, ModelVersion, Registry, version_name
from autotraining.schema import Schema


@dataclass(frozen=True)
class ModelArtifact:
    """The files of one exported model (file name → bytes) and the Keras model they came from."""

    files: dict[str, bytes]
    keras_model: Any = field(compare=False, repr=False)
    seed: int = 0


def _encoded(schema: Schema, records: list[Any]) -> np.ndarray:
    """The model inputs of ``records`` (raw values for a plain numeric schema; see autotraining.encoding)."""
    return Encoding.from_schema(schema).encode([r.features for r in records])


def _standardization(schema: Schema) -> tuple[np.ndarray, np.ndarray]:
    x = _encoded(schema, generate(schema, 2000, seed=12345))
    return x.mean(axis=0), np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)


@lru_cache(maxsize=16)
def export_model(schema: Schema, seed: int = 0, hidden: tuple[int, ...] = (16,), activation: str = "relu",
                 epochs: int = 6, dropout: float = 0.0) -> ModelArtifact:
    """A small trained model over raw features, exported like the worker exports (cached)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # tensorflow_decision_forests (imported by tensorflowjs) imports IPython to greet when stdout is
    # not a terminal (pytest's capture); the variable turns the greeting off.
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    import tensorflow as tf
    import tensorflowjs

    keras = tf.keras
    tf.random.set_seed(seed)
    mu, sigma = _standardization(schema)
    records = generate(schema, 3000, seed=seed + 1)
    x = _encoded(schema, records).astype(np.float32)
    y = np.array([schema.label_index(r.label) for r in records])
    layers: list[Any] = [keras.layers.InputLayer(input_shape=(x.shape[1],))]
    for units in hidden:
        layers.append(keras.layers.Dense(units, activation=activation))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(len(schema.labels), activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    if epochs:
        model.fit(((x - mu) / sigma).astype(np.float32), y, epochs=epochs, batch_size=64, verbose=0)
    # Fold the standardization into the first Dense layer: W' = W / σ (row-wise), b' = b − (μ/σ)·W.
    first = model.layers[0]
    w, b = first.get_weights()
    first.set_weights([(w / sigma[:, None]).astype(np.float32), (b - (mu / sigma) @ w).astype(np.float32)])
    with tempfile.TemporaryDirectory() as tmp:
        tensorflowjs.converters.save_keras_model(model, tmp)
        model.save(str(Path(tmp) / KERAS_FILE), save_format="h5")
        files = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
    return ModelArtifact(files=files, keras_model=model, seed=seed)


def publish(aws: Aws, schema: Schema, artifact: ModelArtifact, *, records_seen: int = 1000, new_records: int = 1000,
            holdout_accuracy: float = 0.9, prequential_accuracy: float | None = None,
            metrics: dict[str, Any] | None = None) -> ModelVersion:
    """Upload the artifact as the next round's model and commit it as published (serving)."""
    return _commit(aws, schema, artifact, STATUS_PUBLISHED, records_seen, new_records, holdout_accuracy,
                   prequential_accuracy, "passed", metrics)


def commit_rejected(aws: Aws, schema: Schema, *, records_seen: int, new_records: int = 500,
                    holdout_accuracy: float = 0.5, gate: str = "worse by 0.400") -> ModelVersion:
    """Commit a rejected round: no new model, the parent's keeps serving."""
    return _commit(aws, schema, None, STATUS_REJECTED, records_seen, new_records, holdout_accuracy, None, gate)


def _commit(aws: Aws, schema: Schema, artifact: ModelArtifact | None, status: str, records_seen: int,
            new_records: int, holdout: float, prequential: float | None, gate: str,
            metrics: dict[str, Any] | None = None) -> ModelVersion:
    registry = Registry(aws.dynamodb, aws.settings.models_table)
    latest = registry.latest()
    version = version_name(int(latest.round_version) + 1 if latest else 1)
    serving = latest.model_version if latest else ""
    created = int(time.time() * 1000)
    if artifact is not None:
        serving = version
        metadata = {"version": version, "parent": latest.round_version if latest else "", "created": created,
                    "schema": schema.to_dict(), "schema_hash": schema.content_hash,
                    "encoding": Encoding.from_schema(schema).to_dict(), "labels": list(schema.labels),
                    "feature_names": list(schema.feature_names), "records_seen": records_seen,
                    "new_records": new_records, "segments": [], "metrics": {"holdout_accuracy": holdout},
                    "gate": gate}
        files = dict(artifact.files)
        files[METADATA_JSON] = json.dumps(metadata).encode()
        for name, body in files.items():
            aws.s3.put_object(Bucket=aws.settings.bucket, Key=model_key(version, name), Body=body)
    round_ = ModelVersion(version=version, parent=latest.round_version if latest else "", created=created,
                          status=status, model_version=serving, records_seen=records_seen,
                          new_records=new_records, prequential_accuracy=prequential, holdout_accuracy=holdout,
                          parent_holdout_accuracy=None, gate=gate, duration_s=1.5, metrics=metrics or {})
    registry.commit_round(latest.round_version if latest else None, round_)
    return round_


def http_event(method: str, raw_path: str, body: Any = None, path_parameters: dict[str, str] | None = None,
               query: dict[str, str] | None = None) -> dict[str, Any]:
    """An API Gateway v2 (payload 2.0) event as the HTTP API delivers it to a handler."""
    text = body if body is None or isinstance(body, str) else json.dumps(body)
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": f"{method} {raw_path}", "rawPath": raw_path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": method, "path": raw_path}, "stage": "$default"},
        "isBase64Encoded": False,
    }
    if text is not None:
        event["body"] = text
    if path_parameters is not None:
        event["pathParameters"] = path_parameters
    if query is not None:
        event["queryStringParameters"] = query
    return event


ROOT = Path(__file__).resolve().parents[1]
TFJS_SCRIPT = ROOT / "tests" / "js" / "tfjs_predict.mjs"


def tfjs_predict(model_url: str, rows: list[list[float]] | list[dict[str, Any]], feature_names: list[str],
                 repeat: int = 1, timeout: float = 120.0, backend: str = "cpu") -> dict[str, Any]:
    """Run the real TensorFlow.js (node_modules) in Node on ``rows`` with the model at ``model_url``
    on ``backend`` (``cpu``, pure JS, or ``wasm``).

    Rows as lists are the model's inputs; rows as objects (typed values by feature name) are encoded
    in Node by ``handlers/static/encoding.js`` with the model's own ``metadata.json``, as the dashboard does."""
    import subprocess

    if not (ROOT / "node_modules" / "@tensorflow" / "tfjs" / "package.json").exists():
        raise RuntimeError("node_modules/@tensorflow/tfjs is missing: run `make install` (npm ci)")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"feature_names": feature_names, "rows": rows}, f)
    try:
        out = subprocess.run(["node", str(TFJS_SCRIPT), model_url, f.name, "--repeat", str(repeat),
                              "--backend", backend], cwd=ROOT,
                             capture_output=True, text=True, timeout=timeout)
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        raise RuntimeError(f"TensorFlow.js in Node failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def post_json(url: str, payload: Any, timeout: float = 60.0) -> tuple[int, Any]:
    """POST JSON and return (status, parsed body), 4xx/5xx included."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
