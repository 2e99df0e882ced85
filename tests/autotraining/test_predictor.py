"""The numpy predictor against legacy Keras on the same weights, exported by tensorflowjs; refusals; its contract."""
from __future__ import annotations

import doctest
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from serving_fixtures import export_model

import autotraining.predictor
from autotraining.generator import generate_features
from autotraining.predictor import Predictor, UnsupportedModel


def _tf():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    import tensorflow as tf
    import tensorflowjs

    return tf, tensorflowjs


def _export(model, **kwargs) -> dict[str, bytes]:
    _, tfjs = _tf()
    with tempfile.TemporaryDirectory() as tmp:
        tfjs.converters.save_keras_model(model, tmp, **kwargs)
        return {p.name: p.read_bytes() for p in Path(tmp).iterdir()}


def _metadata(schema) -> str:
    return json.dumps({"version": "000007", "feature_names": list(schema.feature_names), "labels": list(schema.labels)})


def _x(schema, n: int = 500) -> np.ndarray:
    # Rows from each feature's whole range, not only the typical one: extreme inputs saturate activations.
    lo = np.array([f.min for f in schema.features])
    hi = np.array([f.max for f in schema.features])
    wide = np.random.default_rng(3).uniform(lo, hi, size=(n // 2, len(lo)))
    return np.vstack([generate_features(schema, n - n // 2, seed=5), wide])


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "elu", "selu", "softplus", "softsign",
                                        "hard_sigmoid", "swish", "relu6", "linear"])
def test_predictor_equals_keras_for_each_activation(schema, activation):
    artifact = export_model(schema, seed=2, hidden=(12, 8), activation=activation, epochs=2, dropout=0.2)
    predictor = Predictor.from_bytes(artifact.files["model.json"], artifact.files, _metadata(schema))
    x = _x(schema)
    expected = artifact.keras_model.predict(x.astype(np.float32), verbose=0)
    got = predictor.predict_proba(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_functional_chain_with_activation_layers_equals_keras(schema):
    tf, _ = _tf()
    k = tf.keras
    inputs = k.Input(shape=(len(schema.features),))
    h = k.layers.Dense(10)(inputs)
    h = k.layers.Activation("tanh")(h)
    h = k.layers.Dropout(0.5)(h)
    h = k.layers.Dense(6, activation="relu", use_bias=False)(h)
    out = k.layers.Dense(len(schema.labels))(h)
    out = k.layers.Activation("softmax")(out)
    model = k.Model(inputs, out)
    files = _export(model)
    predictor = Predictor.from_bytes(files["model.json"], files, _metadata(schema))
    x = _x(schema) / 50.0
    np.testing.assert_allclose(predictor.predict_proba(x), model.predict(x.astype(np.float32), verbose=0),
                               atol=1e-5, rtol=0)


def test_weights_split_over_several_shards_are_joined(schema):
    artifact = export_model(schema, seed=3, hidden=(64, 32), epochs=1)
    files = _export(artifact.keras_model, weight_shard_size_bytes=2048)
    manifest = json.loads(files["model.json"])["weightsManifest"]
    assert len(manifest[0]["paths"]) > 1
    predictor = Predictor.from_bytes(files["model.json"], files, _metadata(schema))
    x = _x(schema, 100)
    np.testing.assert_allclose(predictor.predict_proba(x), artifact.keras_model.predict(x.astype(np.float32),
                                                                                        verbose=0), atol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "uint16", "uint8"])
def test_quantized_weights_are_dequantized_like_tensorflowjs(schema, dtype):
    """The same model exported with quantized weights equals Keras running the dequantized weights."""
    tf, tfjs = _tf()
    artifact = export_model(schema, seed=2, hidden=(12, 8), activation="tanh", epochs=2)
    files = _export(artifact.keras_model, quantization_dtype_map={dtype: "*"})
    manifest = json.loads(files["model.json"])["weightsManifest"]
    assert manifest[0]["weights"][0]["quantization"]["dtype"] == dtype
    buffer = b"".join(files[path] for path in manifest[0]["paths"])
    dequantized = {w["name"]: w["data"] for w in tfjs.read_weights.decode_weights(manifest, [buffer], flatten=True)}
    keras = tf.keras.models.clone_model(artifact.keras_model)
    keras.set_weights([dequantized[w.name.split(":")[0]] for w in artifact.keras_model.weights])
    predictor = Predictor.from_bytes(files["model.json"], files, _metadata(schema))
    x = _x(schema, 200)
    np.testing.assert_allclose(predictor.predict_proba(x), keras.predict(x.astype(np.float32), verbose=0),
                               atol=1e-5, rtol=0)


def test_unknown_layer_is_refused_with_its_name_and_type(schema):
    tf, _ = _tf()
    k = tf.keras
    model = k.Sequential([k.layers.InputLayer(input_shape=(len(schema.features),)), k.layers.Dense(4),
                          k.layers.BatchNormalization(name="bn"), k.layers.Dense(len(schema.labels))])
    files = _export(model)
    with pytest.raises(UnsupportedModel, match="layer 'bn' of type 'BatchNormalization' is not supported"):
        Predictor.from_bytes(files["model.json"], files, _metadata(schema))


def test_unknown_activation_is_refused(schema):
    artifact = export_model(schema)
    model = json.loads(artifact.files["model.json"])
    model["modelTopology"]["model_config"]["config"]["layers"][1]["config"]["activation"] = "gelu"
    with pytest.raises(UnsupportedModel, match="activation 'gelu' is not supported"):
        Predictor.from_bytes(json.dumps(model), artifact.files, _metadata(schema))


def test_missing_shard_and_label_count_mismatch_are_refused(schema):
    artifact = export_model(schema)
    with pytest.raises(UnsupportedModel, match="shard 'group1-shard1of1.bin' is missing"):
        Predictor.from_bytes(artifact.files["model.json"], {}, _metadata(schema))
    wrong = json.dumps({"feature_names": list(schema.feature_names), "labels": ["a", "b"]})
    with pytest.raises(UnsupportedModel, match="2 labels"):
        Predictor.from_bytes(artifact.files["model.json"], artifact.files, wrong)


def test_predict_proba_never_mutates_its_input_and_has_no_side_effects(schema):
    artifact = export_model(schema)
    predictor = Predictor.from_bytes(artifact.files["model.json"], artifact.files, _metadata(schema))
    for x in (_x(schema, 50).astype(np.float32), _x(schema, 50), _x(schema, 50).tolist()):
        before = np.array(x, copy=True)
        first = predictor.predict_proba(x)
        second = predictor.predict_proba(x)
        np.testing.assert_array_equal(np.asarray(x), before)
        np.testing.assert_array_equal(first, second)
    assert predictor.version == "000007"
    rows = _x(schema, 30)
    assert predictor.predict_labels(rows) == [schema.labels[i] for i in predictor.predict_proba(rows).argmax(axis=1)]
    with pytest.raises(ValueError, match="expected rows of 4 features"):
        predictor.predict_proba(np.zeros((2, 3)))


def test_docstring_example_runs():
    result = doctest.testmod(autotraining.predictor)
    assert result.attempted > 0 and result.failed == 0

