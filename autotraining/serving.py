"""Serving rules: the per-container model cache, the model proxy's path rules, the history listing.

- ``ModelCache`` keeps the serving ``Predictor`` in memory and asks the registry whether
  ``latest`` moved at most every ``settings.model_cache_seconds``; a move loads the new version.
  Every file is checked against the sha256 its round committed (``load_verified``). Any failure
  to load it (missing, truncated or corrupt files, an S3 fault) keeps the last good
  model serving and logs one ``model.load_failed`` error per bad version (retried each check,
  so a repaired upload is picked up). A container that has no model yet (a cold start while
  the worker is still promoting the newest files, or when they are corrupt) serves the model
  that served before it instead (``fallback_version``: the parent round's ``model_version``, at
  most ``MAX_FALLBACK`` back), and moves to the newest one once it loads.
- ``ModelProxy.locate`` decides which S3 object a ``GET /models/{version}/{file}`` may fetch:
  only a servable file (``artifacts.is_servable_file``) of a published version; ``latest``
  resolves to ``latest.model_version``. Every refusal (``..``, percent-encoded slashes or dots,
  backslashes, unknown version or file) happens on the path text and the registry, BEFORE any
  S3 call; an accepted path becomes a presigned GET URL valid ``settings.presign_seconds``.
- ``history_page`` answers ``GET /models``: committed rounds newest first, ``?limit=`` and
  ``?before=`` pagination, rejected rounds marked.
- ``predict_rows`` turns a ``POST /predict`` payload into the answer body.
"""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from autotraining.artifacts import HASHES_METRIC, VERSION_PATTERN, is_servable_file, model_key
from autotraining.aws import Aws
from autotraining.errors import NoModel, Refused
from autotraining.logs import get_logger
from autotraining.predictor import Predictor
from autotraining.registry import STATUS_PUBLISHED, STATUS_REJECTED, Registry
from autotraining.schema import Schema, Value
from autotraining.validation import validate_rows

log = get_logger(__name__)

LATEST = "latest"
MAX_PREDICT_ROWS = 10_000
DEFAULT_HISTORY_LIMIT = 20
MAX_HISTORY_LIMIT = 100
MAX_FALLBACK = 3  # older published models a cold container tries when the newest cannot be loaded
# Percent-encoded '.', '/', '\' and '%' itself (double encoding): never legitimate in a model path.
_ENCODED_TRAVERSAL = re.compile(r"%(2e|2f|5c|25)", re.IGNORECASE)
# ASCII only and matched whole: str.isdigit and \d accept '²' or '٣', and '$' accepts a trailing newline.
_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9._-]{1,128}", re.ASCII)
_LIMIT = re.compile(r"[0-9]{1,4}", re.ASCII)


class ModelCache:
    """The serving model of one container, reloaded when ``latest`` moves (checked every ``ttl`` s)."""

    def __init__(self, registry: Registry, load: Callable[[str], Predictor], ttl: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self.load = load
        self.ttl = ttl
        self.clock = clock
        self._predictor: Predictor | None = None
        self._checked_at: float | None = None
        self._lock = threading.Lock()
        self._unavailable = ""  # why the newest version could not be loaded (cleared by a successful load)
        self._failed: set[str] = set()  # versions whose load failure was already logged as an error
        self.loads = 0  # how many versions this container has loaded (logged, asserted in tests)

    @classmethod
    def for_aws(cls, aws: Aws) -> ModelCache:
        """The cache a container keeps: registry and bucket from ``aws.settings``."""
        s = aws.settings
        registry = Registry(aws.dynamodb, s.models_table)
        return cls(registry, lambda v: load_verified(aws.s3, s.bucket, registry, v), ttl=s.model_cache_seconds)

    def get(self) -> Predictor:
        """The serving predictor; raises ``NoModel`` before the first publish."""
        with self._lock:
            now = self.clock()
            if self._checked_at is None or now - self._checked_at >= self.ttl:
                latest = self.registry.latest()
                version = latest.model_version if latest else ""
                if version and (self._predictor is None or self._predictor.version != version):
                    self._load(version)
                    why, older = self._unavailable, version
                    for _ in range(MAX_FALLBACK):  # a cold container: the model that served before
                        if self._predictor is not None:
                            break
                        older = fallback_version(self.registry, older)
                        if not older:
                            break
                        self._load(older)
                    if self._predictor is None:
                        self._unavailable = why  # the newest version's reason, not an older one's
                self._checked_at = now
            if self._predictor is None and self._unavailable:
                raise NoModel(self._unavailable)
            if self._predictor is None:
                raise NoModel("no model has been published yet; upload labeled records and wait for the "
                              "first training round (GET /models shows the history)")
            return self._predictor

    def _load(self, version: str) -> None:
        started = time.perf_counter()
        try:
            predictor = self.load(version)
        except Exception as exc:  # noqa: BLE001 - any bad artifact or fault must not take serving down
            # The worker commits a round before it copies the files to models/<version>/ (and repairs
            # a crash in between at its next start), and a published file may be corrupt: keep serving
            # the previous model meanwhile, and say so once per version, not once per check.
            serving = self._predictor.version if self._predictor else None
            if version not in self._failed:
                self._failed.add(version)
                log.error("model.load_failed", version=version, serving=serving, error=f"{type(exc).__name__}: {exc}"[:500])
            self._unavailable = (f"model {version} is not available yet ({type(exc).__name__}); "
                                 "retry in a few seconds")
            return
        self._failed.discard(version)
        self._predictor, self._unavailable = predictor, ""
        self.loads += 1
        log.info("model.loaded", version=version, ms=round((time.perf_counter() - started) * 1000, 1))


def fallback_version(registry: Registry, version: str) -> str:
    """The published model that served before ``version`` ("" when none): the ``model_version`` its
    round's parent committed with (one read; rejected rounds carry the model they kept serving)."""
    round_ = registry.get(version)
    parent = registry.get(round_.parent) if round_ and round_.parent else None
    older = parent.model_version if parent else ""
    return older if older and older != version else ""


def load_verified(s3: Any, bucket: str, registry: Registry, version: str) -> Predictor:
    """``models/<version>/`` with every file checked against the sha256 its committed round recorded
    (``artifacts.check_file``): a corrupted published file fails the load like a missing one."""
    committed = registry.get(version)
    hashes = committed.metrics.get(HASHES_METRIC) if committed else None
    return Predictor.from_s3(s3, bucket, version, hashes if isinstance(hashes, dict) else None)


def read_rows(payload: Any, schema: Schema) -> list[tuple[Value, ...]]:
    """Feature rows of a parsed ``POST /predict`` body; raises ``InvalidInput`` exactly like uploads."""
    return validate_rows(payload, schema, max_rows=MAX_PREDICT_ROWS)


def predict_rows(rows: list[tuple[Value, ...]], schema: Schema, predictor: Predictor) -> dict[str, Any]:
    """The ``POST /predict`` answer: the version and, per row, the label and every label's probability.

    Rows are validated against the deployment's schema and encoded with the model's own encoding
    (from its ``metadata.json``), matched by feature name."""
    missing = [f for f in predictor.feature_names if f not in schema.feature_names]
    if missing:
        raise NoModel(f"model {predictor.version} needs features {missing} that the schema does not have; "
                      "publish a model trained on this schema")
    x = predictor.encode([dict(zip(schema.feature_names, row, strict=True)) for row in rows])
    proba = predictor.predict_proba(x).tolist()
    labels = predictor.labels
    predictions = []
    for p in proba:
        best = max(range(len(p)), key=p.__getitem__)
        predictions.append({"label": labels[best], "probabilities": dict(zip(labels, p, strict=False))})
    return {"version": predictor.version, "predictions": predictions}


@dataclass(frozen=True)
class Location:
    """Where an accepted proxy request points: the S3 key, its presigned URL, the resolved version."""

    version: str
    key: str
    url: str


def check_model_path(raw_path: str, version: str | None, filename: str | None) -> tuple[str, str]:
    """Refuse unsafe or unknown paths on their text alone (no AWS call); returns (version, file)."""
    if not version or not filename:
        raise Refused(404, "use /models/{version|latest}/{file}")
    raw = raw_path or ""
    if _ENCODED_TRAVERSAL.search(raw) or "\\" in raw:
        raise Refused(400, "encoded dots, slashes or backslashes are not allowed in model paths")
    parts = raw.split("/")
    if ".." in parts or "." in parts or ".." in (version, filename) or "/" in version + filename:
        raise Refused(400, "'..' is not allowed in model paths")
    if raw and parts[-2:] != [version, filename]:
        raise Refused(400, "the path does not match /models/{version}/{file}")
    if not _SAFE_SEGMENT.fullmatch(version) or not _SAFE_SEGMENT.fullmatch(filename):
        raise Refused(400, "model paths may only contain letters, digits, '.', '_' and '-'")
    if version != LATEST and not VERSION_PATTERN.fullmatch(version):
        raise Refused(404, f"unknown model version {version!r}; use 'latest' or a version from GET /models")
    if not is_servable_file(filename):
        raise Refused(404, f"{filename!r} is not a file of a published model "
                           "(model.json, its weight shards, metadata.json)")
    return version, filename


class ModelProxy:
    """Resolves ``/models/{version}/{file}`` to a presigned S3 URL, refusing anything else first."""

    def __init__(self, registry: Registry, s3: Any, bucket: str, presign_seconds: float) -> None:
        self.registry = registry
        self.s3 = s3
        self.bucket = bucket
        self.presign_seconds = presign_seconds

    @classmethod
    def for_aws(cls, aws: Aws) -> ModelProxy:
        s = aws.settings
        return cls(Registry(aws.dynamodb, s.models_table), aws.s3_presigner, s.bucket, s.presign_seconds)

    def locate(self, raw_path: str, version: str | None, filename: str | None) -> Location:
        version, filename = check_model_path(raw_path, version, filename)
        if version == LATEST:
            latest = self.registry.latest()
            if latest is None or not latest.model_version:
                raise Refused(404, "no model has been published yet")
            version = latest.model_version
        else:
            round_ = self.registry.get(version)
            if round_ is None:
                raise Refused(404, f"unknown model version {version!r}")
            if round_.status != STATUS_PUBLISHED:
                raise Refused(404, f"round {version} was {round_.status}: it has no model "
                                   f"(its serving model is {round_.model_version or 'none'})")
        key = model_key(version, filename)
        url = self.s3.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key},
                                             ExpiresIn=max(1, int(self.presign_seconds)))
        return Location(version=version, key=key, url=url)


def history_page(registry: Registry, query: Mapping[str, str] | None) -> dict[str, Any]:
    """``GET /models``: ``{"versions": [...newest first], "next": <?before= value or None>}``."""
    query = query or {}
    unknown = sorted(set(query) - {"limit", "before"})
    if unknown:
        raise Refused(400, f"unknown query parameter {unknown[0]!r}; use limit and before")
    raw_limit = query.get("limit", str(DEFAULT_HISTORY_LIMIT))
    if not _LIMIT.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_HISTORY_LIMIT:
        raise Refused(400, f"limit must be a whole number from 1 to {MAX_HISTORY_LIMIT}")
    limit = int(raw_limit)
    before = query.get("before")
    if before is not None and not VERSION_PATTERN.fullmatch(before):
        raise Refused(400, "before must be a version such as 000042 (the 'next' value of the previous page)")
    rounds = registry.history(limit=limit + 1, before=before)
    versions = []
    for r in rounds[:limit]:
        entry = r.to_dict()
        entry["rejected"] = r.status == STATUS_REJECTED
        versions.append(entry)
    return {"versions": versions, "next": rounds[limit - 1].version if len(rounds) > limit else None}
