"""Where a published model lives in S3 and which of its files may be served.

``models/<version>/`` holds the TensorFlow.js layers model (``model.json`` + weight shards
``group1-shard1of1.bin`` …), the Keras file the worker warm-starts from (``model.h5``, never
served), and ``metadata.json`` (schema, labels, metrics, parent, segments). The numpy
predictor reads the same ``model.json`` + shards TensorFlow.js loads, so every client answers
alike.
"""
from __future__ import annotations

import re

MODELS_PREFIX = "models/"
MODEL_JSON = "model.json"
METADATA_JSON = "metadata.json"
KERAS_FILE = "model.h5"
# \A..\Z and ASCII: whole-string matches even through .match, no Unicode digits, no trailing newline.
SHARD_PATTERN = re.compile(r"\Agroup[0-9]{1,3}-shard[0-9]{1,3}of[0-9]{1,3}\.bin\Z", re.ASCII)
VERSION_PATTERN = re.compile(r"\A[0-9]{6}\Z", re.ASCII)


def model_key(version: str, filename: str) -> str:
    return f"{MODELS_PREFIX}{version}/{filename}"


def is_servable_file(filename: str) -> bool:
    """Files a browser may fetch through the proxy: the TF.js model and the metadata only."""
    return filename in (MODEL_JSON, METADATA_JSON) or bool(SHARD_PATTERN.match(filename))
