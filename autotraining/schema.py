"""The one schema definition: features (name, type, range) and the label set.

Everything downstream (validation, the log format, the trainer's input layer, the predictor,
the dashboard's inputs) reads the features and labels from a ``Schema``; nothing hard-codes the
thermal-comfort example, which is only the packaged default. A user points
``AUTOTRAINING_SCHEMA_FILE`` at a JSON file of the same shape to use their own.
"""
from __future__ import annotations

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
FEATURE_TYPES = ("number", "integer")


class SchemaError(ValueError):
    """The schema file itself is malformed (the message says where)."""


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

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "min": self.min, "max": self.max,
                               "unit": self.unit, "description": self.description}
        if self.typical is not None:
            out["typical"] = list(self.typical)
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

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "features": [f.to_dict() for f in self.features], "labels": list(self.labels)}

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
            where = f"{source}: features[{i}]"
            if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not f["name"]:
                raise SchemaError(f"{where}: needs a non-empty string 'name'")
            name = f["name"]
            if name in RESERVED_FIELDS or name in seen:
                raise SchemaError(f"{where}: name {name!r} is reserved or repeated")
            seen.add(name)
            ftype = f.get("type", "number")
            if ftype not in FEATURE_TYPES:
                raise SchemaError(f"{where}: type must be one of {FEATURE_TYPES}, not {ftype!r}")
            lo, hi = float(f.get("min", -math.inf)), float(f.get("max", math.inf))
            if not lo < hi:
                raise SchemaError(f"{where}: min must be below max")
            typical = f.get("typical")
            features.append(Feature(name=name, type=ftype, min=lo, max=hi, unit=str(f.get("unit", "")),
                                    description=str(f.get("description", "")),
                                    typical=(float(typical[0]), float(typical[1])) if typical else None))
        labels = data.get("labels")
        if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) and x for x in labels):
            raise SchemaError(f"{source}: 'labels' must list at least two non-empty strings")
        if len(set(labels)) != len(labels):
            raise SchemaError(f"{source}: 'labels' has a repeated label")
        return cls(name=str(data.get("name", "custom")), features=tuple(features), labels=tuple(labels),
                   description=str(data.get("description", "")))


DEFAULT_SCHEMA_RESOURCE = "thermal_comfort.json"


@lru_cache(maxsize=8)
def load_schema(path: str = "") -> Schema:
    """The schema at ``path``, or the packaged default (thermal comfort) when ``path`` is empty."""
    if path:
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
