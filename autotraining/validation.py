"""Validation of incoming rows against the schema, with one error per bad field.

``validate_records`` (uploads: label required) and ``validate_rows`` (predictions: features
only) check a parsed JSON payload and either return clean values or raise ``InvalidInput``
carrying ``[{"index", "field", "message"}, ...]``; nothing is half-accepted. ``parse_json``
refuses non-JSON, the non-standard constants NaN and Infinity, numbers of more than
``MAX_NUMBER_CHARS`` characters or beyond a double's range, and nesting deeper than ``MAX_DEPTH``,
so no body reaches code that would overflow or recurse on it. Ids are ASCII and matched whole
(no trailing newline slips through ``$``), ``created`` lies between 0 and ``MAX_CREATED_MS``.
"""
from __future__ import annotations

import json
import math
import re
import time
from typing import Any

from autotraining.errors import FieldError, InvalidInput
from autotraining.records import Record, new_record_id
from autotraining.schema import CREATED_FIELD, ID_FIELD, LABEL_FIELD, Feature, Schema, Value

ID_PATTERN = re.compile(r"\A[A-Za-z0-9._:\-]{1,128}\Z", re.ASCII)
MAX_DEPTH = 16  # arrays/objects inside each other; a valid body needs 3 ({"records": [{...}]})
MAX_NUMBER_CHARS = 40  # digits, sign, point and exponent of one number: far past a double's precision
# DynamoDB stores numbers of magnitude 1e-130 to 9.99e125 (or 0): anything else would fail the
# write after validation passed, so parse_json refuses it with the body's other problems.
MIN_MAGNITUDE, MAX_MAGNITUDE = 1e-130, 9.99e125
MAX_CREATED_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, well inside DynamoDB's number range


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


class _NumberRefused(ValueError):
    """A JSON number too long or beyond a double's range."""


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _NumberRefused(f"a number has {len(text)} characters; at most {MAX_NUMBER_CHARS} are allowed")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _NumberRefused(f"a number has {len(text)} characters; at most {MAX_NUMBER_CHARS} are allowed")
    value = float(text)
    if not math.isfinite(value):
        raise _NumberRefused(f"{text[:MAX_NUMBER_CHARS]} is beyond the range of a double")
    return value


def _parse_storable_float(text: str) -> float:
    value = _parse_float(text)
    if value != 0 and not MIN_MAGNITUDE <= abs(value) <= MAX_MAGNITUDE:
        raise _NumberRefused(f"{text} is outside the storable magnitudes {MIN_MAGNITUDE:g} to {MAX_MAGNITUDE:g} (or 0)")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether containers nest deeper than ``limit`` (iterative: a deep body cannot recurse here)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def parse_json(body: str | bytes | None, storable: bool = False) -> Any:
    """Parse a request body; raise ``InvalidInput`` for an empty, non-JSON, too deep or out-of-range body.

    ``storable``: also refuse numbers DynamoDB cannot store (bodies that are written: uploads).
    """
    if body is None or (isinstance(body, (str, bytes)) and not body.strip()):
        raise InvalidInput([FieldError(None, None, "the request body is empty; send a JSON array")])
    try:
        payload = json.loads(body, parse_constant=_refuse_constant, parse_int=_parse_int,
                             parse_float=_parse_storable_float if storable else _parse_float)
    except RecursionError:
        raise InvalidInput([FieldError(None, None, f"the body nests arrays/objects deeper than {MAX_DEPTH} levels")]) \
            from None
    except _NumberRefused as exc:
        raise InvalidInput([FieldError(None, None, f"the body is refused: {exc}")]) from None
    except ValueError as exc:
        raise InvalidInput([FieldError(None, None, f"the body is not valid JSON: {str(exc)[:200]}")]) from None
    if _depth_exceeds(payload, MAX_DEPTH):
        raise InvalidInput([FieldError(None, None, f"the body nests arrays/objects deeper than {MAX_DEPTH} levels")])
    return payload


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
        if ID_FIELD in row and (not isinstance(rid, str) or not ID_PATTERN.fullmatch(rid)):
            errors.append(FieldError(i, ID_FIELD, "must be a string of 1-128 letters, digits or . _ : -"))
        created = row.get(CREATED_FIELD)
        if isinstance(created, float) and created.is_integer():
            created = int(created)  # 1.7e12 is a whole number too (JSON has one number type)
        if CREATED_FIELD in row and (isinstance(created, bool) or not isinstance(created, int)
                                     or not 0 <= created <= MAX_CREATED_MS):
            errors.append(FieldError(i, CREATED_FIELD, "must be a whole number of epoch milliseconds from 0 to "
                                                       f"{MAX_CREATED_MS} (year 9999)"))
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
