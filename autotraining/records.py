"""A labeled record and its three shapes: the DynamoDB item, the stream image and the log line.

A record's ``id`` is the client's when given (so a re-sent record is stored and logged once)
or a fresh UUID. ``created`` is epoch milliseconds. Feature values are floats in schema order.
``seq`` is the record's DynamoDB stream sequence number, set by the stream handler when it
logs the record (the worker dedupes by shard + ``seq``); log lines written before it existed
have none and read back with ``seq == ""``.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autotraining.schema import CREATED_FIELD, ID_FIELD, LABEL_FIELD, Schema

SEQ_FIELD = "seq"  # the log line's stream sequence number (not a schema field; absent in old segments)


@dataclass(frozen=True)
class Record:
    id: str
    features: tuple[float, ...]  # in schema feature order
    label: str
    created: int  # epoch ms
    seq: str = ""  # stream sequence number (log lines only; "" in items and old segments)

    def to_item(self, schema: Schema) -> dict[str, dict[str, str]]:
        """The DynamoDB (low-level, typed) item."""
        item: dict[str, dict[str, str]] = {ID_FIELD: {"S": self.id}, LABEL_FIELD: {"S": self.label},
                                           CREATED_FIELD: {"N": str(self.created)}}
        for name, value in zip(schema.feature_names, self.features, strict=True):
            item[name] = {"N": _number_text(value)}
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Mapping[str, str]], schema: Schema) -> Record:
        """From a DynamoDB item or a stream ``NewImage`` (same typed shape)."""
        return cls(
            id=item[ID_FIELD]["S"],
            features=tuple(float(item[name]["N"]) for name in schema.feature_names),
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
        return json.dumps(self.to_log_dict(schema), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_log_dict(cls, data: Mapping[str, Any], schema: Schema) -> Record:
        return cls(id=str(data[ID_FIELD]), features=tuple(float(data[n]) for n in schema.feature_names),
                   label=str(data[LABEL_FIELD]), created=int(data[CREATED_FIELD]), seq=str(data.get(SEQ_FIELD, "")))


def new_record_id() -> str:
    return uuid.uuid4().hex


def _number_text(value: float) -> str:
    """DynamoDB number text: integral floats without a trailing '.0' (stable across round trips)."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))
