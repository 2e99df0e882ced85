"""Publishing a round: export the model, stage it, commit the round, promote the files.

Order of a round's writes (each step idempotent; the commit is the only decision):

1. *Export*: the folded model (``trainer.fold``) to the TensorFlow.js layers format with
   legacy Keras (``model.json`` + ``group1-shard1of1.bin``), the unfolded Keras file
   (``model.h5``) for warm starts, and ``metadata.json`` (contract in docs/internals.md).
   The serving side's numpy predictor (``autotraining.predictor``) over the exported
   ``model.json`` + shards must give the Keras model's probabilities on a few rows
   (``verify_export``), else the round refuses to publish.
2. *Stage*: the files go to ``staging/<version>-<attempt>/`` and the training state to
   ``state/<version>-<attempt>.npz`` — names no other attempt uses, so a worker that loses the
   commit race can never overwrite the winner's model.
3. *Commit*: ``Registry.commit_round(expected_previous_round, ModelVersion(...))``. The round
   records where its files were staged (``metrics["staging"]``).
4. *Promote*: each staged file is read and written to ``models/<version>/``, ``model.json`` last
   (its presence means the rest is there). A crash between commit and promote is repaired by the
   next worker start (``ensure_promoted``), before it does anything else.

The worker never overwrites an object: every write is create-only (``put_new``, S3's
``If-None-Match: *``), which the stack enforces (the worker role may put under ``models/``,
``state/`` and ``staging/`` only with that header; the bucket policy denies it any other put).
So a published version's files, once there, are the ones its round committed. A repeated write
of the same bytes (a retried request, a promote finished after a crash) is success; different
bytes at the key raise ``ObjectExists``. That is also why promotion reads and writes instead of
``CopyObject``: S3 refuses a conditional copy (501).

A rejected round stages and commits its state only (no model files); the serving model stays
the parent's.
"""
from __future__ import annotations

import os
import tempfile
import uuid
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from botocore.exceptions import ClientError
from tenacity import retry, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from autotraining import strictjson
from autotraining.artifacts import KERAS_FILE, MODEL_JSON, model_key
from autotraining.encoding import Encoding
from autotraining.logs import get_logger
from autotraining.predictor import Predictor, UnsupportedModel
from autotraining.registry import ModelVersion, Registry
from autotraining.schema import Schema
from worker import trainer
from worker.state import mark_superseded

log = get_logger("worker.publish")

STAGING_PREFIX = "staging/"


class ExportMismatch(RuntimeError):
    """The exported TensorFlow.js model does not answer like the Keras model."""


class ObjectExists(RuntimeError):
    """A create-only write found other bytes at its key: the worker never overwrites an object."""


def new_attempt() -> str:
    return uuid.uuid4().hex[:12]


def staging_prefix(version: str, attempt: str) -> str:
    return f"{STAGING_PREFIX}{version}-{attempt}/"


def export_tfjs(folded_model: Any) -> dict[str, bytes]:
    """``model.json`` + weight shards of the folded (legacy Keras) model, as bytes by file name."""
    from tensorflowjs.converters import save_keras_model

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # its internal HDF5 save warns "legacy"
        save_keras_model(folded_model, tmp)
        files = {}
        for name in sorted(os.listdir(tmp)):
            with open(os.path.join(tmp, name), "rb") as f:
                files[name] = f.read()
    return files


def verify_export(files: dict[str, bytes], expected: np.ndarray, x: np.ndarray, atol: float = 1e-4) -> None:
    """The serving side's own numpy predictor, over the exported bytes, must answer like Keras."""
    try:
        got = Predictor.from_bytes(files[MODEL_JSON], files).predict_proba(x)
    except UnsupportedModel as exc:
        raise ExportMismatch(f"the serving predictor cannot load the exported model: {exc}") from None
    if got.shape != expected.shape or not np.allclose(got, expected, atol=atol):
        diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
        raise ExportMismatch(f"exported model differs from the Keras model by {diff}")


@dataclass(frozen=True)
class StagedRound:
    """What a round wrote before its commit."""

    staging: str  # prefix of the model files ("" for a rejected round)
    files: tuple[str, ...]
    state_key: str


@retry(retry=retry_if_not_exception_type(ObjectExists), stop=stop_after_attempt(4),
       wait=wait_exponential(multiplier=0.2, max=3), reraise=True)
def put_new(s3: Any, bucket: str, key: str, body: bytes, content_type: str) -> None:
    """Create ``key`` with ``body``, never replacing an object (``If-None-Match: *``).

    The same bytes already there count as written (a retry whose first try reached S3, a promote
    repeated after a crash); other bytes raise ``ObjectExists``. A concurrent conditional write to
    the key (409) is retried.
    """
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "PreconditionFailed":
            raise
        if s3.get_object(Bucket=bucket, Key=key)["Body"].read() != body:
            raise ObjectExists(f"s3://{bucket}/{key} already holds other bytes; the worker never overwrites") from None


def content_type(name: str) -> str:
    return "application/json" if name.endswith(".json") else "application/octet-stream"


def stage(s3: Any, bucket: str, version: str, attempt: str, files: dict[str, bytes], state: bytes,
          state_key: str) -> StagedRound:
    prefix = staging_prefix(version, attempt) if files else ""
    for name, body in files.items():
        put_new(s3, bucket, prefix + name, body, content_type(name))
    put_new(s3, bucket, state_key, state, "application/octet-stream")
    return StagedRound(staging=prefix, files=tuple(files), state_key=state_key)


def promote_order(files: list[str]) -> list[str]:
    """``model.json`` last, so its presence means every other file is there."""
    return sorted(files, key=lambda n: (n == MODEL_JSON, n))


def promote(s3: Any, bucket: str, version: str, staging: str, files: list[str]) -> None:
    for name in promote_order(files):
        body = s3.get_object(Bucket=bucket, Key=staging + name)["Body"].read()
        put_new(s3, bucket, model_key(version, name), body, content_type(name))
    for name in files:
        try:
            s3.delete_object(Bucket=bucket, Key=staging + name)
        except Exception as exc:  # noqa: BLE001 - leftover staging files are harmless
            log.warning("publish.staging_cleanup_failed", key=staging + name, error=str(exc))


def discard(s3: Any, bucket: str, staged: StagedRound) -> None:
    """Clear what a round that lost the commit race staged (best effort: the names are unique):
    its staged files are deleted, its state object (under ``state/``, where the worker deletes
    nothing) is marked superseded for the lifecycle rule."""
    for key in [staged.staging + n for n in staged.files]:
        try:
            s3.delete_object(Bucket=bucket, Key=key)
        except Exception as exc:  # noqa: BLE001
            log.warning("publish.discard_failed", key=key, error=str(exc))
    mark_superseded(s3, bucket, [staged.state_key])


def exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def ensure_promoted(s3: Any, bucket: str, registry: Registry) -> str | None:
    """Finish a promote that a crash interrupted (the serving model's files missing); returns its version."""
    current = registry.latest_model()
    if current is None or exists(s3, bucket, model_key(current.version, MODEL_JSON)):
        return None
    staging = str(current.metrics.get("staging", ""))
    files = list(current.metrics.get("files", []))
    if not staging or not files:
        log.error("publish.cannot_promote", version=current.version)
        return None
    promote(s3, bucket, current.version, staging, files)
    log.warning("publish.promoted_after_crash", version=current.version)
    return current.version


def commit_and_promote(s3: Any, bucket: str, registry: Registry, expected_round: str | None,
                       round_: ModelVersion, staged: StagedRound) -> None:
    """Commit (may raise ``CommitConflict``), then promote the files of a published round."""
    registry.commit_round(expected_round, round_)
    if round_.published:
        promote(s3, bucket, round_.version, staged.staging, list(staged.files))


def metadata(round_: ModelVersion, schema: Schema, encoding: Encoding) -> bytes:
    """``metadata.json`` (contract in docs/internals.md): with the schema, its content hash and the
    input encoding every client applies (``autotraining.encoding``). Strict JSON: no NaN/Infinity."""
    doc = {"version": round_.version, "parent": round_.parent, "created": round_.created, "schema": schema.to_dict(),
           "schema_hash": schema.content_hash, "encoding": encoding.to_dict(),
           "labels": list(schema.labels), "feature_names": list(schema.feature_names),
           "records_seen": round_.records_seen,
           "new_records": round_.new_records, "segments": list(round_.segments),
           "metrics": {**round_.metrics, "prequential_accuracy": round_.prequential_accuracy,
                       "holdout_accuracy": round_.holdout_accuracy,
                       "parent_holdout_accuracy": round_.parent_holdout_accuracy, "duration_s": round_.duration_s},
           "gate": round_.gate, "model_version": round_.model_version, "status": round_.status}
    return strictjson.dumps(doc, sort_keys=True, indent=1).encode("utf-8")


def files_for(keras_model: Any, folded_model: Any, check_rows: np.ndarray) -> dict[str, bytes]:
    """The published files (without metadata): TF.js model + shards, checked against Keras, and model.h5."""
    files = export_tfjs(folded_model)
    verify_export(files, trainer.predict_proba(keras_model, check_rows), check_rows)
    files[KERAS_FILE] = trainer.to_h5_bytes(keras_model)
    return files

