"""Where a published model lives in S3 and which of its files may be served.

``models/<version>/`` holds the TensorFlow.js layers model (``model.json`` + weight shards
``group1-shard1of1.bin`` …), the Keras file the worker warm-starts from (``model.h5``, never
served), and ``metadata.json`` (schema, labels, metrics, parent, segments). The numpy
predictor reads the same ``model.json`` + shards TensorFlow.js loads, so every client answers
alike.

A published round records the sha256 of every file but ``metadata.json`` in its committed
metrics (``metrics["sha256"]``, in the models table, which the worker's role cannot rewrite once
committed); whoever loads a file checks it with ``check_file`` and refuses other bytes
(``CorruptArtifact``). Rounds committed before hashes were recorded load unchecked.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

MODELS_PREFIX = "models/"
MODEL_JSON = "model.json"
METADATA_JSON = "metadata.json"
KERAS_FILE = "model.h5"
# \A..\Z and ASCII: whole-string matches even through .match, no Unicode digits, no trailing newline.
SHARD_PATTERN = re.compile(r"\Agroup[0-9]{1,3}-shard[0-9]{1,3}of[0-9]{1,3}\.bin\Z", re.ASCII)
VERSION_PATTERN = re.compile(r"\A[0-9]{6}\Z", re.ASCII)
HASHES_METRIC = "sha256"  # ModelVersion.metrics key: {file name: sha256 hex} of the published files


class CorruptArtifact(ValueError):
    """A published model file's bytes differ from the sha256 its round committed."""


def file_hashes(files: Mapping[str, bytes]) -> dict[str, str]:
    """{file name: sha256 hex} of a round's published files (what ``metrics["sha256"]`` records)."""
    return {name: hashlib.sha256(body).hexdigest() for name, body in sorted(files.items())}


def check_file(version: str, filename: str, body: bytes, hashes: Mapping[str, str] | None) -> bytes:
    """``body`` when it is the committed file (or the round recorded no hash for it); else
    ``CorruptArtifact`` naming the object and both hashes."""
    expected = (hashes or {}).get(filename)
    if expected is None:
        return body
    got = hashlib.sha256(body).hexdigest()
    if got != expected:
        raise CorruptArtifact(f"{model_key(version, filename)} is corrupt: its sha256 is {got}, the committed "
                              f"round recorded {expected} ({len(body)} bytes read)")
    return body


def model_key(version: str, filename: str) -> str:
    return f"{MODELS_PREFIX}{version}/{filename}"


def is_servable_file(filename: str) -> bool:
    """Files a browser may fetch through the proxy: the TF.js model and the metadata only."""
    return filename in (MODEL_JSON, METADATA_JSON) or bool(SHARD_PATTERN.match(filename))
