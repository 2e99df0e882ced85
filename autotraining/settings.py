"""One settings object for every side of the system, built from environment variables.

Lambda functions get these variables from the CloudFormation template, the instance from
the systemd unit's environment file, and the embedded run sets them for its own process and
for the worker it starts. An explicit argument beats the environment: ``Settings(**overrides)``
or ``Settings.from_env(overrides)``. Every variable name lives here and nowhere else.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Environment variable names (the only place they are spelled out).
ENV = {
    "records_table": "AUTOTRAINING_RECORDS_TABLE",
    "models_table": "AUTOTRAINING_MODELS_TABLE",
    "consumed_table": "AUTOTRAINING_CONSUMED_TABLE",
    "bucket": "AUTOTRAINING_BUCKET",
    "queue_url": "AUTOTRAINING_QUEUE_URL",
    "dlq_url": "AUTOTRAINING_DLQ_URL",
    "instance_id": "AUTOTRAINING_INSTANCE_ID",
    "starter_function": "AUTOTRAINING_STARTER_FUNCTION",
    "upload_url": "AUTOTRAINING_UPLOAD_URL",
    "schema_file": "AUTOTRAINING_SCHEMA_FILE",
    "new_lineage": "AUTOTRAINING_NEW_LINEAGE",
    "start_threshold": "AUTOTRAINING_START_THRESHOLD",
    "max_records_per_request": "AUTOTRAINING_MAX_RECORDS_PER_REQUEST",
    "reservoir_size": "AUTOTRAINING_RESERVOIR_SIZE",
    "gate_tolerance": "AUTOTRAINING_GATE_TOLERANCE",
    "gate_min_kappa": "AUTOTRAINING_GATE_MIN_KAPPA",
    "gate_recent_weight": "AUTOTRAINING_GATE_RECENT_WEIGHT",
    "replay_recent_share": "AUTOTRAINING_REPLAY_RECENT_SHARE",
    "drift_delta": "AUTOTRAINING_DRIFT_DELTA",
    "drift_min_effect": "AUTOTRAINING_DRIFT_MIN_EFFECT",
    "idle_grace": "AUTOTRAINING_IDLE_GRACE",
    "model_cache_seconds": "AUTOTRAINING_MODEL_CACHE_SECONDS",
    "presign_seconds": "AUTOTRAINING_PRESIGN_SECONDS",
    "generator_batch": "AUTOTRAINING_GENERATOR_BATCH",
    "log_format": "AUTOTRAINING_LOG_FORMAT",
    "worker_artifact": "AUTOTRAINING_WORKER_ARTIFACT",
    "api_url": "AUTOTRAINING_API_URL",
    "api_token_file": "AUTOTRAINING_API_TOKEN_FILE",
    "endpoint_url": "AWS_ENDPOINT_URL",
    "region": "AWS_DEFAULT_REGION",
}

_INT_FIELDS = {"start_threshold", "max_records_per_request", "reservoir_size", "generator_batch"}
_FLOAT_FIELDS = {"gate_tolerance", "gate_min_kappa", "gate_recent_weight", "replay_recent_share", "drift_delta",
                 "drift_min_effect", "idle_grace", "model_cache_seconds", "presign_seconds"}
_BOOL_FIELDS = {"new_lineage"}


# (field, lowest, highest) for the settings that must lie in a range.
_RANGES = (
    ("gate_tolerance", -1.0, 1.0),
    ("gate_min_kappa", -1.0, 1.0),
    ("gate_recent_weight", 0.0, 1.0),
    ("replay_recent_share", 0.0, 1.0),
    ("drift_delta", 0.0, 1.0),
    ("drift_min_effect", 0.0, 1.0),
    ("reservoir_size", 1, 10**9),
    ("start_threshold", 1, 10**9),
)


class SettingsError(ValueError):
    """A setting has a value that cannot be used (named in the message)."""


@dataclass(frozen=True)
class Settings:
    """Names of the stack's resources and the knobs of the pipeline."""

    records_table: str = "autotraining-records"
    models_table: str = "autotraining-models"
    consumed_table: str = ""  # the consumed-segment marks; empty: kept in the models table
    bucket: str = "autotraining-data"
    queue_url: str = ""
    dlq_url: str = ""
    instance_id: str = ""
    starter_function: str = "autotraining-starter"
    upload_url: str = ""
    schema_file: str = ""  # empty: the packaged default schema (thermal comfort); a path or an s3:// URI
    # An incompatible schema change starts a fresh model lineage instead of being refused (--new-lineage).
    new_lineage: bool = False
    start_threshold: int = 1  # pending segments (queue messages) that make the stream handler start the instance
    max_records_per_request: int = 1000
    reservoir_size: int = 5000
    gate_tolerance: float = 0.02
    gate_min_kappa: float = 0.1  # a candidate must beat always-the-majority-label by this Cohen's kappa
    gate_recent_weight: float = 0.5  # share of the gate's weight on the newest round's held-out rows
    replay_recent_share: float = 0.5  # share of the replay sample that is the most recent records (0: uniform)
    drift_delta: float = 0.002  # ADWIN's confidence (smaller: fewer false alarms, later detection); 0: off
    drift_min_effect: float = 0.05  # smallest change of accuracy / label share reported as drift
    idle_grace: float = 60.0
    model_cache_seconds: float = 5.0
    presign_seconds: float = 300.0
    generator_batch: int = 100
    log_format: str = "auto"  # auto | json | console
    worker_artifact: str = ""  # s3://bucket/key of the worker artifact the instance runs (set by the stack)
    api_url: str = ""  # the HTTP API's base URL, for the CLI's client commands (predict, status, upload)
    api_token_file: str = ""  # a file holding a JWT the client commands send as a bearer (JWT stacks); empty: SigV4
    endpoint_url: str = ""  # empty: real AWS
    region: str = "us-east-1"

    @classmethod
    def from_env(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field, var in ENV.items():
            raw = env.get(var)
            if raw is None and field == "region":
                raw = env.get("AWS_REGION")
            if raw is None or raw == "":
                continue
            values[field] = _convert(field, raw)
        values.update(overrides or {})
        return cls(**values)

    def __post_init__(self) -> None:
        # Knobs whose out-of-range value would only fail later, inside a round: refuse them at start.
        for name, low, high in _RANGES:
            value = getattr(self, name)
            if not low <= value <= high:
                raise SettingsError(f"{ENV[name]}={value!r} is out of range [{low}, {high}]")

    def to_env(self) -> dict[str, str]:
        """The environment variables that rebuild these settings in another process."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[ENV[field.name]] = str(value)
        out["AWS_REGION"] = self.region
        return out

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _convert(field: str, raw: str) -> Any:
    try:
        if field in _INT_FIELDS:
            return int(raw)
        if field in _FLOAT_FIELDS:
            return float(raw)
        if field in _BOOL_FIELDS:
            return raw.strip().lower() in ("1", "true", "yes")
    except ValueError:
        raise SettingsError(f"{ENV[field]}={raw!r} is not a number") from None
    return raw
