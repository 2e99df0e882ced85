"""Schema changes: whether a new schema may continue the serving model's lineage.

``compare(old, new)`` decides, before anything changes, on what the schemas say:

- *compatible* (the lineage continues; the worker migrates its replay sample and widens the
  model's first layer, ``worker.lineage``): a new optional feature, a required feature made
  optional, a widened range, an integer made a number, a new category value on a feature with
  ``other``, ``other`` switched on, description/unit/typical/impute/name edits;
- *incompatible* (refused with a one-line reason unless ``--new-lineage``, which starts a fresh
  lineage and leaves the old versions readable): a removed or retyped feature, a new required
  feature, a narrowed range, a removed category value, a new value on a feature without
  ``other``, ``other`` switched off, an optional feature made required, a changed label set.

``check_serving`` applies it against the schema in the serving model's ``metadata.json`` (the
worker at start, ``deploy``).

>>> from autotraining.schema import Schema
>>> old = Schema.from_dict({"features": [{"name": "a", "min": 0, "max": 1}], "labels": ["x", "y"]})
>>> compare(old, Schema.from_dict({"features": [{"name": "a", "min": -1, "max": 1}], "labels": ["x", "y"]}))
SchemaChange(compatible=True, reason='compatible: a: range widened')
>>> compare(old, Schema.from_dict({"features": [{"name": "a"}], "labels": ["x", "z"]})).reason
'incompatible: the label set changed from [x, y] to [x, z]'
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from autotraining.artifacts import METADATA_JSON, model_key
from autotraining.registry import Registry
from autotraining.schema import Feature, Schema, SchemaError


@dataclass(frozen=True)
class SchemaChange:
    compatible: bool
    reason: str  # one line: "same schema", "compatible: ...", "incompatible: ..."


class IncompatibleSchema(ValueError):
    """The schema cannot continue the serving model's lineage (the message is one line)."""


def _feature_change(o: Feature, n: Feature) -> tuple[bool, str]:
    """(compatible, what changed) for a feature present in both schemas ('' when nothing did)."""
    if o.type != n.type and not (o.type == "integer" and n.type == "number"):
        return False, f"feature {n.name!r} changed type from {o.type} to {n.type}"
    if o.optional and not n.optional:
        return False, f"feature {n.name!r} is no longer optional (logged records may lack it)"
    if n.min > o.min or n.max < o.max:
        return False, f"feature {n.name!r} range narrowed (logged records may fall outside it)"
    if o.type == "category":
        removed = [v for v in o.values if v not in n.values]
        added = [v for v in n.values if v not in o.values]
        if removed:
            return False, f"feature {n.name!r} lost category values {removed}"
        if o.other and not n.other:
            return False, f"feature {n.name!r} no longer has an 'other' bucket"
        if added and not o.other:
            return False, f"feature {n.name!r} gained values {added} but had no 'other' bucket"
        if [v for v in n.values if v in o.values] != list(o.values):
            return False, f"feature {n.name!r} reordered its category values"
    what = []
    if o.type != n.type:
        what.append("integer became number")
    if n.optional and not o.optional:
        what.append("became optional")
    if (n.min, n.max) != (o.min, o.max):
        what.append("range widened")
    if o.type == "category" and n.values != o.values:
        what.append(f"new values {[v for v in n.values if v not in o.values]}")
    if n.other and not o.other:
        what.append("gained an 'other' bucket")
    if (n.unit, n.description, n.typical, n.impute) != (o.unit, o.description, o.typical, o.impute):
        what.append("description/unit/typical/impute edited")
    return True, f"{n.name}: {', '.join(what)}" if what else ""


def compare(old: Schema, new: Schema) -> SchemaChange:
    """May ``new`` continue a lineage trained on ``old``? (See the module docstring.)"""
    if old.content_hash == new.content_hash:
        return SchemaChange(True, "same schema")
    if old.labels != new.labels:
        return SchemaChange(False, f"incompatible: the label set changed from [{', '.join(old.labels)}] "
                                   f"to [{', '.join(new.labels)}]")
    removed = [n for n in old.feature_names if n not in new.feature_names]
    if removed:
        return SchemaChange(False, f"incompatible: feature {removed[0]!r} was removed")
    notes = []
    for f in new.features:
        if f.name not in old.feature_names:
            if not f.optional:
                return SchemaChange(False, f"incompatible: new feature {f.name!r} is required (logged records "
                                           "lack it; make it optional)")
            notes.append(f"new optional feature {f.name!r}")
            continue
        ok, what = _feature_change(old.feature(f.name), f)
        if not ok:
            return SchemaChange(False, f"incompatible: {what}")
        if what:
            notes.append(what)
    return SchemaChange(True, "compatible: " + ("; ".join(notes) or "name or description edited"))


def serving_schema(s3: Any, bucket: str, registry: Registry) -> Schema | None:
    """The schema the serving model was trained on (its ``metadata.json``), or None before any model."""
    latest = registry.latest()
    if latest is None or not latest.model_version:
        return None
    body = s3.get_object(Bucket=bucket, Key=model_key(latest.model_version, METADATA_JSON))["Body"].read()
    try:
        return Schema.from_dict(json.loads(body)["schema"], f"model {latest.model_version} metadata.json")
    except (ValueError, KeyError, SchemaError):
        return None  # a model from before typed schemas with a schema we cannot read: nothing to protect


def check_serving(s3: Any, bucket: str, registry: Registry, schema: Schema, new_lineage: bool) -> SchemaChange:
    """``compare`` against the serving model; raises ``IncompatibleSchema`` unless ``new_lineage``."""
    old = serving_schema(s3, bucket, registry)
    if old is None:
        return SchemaChange(True, "no serving model yet")
    change = compare(old, schema)
    if not change.compatible and not new_lineage:
        raise IncompatibleSchema(f"schema {schema.tag} cannot continue the lineage of {old.tag}: {change.reason}; "
                                 "pass --new-lineage to start a fresh model lineage (old versions stay readable)")
    return change
