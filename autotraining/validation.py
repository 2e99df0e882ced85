"""Validation of incoming rows against the schema, with one error per bad field.

``validate_records`` (uploads: label required) and ``validate_rows`` (predictions: features
only) check a parsed JSON payload and either return clean values or raise ``InvalidInput``
carrying ``[{"index", "field", "message"}, ...]``; nothing is half-accepted. ``parse_json``
refuses non-JSON and the non-standard constants NaN and Infinity.
"""
from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from autotraining.records import Record, new_record_id
from autotraining.schema import CREATED_FIELD, ID_FIELD, LABEL_FIELD, Feature, Schema, Value

ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


@dataclass(frozen=True)
class FieldError:
    index: int | None  # row index in the request; None for the body as a whole
    field: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


class InvalidInput(ValueError):
    """The request cannot be accepted. ``status`` is 400, or 413 when it is too large."""

    def __init__(self, errors: list[FieldError], status: int = 400) -> None:
        self.errors = errors
        self.status = status
        super().__init__("; ".join(_describe(e) for e in errors[:5]))

    def to_body(self) -> dict[str, Any]:
        return {"message": str(self), "errors": [e.to_dict() for e in self.errors]}


def _describe(e: FieldError) -> str:
    where = []
    if e.index is not None:
        where.append(f"row {e.index}")
    if e.field is not None:
        where.append(f"field {e.field!r}")
    return (", ".join(where) + ": " if where else "") + e.message


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def parse_json(body: str | bytes | None) -> Any:
    """Parse a request body; raise ``InvalidInput`` for an empty body, non-JSON, NaN or Infinity."""
    if body is None or (isinstance(body, (str, bytes)) and not body.strip()):
        raise InvalidInput([FieldError(None, None, "the request body is empty; send a JSON array")])
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise InvalidInput([FieldError(None, None, f"the body is not valid JSON: {exc}")]) from None


def _rows(payload: Any, container_key: str, max_rows: int) -> list[Any]:
    if isinstance(payload, dict):
        if set(payload) != {container_key}:
            raise InvalidInput([FieldError(None, None,
                                           f"send a JSON array or an object with only the key {container_key!r}")])
        payload = payload[container_key]
    if not isinstance(payload, list):
        raise InvalidInput([FieldError(None, None, f"expected a JSON array of objects, got {_type(payload)}")])
    if not payload:
        raise InvalidInput([FieldError(None, None, "the array is empty; send at least one row")])
    if len(payload) > max_rows:
        raise InvalidInput([FieldError(None, None, f"{len(payload)} rows is more than the limit of {max_rows} "
                                                   "per request; split it into smaller requests")], status=413)
    return payload


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _check_features(i: int, row: dict[str, Any], schema: Schema, errors: list[FieldError]) -> tuple[Value, ...]:
    """The row's typed feature values in schema order (None for a missing optional feature)."""
    values: list[Value] = []
    for f in schema.features:
        v = row.get(f.name)
        if v is None:
            if f.optional:
                values.append(None)
            else:
                errors.append(FieldError(i, f.name, "missing; every schema feature is required"
                                         if f.name not in row else f"is null; {_wanted(f)} is required"))
            continue
        problem = _feature_problem(f, v)
        if problem:
            errors.append(FieldError(i, f.name, problem))
            continue
        values.append(v if f.type in ("boolean", "category") else float(v))
    return tuple(values)


def _wanted(f: Feature) -> str:
    return {"boolean": "true or false", "category": "one of its values"}.get(f.type, "a number")


def _feature_problem(f: Feature, v: Any) -> str:
    """What is wrong with a present value of feature ``f`` ('' when nothing is)."""
    if f.type == "boolean":
        return "" if isinstance(v, bool) else f"must be true or false, got {_type(v)}"
    if f.type == "category":
        if not isinstance(v, str):
            return f"must be a string (one of {', '.join(f.values)}), got {_type(v)}"
        if v not in f.values and not f.other:
            return f"{v[:40]!r} is not a known value; one of {', '.join(f.values)}"
        return ""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return f"must be a number, got {_type(v)}"
    if not math.isfinite(v):
        return "must be a finite number"
    if f.type == "integer" and not float(v).is_integer():
        return "must be a whole number"
    if not f.min <= v <= f.max:
        return f"{v} is out of range [{_num(f.min)}, {_num(f.max)}]"
    return ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def validate_records(payload: Any, schema: Schema, max_rows: int = 1000, now_ms: int | None = None) -> list[Record]:
    """Labeled records for upload; all-or-nothing. Rows sharing an ``id`` collapse to the first."""
    rows = _rows(payload, "records", max_rows)
    allowed = set(schema.feature_names) | {LABEL_FIELD, ID_FIELD, CREATED_FIELD}
    errors: list[FieldError] = []
    out: list[Record] = []
    now = int(time.time() * 1000) if now_ms is None else now_ms
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            errors.append(FieldError(i, None, f"must be a JSON object, got {_type(row)}"))
            continue
        before = len(errors)
        for extra in sorted(set(row) - allowed):
            errors.append(FieldError(i, extra, "unknown field; allowed: " + ", ".join(sorted(allowed))))
        features = _check_features(i, row, schema, errors)
        label = row.get(LABEL_FIELD)
        if label is None:
            errors.append(FieldError(i, LABEL_FIELD, "missing; one of " + ", ".join(schema.labels)
                                     if LABEL_FIELD not in row else "is null; one of " + ", ".join(schema.labels)))
        elif not isinstance(label, str) or label not in schema.labels:
            errors.append(FieldError(i, LABEL_FIELD, f"{label!r} is not a known label; one of "
                                     + ", ".join(schema.labels)))
        rid = row.get(ID_FIELD)
        if ID_FIELD in row and (not isinstance(rid, str) or not ID_PATTERN.match(rid)):
            errors.append(FieldError(i, ID_FIELD, "must be a string of 1-128 letters, digits or . _ : -"))
        created = row.get(CREATED_FIELD)
        if CREATED_FIELD in row and (isinstance(created, bool) or not isinstance(created, int) or created < 0):
            errors.append(FieldError(i, CREATED_FIELD, "must be a non-negative whole number (epoch milliseconds)"))
        if len(errors) == before:
            out.append(Record(id=rid if isinstance(rid, str) else new_record_id(), features=features,
                              label=str(label), created=int(created) if created is not None else now))
    if errors:
        raise InvalidInput(errors)
    unique: dict[str, Record] = {}
    for r in out:
        unique.setdefault(r.id, r)
    return list(unique.values())


def validate_rows(payload: Any, schema: Schema, max_rows: int = 100_000) -> list[tuple[Value, ...]]:
    """Feature rows for prediction (no label); unknown fields other than id/label are refused."""
    rows = _rows(payload, "rows", max_rows)
    allowed = set(schema.feature_names) | {ID_FIELD, LABEL_FIELD}
    errors: list[FieldError] = []
    out: list[tuple[Value, ...]] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            errors.append(FieldError(i, None, f"must be a JSON object, got {_type(row)}"))
            continue
        for extra in sorted(set(row) - allowed):
            errors.append(FieldError(i, extra, "unknown field; allowed: " + ", ".join(sorted(allowed))))
        out.append(_check_features(i, row, schema, errors))
    if errors:
        raise InvalidInput(errors)
    return out
