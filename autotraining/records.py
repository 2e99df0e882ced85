"""A labeled record and its three shapes: the DynamoDB item, the stream image and the log line.

A record's ``id`` is the client's when given (so a re-sent record is stored and logged once)
or a fresh UUID. ``created`` is epoch milliseconds. Feature values are typed, in schema order:
floats for numbers, ``bool`` for booleans, ``str`` for categories, ``None`` for a missing optional
feature (DynamoDB ``NULL``, JSON ``null``). ``seq`` is the record's DynamoDB stream sequence number,
set by the stream handler when it logs the record (the worker dedupes by shard + ``seq``); log
lines written before it existed have none and read back with ``seq == ""``.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autotraining.schema import CREATED_FIELD, ID_FIELD, LABEL_FIELD, Feature, Schema, Value

SEQ_FIELD = "seq"  # the log line's stream sequence number (not a schema field; absent in old segments)


@dataclass(frozen=True)
class Record:
    id: str
    features: tuple[Value, ...]  # in schema feature order: float, bool, str, or None (a missing optional one)
    label: str
    created: int  # epoch ms
    seq: str = ""  # stream sequence number (log lines only; "" in items and old segments)

    def to_item(self, schema: Schema) -> dict[str, dict[str, Any]]:
        """The DynamoDB (low-level, typed) item: numbers N, categories S, booleans BOOL, missing NULL."""
        item: dict[str, dict[str, Any]] = {ID_FIELD: {"S": self.id}, LABEL_FIELD: {"S": self.label},
                                           CREATED_FIELD: {"N": str(self.created)}}
        for name, value in zip(schema.feature_names, self.features, strict=True):
            item[name] = _attribute(value)
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Mapping[str, Any]], schema: Schema) -> Record:
        """From a DynamoDB item or a stream ``NewImage`` (same typed shape)."""
        return cls(
            id=item[ID_FIELD]["S"],
            features=tuple(_from_attribute(item.get(f.name), f) for f in schema.features),
            label=item[LABEL_FIELD]["S"],
            created=int(item[CREATED_FIELD]["N"]),
        )

    def to_log_dict(self, schema: Schema) -> dict[str, Any]:
        out: dict[str, Any] = {ID_FIELD: self.id}
        out.update(zip(schema.feature_names, self.features, strict=True))
        out[LABEL_FIELD] = self.label
        out[CREATED_FIELD] = self.created
        if self.seq:
            out[SEQ_FIELD] = self.seq
        return out

    def to_log_line(self, schema: Schema) -> str:
        return json.dumps(self.to_log_dict(schema), separators=(",", ":"), ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_log_dict(cls, data: Mapping[str, Any], schema: Schema) -> Record:
        """From a log line's object. An optional feature the line lacks (a segment written before the
        feature was added) reads as missing; anything else that does not fit raises ``ValueError``."""
        return cls(id=str(data[ID_FIELD]), features=tuple(_from_log(data, f) for f in schema.features),
                   label=str(data[LABEL_FIELD]), created=int(data[CREATED_FIELD]),
                   seq=str(data.get(SEQ_FIELD, "")))


def _attribute(value: Value) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    return {"N": _number_text(value)}


def _from_attribute(attr: Mapping[str, Any] | None, f: Feature) -> Value:
    if attr is None or attr.get("NULL"):
        if f.optional:
            return None
        raise ValueError(f"feature {f.name!r} is missing")
    if f.type == "boolean":
        return bool(attr["BOOL"])
    if f.type == "category":
        return str(attr["S"])
    return float(attr["N"])


def _from_log(data: Mapping[str, Any], f: Feature) -> Value:
    v = data.get(f.name) if f.optional else data[f.name]
    if v is None:
        if f.optional:
            return None
        raise ValueError(f"feature {f.name!r} is null")
    if f.type == "boolean":
        if not isinstance(v, bool):
            raise ValueError(f"feature {f.name!r} is not a boolean")
        return v
    if f.type == "category":
        if not isinstance(v, str):
            raise ValueError(f"feature {f.name!r} is not a string")
        return v
    if isinstance(v, bool):
        raise ValueError(f"feature {f.name!r} is not a number")
    return float(v)


def new_record_id() -> str:
    return uuid.uuid4().hex


def _number_text(value: float) -> str:
    """DynamoDB number text: integral floats without a trailing '.0' (stable across round trips)."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))
