"""The one schema definition: features (name, type, range) and the label set.

Everything downstream (validation, the log format, the trainer's input layer, the predictor,
the dashboard's inputs) reads the features and labels from a ``Schema``; nothing hard-codes the
thermal-comfort example, which is only the packaged default. A user points
``AUTOTRAINING_SCHEMA_FILE`` at a JSON file of the same shape (or an ``s3://`` URI, as a deployed
stack does) to use their own.

Feature types: ``number``, ``integer``, ``boolean`` and ``category`` (``values``, optionally an
``other`` bucket); any feature may be ``optional``. ``Schema.from_dict`` refuses a bad file with
one line naming the file, the feature and what is wrong; ``content_hash``/``tag`` name a schema's
content (``name@hash``) wherever a model or a log segment records which schema it used. The
encoding into model inputs lives in ``autotraining.encoding``; docs/schemas.md has the format.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

LABEL_FIELD = "label"
ID_FIELD = "id"
CREATED_FIELD = "created"
RESERVED_FIELDS = (LABEL_FIELD, ID_FIELD, CREATED_FIELD)
NUMERIC_TYPES = ("number", "integer")
FEATURE_TYPES = (*NUMERIC_TYPES, "boolean", "category")
_FEATURE_KEYS = {"name", "type", "min", "max", "unit", "description", "typical", "values", "other", "optional",
                 "impute"}

# A typed feature value as validated, stored and logged: a number, a boolean, a category string,
# or None for an optional feature that is missing.
Value = float | bool | str | None


class SchemaError(ValueError):
    """The schema file itself is malformed (one line: the file, the feature and what is wrong)."""


@dataclass(frozen=True)
class Feature:
    name: str
    type: str = "number"
    min: float = -math.inf
    max: float = math.inf
    unit: str = ""
    description: str = ""
    # A range where most real values fall; the generator and the dashboard use it.
    typical: tuple[float, float] | None = None
    values: tuple[str, ...] = ()  # a category's known values, in one-hot order
    other: bool = False  # a category maps an unseen string to an "other" bucket instead of refusing it
    optional: bool = False  # null or an absent key is allowed (imputed value + missing indicator)
    impute: float | None = None  # the value a missing number stands for (default: middle of typical/range)

    @property
    def numeric(self) -> bool:
        return self.type in NUMERIC_TYPES

    @property
    def imputed(self) -> float:
        """What the model sees for a missing number (a missing category/boolean is all zeros)."""
        if self.impute is not None:
            return self.impute
        lo, hi = self.typical or (self.min, self.max)
        if math.isfinite(lo) and math.isfinite(hi):
            return (lo + hi) / 2
        return lo if math.isfinite(lo) else hi if math.isfinite(hi) else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The feature as the schema file spells it; infinite bounds are left out (JSON has no Infinity)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if math.isfinite(self.min):
            out["min"] = self.min
        if math.isfinite(self.max):
            out["max"] = self.max
        out.update({"unit": self.unit, "description": self.description})
        if self.typical is not None:
            out["typical"] = list(self.typical)
        if self.type == "category":
            out["values"] = list(self.values)
            out["other"] = self.other
        out["optional"] = self.optional
        if self.impute is not None:
            out["impute"] = self.impute
        return out


@dataclass(frozen=True)
class Schema:
    name: str
    features: tuple[Feature, ...]
    labels: tuple[str, ...]
    description: str = ""
    feature_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "feature_names", tuple(f.name for f in self.features))

    def label_index(self, label: str) -> int:
        return self.labels.index(label)

    def feature(self, name: str) -> Feature:
        return self.features[self.feature_names.index(name)]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "features": [f.to_dict() for f in self.features], "labels": list(self.labels)}

    @property
    def content_hash(self) -> str:
        """A short hash of what the schema says (canonical JSON), shown beside its name: "name@hash"."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.content_hash}"

    @classmethod
    def from_dict(cls, data: Any, source: str = "schema") -> Schema:
        if not isinstance(data, dict):
            raise SchemaError(f"{source}: must be a JSON object")
        feats = data.get("features")
        if not isinstance(feats, list) or not feats:
            raise SchemaError(f"{source}: 'features' must be a non-empty list")
        features = []
        seen: set[str] = set()
        for i, f in enumerate(feats):
            if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not f["name"]:
                raise SchemaError(f"{source}: features[{i}]: needs a non-empty string 'name'")
            name = f["name"]
            if name in RESERVED_FIELDS or name in seen:
                raise SchemaError(f"{source}: feature {name!r}: the name is reserved or repeated")
            seen.add(name)
            features.append(_feature(f, f"{source}: feature {name!r}"))
        labels = data.get("labels")
        if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) and x for x in labels):
            raise SchemaError(f"{source}: 'labels' must list at least two non-empty strings")
        if len(set(labels)) != len(labels):
            raise SchemaError(f"{source}: 'labels' has a repeated label")
        return cls(name=str(data.get("name", "custom")), features=tuple(features), labels=tuple(labels),
                   description=str(data.get("description", "")))


def _number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SchemaError(f"{where}: {key!r} must be a finite number, not {value!r}")
    return float(value)


def _flag(f: dict[str, Any], key: str, where: str) -> bool:
    value = f.get(key, False)
    if not isinstance(value, bool):
        raise SchemaError(f"{where}: {key!r} must be true or false, not {value!r}")
    return value


def _feature(f: dict[str, Any], where: str) -> Feature:
    unknown = sorted(set(f) - _FEATURE_KEYS)
    if unknown:
        raise SchemaError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_FEATURE_KEYS))})")
    ftype = f.get("type", "number")
    if ftype not in FEATURE_TYPES:
        raise SchemaError(f"{where}: type must be one of {', '.join(FEATURE_TYPES)}, not {ftype!r}")
    numeric = ftype in NUMERIC_TYPES
    for key in ("min", "max", "typical", "impute"):
        if key in f and not numeric:
            raise SchemaError(f"{where}: {key!r} applies to number and integer features, not {ftype}")
    for key in ("values", "other"):
        if key in f and ftype != "category":
            raise SchemaError(f"{where}: {key!r} applies to category features, not {ftype}")
    lo = _number(f["min"], where, "min") if "min" in f else -math.inf
    hi = _number(f["max"], where, "max") if "max" in f else math.inf
    if not lo < hi:
        raise SchemaError(f"{where}: min must be below max")
    typical = None
    if "typical" in f:
        t = f["typical"]
        if not isinstance(t, list) or len(t) != 2:
            raise SchemaError(f"{where}: 'typical' must be a list [low, high]")
        typical = (_number(t[0], where, "typical"), _number(t[1], where, "typical"))
        if not lo <= typical[0] < typical[1] <= hi:
            raise SchemaError(f"{where}: 'typical' must be an increasing pair inside [min, max]")
    impute = _number(f["impute"], where, "impute") if "impute" in f else None
    if impute is not None and not lo <= impute <= hi:
        raise SchemaError(f"{where}: 'impute' must lie inside [min, max]")
    values: tuple[str, ...] = ()
    if ftype == "category":
        raw = f.get("values")
        if not isinstance(raw, list) or not raw or not all(isinstance(v, str) and v for v in raw):
            raise SchemaError(f"{where}: a category needs 'values', a non-empty list of non-empty strings")
        if len(set(raw)) != len(raw):
            raise SchemaError(f"{where}: 'values' has a repeated value")
        values = tuple(raw)
    return Feature(name=f["name"], type=ftype, min=lo, max=hi, unit=str(f.get("unit", "")),
                   description=str(f.get("description", "")), typical=typical, values=values,
                   other=_flag(f, "other", where), optional=_flag(f, "optional", where), impute=impute)


DEFAULT_SCHEMA_RESOURCE = "thermal_comfort.json"


def _read_s3(uri: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    from autotraining.aws import Aws
    from autotraining.settings import Settings

    bucket, _, key = uri[len("s3://"):].partition("/")
    try:
        body = Aws(Settings.from_env()).s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        raise SchemaError(f"cannot read schema file {uri}: {exc}") from None
    return str(body.decode("utf-8"))


@lru_cache(maxsize=8)
def load_schema(path: str = "") -> Schema:
    """The schema at ``path`` (a file or an ``s3://bucket/key`` URI, as a deployed stack sets it), or
    the packaged default (thermal comfort) when ``path`` is empty."""
    if path.startswith("s3://"):
        text, source = _read_s3(path), path
    elif path:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise SchemaError(f"cannot read schema file {path}: {exc.strerror}") from None
        source = str(p)
    else:
        text = resources.files("autotraining.schemas").joinpath(DEFAULT_SCHEMA_RESOURCE).read_text("utf-8")
        source = DEFAULT_SCHEMA_RESOURCE
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{source}: not JSON ({exc.msg} at line {exc.lineno})") from None
    return Schema.from_dict(data, source)


def check_configured_schema() -> None:
    """Stop a process at start (a Lambda's cold start) when its configured schema is bad: one line on
    stderr naming the file, the feature and what is wrong, then exit 1 — never a 500 per request."""
    import sys

    from autotraining.settings import Settings, SettingsError

    try:
        path = Settings.from_env().schema_file
    except SettingsError:
        return  # reported where the setting is used
    try:
        load_schema(path)
    except SchemaError as exc:
        print(f"autotraining: bad schema: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
