"""The numpy predictor: the forward pass of a published TensorFlow.js layers model, without TensorFlow.

It reads the very bytes TensorFlow.js loads (``model.json`` + its weight shards) and the
version's ``metadata.json`` (its input encoding — ``autotraining.encoding`` — and label names), and computes the forward pass
in float32 like TensorFlow.js does, so the Lambda side, a browser and Keras give the same
probabilities (to about 1e-6). Supported: ``InputLayer``, ``Dense`` and ``Activation`` with the
activations below, ``Dropout``/``Flatten`` (identity at inference), in a ``Sequential`` model or a
functional model whose layers form one chain. Anything else is refused with
``UnsupportedModel`` naming the layer, never silently approximated.

``predict_proba`` never mutates its input and has no side effects (River's contract for
``predict_*``).

>>> import json, numpy as np
>>> topology = {"class_name": "Sequential", "config": {"layers": [
...     {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 2], "name": "in"}},
...     {"class_name": "Dense", "config": {"name": "out", "units": 2, "activation": "softmax",
...                                        "use_bias": True}}]}}
>>> manifest = [{"paths": ["group1-shard1of1.bin"], "weights": [
...     {"name": "out/kernel", "shape": [2, 2], "dtype": "float32"},
...     {"name": "out/bias", "shape": [2], "dtype": "float32"}]}]
>>> model_json = json.dumps({"format": "layers-model", "modelTopology": {"model_config": topology},
...                          "weightsManifest": manifest})
>>> weights = np.array([1, 0, 0, 1, 0, 0], dtype="<f4").tobytes()
>>> p = Predictor.from_bytes(model_json, {"group1-shard1of1.bin": weights},
...                          b'{"version": "000001", "feature_names": ["a", "b"], "labels": ["no", "yes"]}')
>>> x = np.array([[0.0, 0.0], [0.0, 2.0]])
>>> [[round(float(v), 4) for v in row] for row in p.predict_proba(x)]
[[0.5, 0.5], [0.1192, 0.8808]]
>>> p.predict_labels(x)
['no', 'yes']
>>> x.tolist()  # the input is untouched
[[0.0, 0.0], [0.0, 2.0]]
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autotraining.artifacts import METADATA_JSON, MODEL_JSON, check_file, model_key
from autotraining.encoding import Encoding
from autotraining.schema import Value

F32 = np.float32


class UnsupportedModel(ValueError):
    """The model uses a layer, activation or weight format the numpy predictor does not implement."""


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # Two branches so neither exp overflows (float32 like TF.js).
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1 / (1 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1 + ez)
    return out


_SELU_ALPHA = F32(1.6732632423543772848170429916717)
_SELU_SCALE = F32(1.0507009873554804934193349852946)

# Keras activation names as they appear in model.json (TF.js maps snake_case to its camelCase ones).
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, F32(0)),
    "relu6": lambda z: np.clip(z, F32(0), F32(6)),
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda z: np.clip(F32(0.2) * z + F32(0.5), F32(0), F32(1)),
    "tanh": np.tanh,
    "softmax": _softmax,
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, F32(0)))),
    "selu": lambda z: _SELU_SCALE * np.where(z > 0, z, _SELU_ALPHA * np.expm1(np.minimum(z, F32(0)))),
    "softplus": lambda z: np.logaddexp(z, F32(0)),
    "softsign": lambda z: z / (F32(1) + np.abs(z)),
    "swish": lambda z: z * _sigmoid(z),
}
ACTIVATIONS["hardSigmoid"] = ACTIVATIONS["hard_sigmoid"]
IDENTITY_LAYERS = ("InputLayer", "Dropout", "Flatten")


@dataclass(frozen=True)
class DenseLayer:
    name: str
    kernel: np.ndarray  # (inputs, units) float32
    bias: np.ndarray | None  # (units,) float32
    activation: str

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = x @ self.kernel
        if self.bias is not None:
            z = z + self.bias
        return ACTIVATIONS[self.activation](z)


@dataclass(frozen=True)
class ActivationLayer:
    name: str
    activation: str

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ACTIVATIONS[self.activation](x)


Layer = DenseLayer | ActivationLayer


def _activation(name: Any, layer: str) -> str:
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise UnsupportedModel(f"layer {layer!r}: activation {name!r} is not supported "
                               f"(supported: {', '.join(sorted(ACTIVATIONS))})")
    return name


def _layer_chain(topology: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The layer configs in evaluation order; functional models must be one chain."""
    model_config = topology.get("model_config", topology)
    cls = model_config.get("class_name")
    config = model_config.get("config", {})
    layers = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list) or not layers:
        raise UnsupportedModel(f"model.json: no layers found in a {cls!r} model")
    if cls == "Sequential":
        return layers
    if cls not in ("Model", "Functional"):
        raise UnsupportedModel(f"model.json: model class {cls!r} is not supported (Sequential or Model)")
    by_name = {layer.get("name") or layer.get("config", {}).get("name"): layer for layer in layers}
    outputs = config.get("output_layers") or []
    if len(outputs) != 1 or len(config.get("input_layers") or []) != 1:
        raise UnsupportedModel("model.json: only models with one input and one output are supported")
    chain: list[dict[str, Any]] = []
    name = outputs[0][0]
    while name is not None:
        layer = by_name.get(name)
        if layer is None:
            raise UnsupportedModel(f"model.json: layer {name!r} is referenced but not defined")
        chain.append(layer)
        inbound = layer.get("inbound_nodes") or []
        if not inbound:
            name = None
        elif len(inbound) == 1 and len(inbound[0]) == 1:
            name = inbound[0][0][0]
        else:
            raise UnsupportedModel(f"layer {name!r}: branching models are not supported (one chain of layers)")
        if len(chain) > len(layers):
            raise UnsupportedModel("model.json: the layer graph has a cycle")
    return chain[::-1]


def _read_weights(manifest: Sequence[Mapping[str, Any]], shards: Mapping[str, bytes]) -> dict[str, np.ndarray]:
    """Weights by name from the manifest groups; each group's shards are one concatenated buffer."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        try:
            buffer = b"".join(shards[path] for path in group["paths"])
        except KeyError as exc:
            raise UnsupportedModel(f"weight shard {exc.args[0]!r} is missing") from None
        offset = 0
        for spec in group["weights"]:
            shape = tuple(int(d) for d in spec["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            quant = spec.get("quantization")
            stored = (quant or spec)["dtype"]
            itemsize = {"float32": 4, "int32": 4, "float16": 2, "uint16": 2, "uint8": 1}.get(stored)
            if itemsize is None or spec["dtype"] != "float32":
                raise UnsupportedModel(f"weight {spec['name']!r}: dtype {stored!r} is not supported")
            raw = buffer[offset:offset + count * itemsize]
            if len(raw) != count * itemsize:
                raise UnsupportedModel(f"weight {spec['name']!r}: the shards are shorter than the manifest says")
            offset += count * itemsize
            if stored == "float32":
                values = np.frombuffer(raw, dtype="<f4")
            elif stored == "float16":
                values = np.frombuffer(raw, dtype="<f2").astype(F32)
            elif stored == "int32":
                values = np.frombuffer(raw, dtype="<i4").astype(F32)
            else:  # affine-quantized uint8/uint16, as the TF.js converter writes them
                # in double precision, then stored as float32, as TF.js (and tensorflowjs) dequantize
                q = np.frombuffer(raw, dtype="<u2" if stored == "uint16" else "u1").astype(np.float64)
                values = (q * float(quant["scale"]) + float(quant["min"])).astype(F32)
            out[spec["name"]] = values.reshape(shape).astype(F32, copy=True)
    return out


def _weight(weights: Mapping[str, np.ndarray], layer: str, what: str) -> np.ndarray | None:
    exact = f"{layer}/{what}"
    if exact in weights:
        return weights[exact]
    found = [k for k in weights if k.endswith("/" + exact)]
    return weights[found[0]] if len(found) == 1 else None


class Predictor:
    """A loaded model version: ``predict_proba(x)`` over raw feature rows in ``feature_names`` order."""

    def __init__(self, layers: Sequence[Layer], feature_names: Sequence[str], labels: Sequence[str],
                 version: str = "", metadata: Mapping[str, Any] | None = None,
                 encoding: Encoding | None = None) -> None:
        self.layers = tuple(layers)
        self.encoding = encoding or Encoding.identity(feature_names)
        self.feature_names = self.encoding.feature_names
        self.labels = tuple(labels)
        self.version = version
        self.metadata = dict(metadata or {})

    @classmethod
    def from_bytes(cls, model_json: bytes | str, shards: Mapping[str, bytes],
                   metadata_json: bytes | str | None = None) -> Predictor:
        """From the artifact's bytes: ``model.json``, ``{shard file name: bytes}``, ``metadata.json``."""
        try:
            model = json.loads(model_json)
            metadata = json.loads(metadata_json) if metadata_json else {}
        except ValueError as exc:
            raise UnsupportedModel(f"model.json or metadata.json is not JSON: {exc}") from None
        if model.get("format", "layers-model") != "layers-model":
            raise UnsupportedModel(f"model.json: format {model.get('format')!r} is not a TF.js layers model")
        weights = _read_weights(model.get("weightsManifest") or [], shards)
        layers: list[Layer] = []
        n_inputs: int | None = None
        for spec in _layer_chain(model.get("modelTopology") or {}):
            cls_name = spec.get("class_name")
            conf = spec.get("config") or {}
            name = str(conf.get("name") or spec.get("name") or "?")
            shape = conf.get("batch_input_shape")
            if n_inputs is None and isinstance(shape, list) and len(shape) == 2 and shape[1] is not None:
                n_inputs = int(shape[1])
            if cls_name in IDENTITY_LAYERS:
                continue
            if cls_name == "Activation":
                layers.append(ActivationLayer(name, _activation(conf.get("activation"), name)))
            elif cls_name == "Dense":
                kernel = _weight(weights, name, "kernel")
                bias = _weight(weights, name, "bias") if conf.get("use_bias", True) else None
                if kernel is None or (conf.get("use_bias", True) and bias is None):
                    raise UnsupportedModel(f"layer {name!r}: its weights are not in the manifest")
                layers.append(DenseLayer(name, kernel, bias, _activation(conf.get("activation", "linear"), name)))
            else:
                raise UnsupportedModel(f"layer {name!r} of type {cls_name!r} is not supported by the numpy "
                                       "predictor (InputLayer, Dense, Activation, Dropout, Flatten)")
        dense = [layer for layer in layers if isinstance(layer, DenseLayer)]
        if not dense:
            raise UnsupportedModel("model.json: the model has no Dense layer")
        n_in, n_out = dense[0].kernel.shape[0], dense[-1].kernel.shape[1]
        if n_inputs is not None and n_inputs != n_in:
            raise UnsupportedModel(f"model.json: input shape {n_inputs} does not match the first kernel ({n_in})")
        if "encoding" in metadata:
            try:
                encoding = Encoding.from_dict(metadata["encoding"])
            except ValueError as exc:
                raise UnsupportedModel(f"metadata.json: {exc}") from None
        else:  # published before typed schemas: plain numbers in feature_names order
            encoding = Encoding.identity(metadata.get("feature_names") or [f"x{i}" for i in range(n_in)])
        labels = metadata.get("labels") or [str(i) for i in range(n_out)]
        if encoding.width != n_in or len(labels) != n_out:
            raise UnsupportedModel(f"metadata.json encodes {encoding.width} inputs and names {len(labels)} labels "
                                   f"but the model takes {n_in} inputs and gives {n_out} outputs")
        return cls(layers, encoding.feature_names, labels, version=str(metadata.get("version", "")),
                   metadata=metadata, encoding=encoding)

    @classmethod
    def from_s3(cls, s3: Any, bucket: str, version: str, hashes: Mapping[str, str] | None = None) -> Predictor:
        """Load ``models/<version>/`` (model.json, the shards it names, metadata.json) from S3; every
        file with a hash in ``hashes`` (the round's ``metrics["sha256"]``) must match it
        (``CorruptArtifact`` otherwise)."""
        def get(filename: str) -> bytes:
            body = s3.get_object(Bucket=bucket, Key=model_key(version, filename))["Body"].read()
            return check_file(version, filename, body, hashes)

        model_json = get(MODEL_JSON)
        manifest = json.loads(model_json).get("weightsManifest") or []
        shards = {path: get(path) for group in manifest for path in group["paths"]}
        predictor = cls.from_bytes(model_json, shards, get(METADATA_JSON))
        return predictor if predictor.version else cls(predictor.layers, predictor.feature_names, predictor.labels,
                                                        version, predictor.metadata, predictor.encoding)

    def encode(self, rows: Sequence[Mapping[str, Value]]) -> np.ndarray:
        """Typed rows keyed by feature name → the model's input matrix (this model's own encoding)."""
        return self.encoding.encode_named(rows)

    def predict_proba(self, x: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Probabilities (n × labels, float32) for encoded rows (n × ``encoding.width``; for a schema of
        plain numbers that is the raw feature values in ``feature_names`` order)."""
        a = np.asarray(x, dtype=F32)  # float32 math like TF.js; a copy whenever x is not float32 already
        if a.ndim != 2 or a.shape[1] != self.encoding.width:
            raise ValueError(f"expected rows of {self.encoding.width} features (encoded inputs), got shape {a.shape}")
        for layer in self.layers:
            a = layer(a)
        return a

    def predict_labels(self, x: np.ndarray | Sequence[Sequence[float]]) -> list[str]:
        """The most probable label of each row."""
        return [self.labels[i] for i in np.argmax(self.predict_proba(x), axis=1)]
