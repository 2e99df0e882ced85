"""The one encoding from typed feature values to the model's numeric input vector.

The worker trains on it, the numpy predictor (``POST /predict``) applies it, and TensorFlow.js
applies the same rules from ``handlers/static/encoding.js`` (the dashboard and the Node tests
load that one file). The encoding is a pure function of the schema and travels with every
model in ``metadata.json`` (``Encoding.to_dict``), so a client encodes with the model's own
encoding, never with whatever schema it happens to have.

Columns, per feature in schema order:

- ``number``/``integer``: the raw value (the model's first layer standardizes it);
- ``boolean``: 1 for true, 0 for false;
- ``category``: one-hot over ``values`` (in order), plus an ``<name>=(other)`` column when the
  feature has ``other`` (an unseen string sets it; without ``other`` an unseen string is refused
  by validation, and would encode as all zeros);
- any ``optional`` feature adds ``<name>?missing``: 1 when the value is missing, then the value
  column(s) hold the imputed number (``Feature.imputed``) or zeros (boolean, category).

>>> from autotraining.schema import Schema
>>> s = Schema.from_dict({"features": [
...     {"name": "island", "type": "category", "values": ["Biscoe", "Dream"], "other": True},
...     {"name": "smoker", "type": "boolean"},
...     {"name": "bill", "type": "number", "min": 0, "max": 100, "optional": True}], "labels": ["a", "b"]})
>>> enc = Encoding.from_schema(s)
>>> enc.columns
('island=Biscoe', 'island=Dream', 'island=(other)', 'smoker', 'bill', 'bill?missing')
>>> enc.encode([("Dream", True, 41.5), ("Torgersen", False, None)]).tolist()
[[0.0, 1.0, 0.0, 1.0, 41.5, 0.0], [0.0, 0.0, 1.0, 0.0, 50.0, 1.0]]
>>> Encoding.from_dict(enc.to_dict()) == enc
True
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autotraining.schema import Schema, Value

ENCODING_VERSION = 1
OTHER = "(other)"
MISSING = "?missing"


@dataclass(frozen=True)
class EncodedFeature:
    """How one feature becomes columns (see the module docstring)."""

    name: str
    type: str  # number | boolean | category (integer encodes like number)
    values: tuple[str, ...] = ()
    other: bool = False
    optional: bool = False
    impute: float = 0.0

    @property
    def columns(self) -> tuple[str, ...]:
        if self.type == "category":
            cols = [f"{self.name}={v}" for v in self.values] + ([f"{self.name}={OTHER}"] if self.other else [])
        else:
            cols = [self.name]
        return (*cols, f"{self.name}{MISSING}") if self.optional else tuple(cols)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "optional": self.optional}
        if self.type == "category":
            out.update(values=list(self.values), other=self.other)
        if self.type == "number" and self.optional:
            out["impute"] = self.impute
        return out

    def fill(self, value: Value, out: np.ndarray) -> None:
        """Write this feature's columns for one value into ``out`` (zeros on entry)."""
        if value is None:
            if self.optional:
                out[-1] = 1.0
                if self.type == "number":
                    out[0] = self.impute
            return
        if self.type == "category":
            if value in self.values:
                out[self.values.index(str(value))] = 1.0
            elif self.other:
                out[len(self.values)] = 1.0
        elif self.type == "boolean":
            out[0] = 1.0 if value is True else 0.0
        else:
            out[0] = float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Encoding:
    """The encoding of a schema's features (``from_schema``) or of a published model (``from_dict``)."""

    features: tuple[EncodedFeature, ...]

    @classmethod
    def from_schema(cls, schema: Schema) -> Encoding:
        return cls(tuple(EncodedFeature(
            name=f.name, type="number" if f.numeric else f.type, values=f.values, other=f.other,
            optional=f.optional, impute=f.imputed if f.numeric and f.optional else 0.0) for f in schema.features))

    @classmethod
    def identity(cls, feature_names: Sequence[str]) -> Encoding:
        """Plain required numbers: what a model published before encodings existed takes."""
        return cls(tuple(EncodedFeature(name=n, type="number") for n in feature_names))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Encoding:
        """From ``metadata.json``'s ``encoding``; raises ``ValueError`` when it is not one."""
        try:
            feats = tuple(EncodedFeature(
                name=str(f["name"]), type=str(f["type"]), values=tuple(str(v) for v in f.get("values", ())),
                other=bool(f.get("other", False)), optional=bool(f.get("optional", False)),
                impute=float(f.get("impute", 0.0))) for f in data["features"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an encoding: {exc}") from None
        if any(f.type not in ("number", "boolean", "category") for f in feats):
            raise ValueError("not an encoding: unknown feature type")
        return cls(feats)

    def to_dict(self) -> dict[str, Any]:
        return {"version": ENCODING_VERSION, "features": [f.to_dict() for f in self.features],
                "columns": list(self.columns)}

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for f in self.features for c in f.columns)

    @property
    def width(self) -> int:
        return len(self.columns)

    def encode(self, rows: Sequence[Sequence[Value]]) -> np.ndarray:
        """n × width float64 matrix from typed rows in this encoding's feature order."""
        out = np.zeros((len(rows), self.width), dtype=np.float64)
        spans = self._spans()
        for i, row in enumerate(rows):
            for f, (a, b), value in zip(self.features, spans, row, strict=True):
                f.fill(value, out[i, a:b])
        return out

    def encode_named(self, rows: Sequence[Mapping[str, Value]]) -> np.ndarray:
        """Like ``encode`` for rows keyed by feature name (an absent name is a missing value)."""
        return self.encode([[row.get(n) for n in self.feature_names] for row in rows])

    def _spans(self) -> list[tuple[int, int]]:
        spans, at = [], 0
        for f in self.features:
            spans.append((at, at + len(f.columns)))
            at += len(f.columns)
        return spans

    def migrate(self, x: np.ndarray, old: Encoding) -> np.ndarray:
        """Rows encoded with ``old`` re-expressed in this encoding, column by column name: a column
        ``old`` lacks holds what a record without that feature would (missing indicator 1 for a new
        feature, 0 when a feature only became optional; the imputed value; 0 for a new category)."""
        old_cols = {c: j for j, c in enumerate(old.columns)}
        known = set(old.feature_names)
        out = np.zeros((x.shape[0], self.width), dtype=np.float64)
        at = 0
        for f in self.features:
            for c in f.columns:
                if c in old_cols:
                    out[:, at] = x[:, old_cols[c]]
                elif c.endswith(MISSING) and c == f"{f.name}{MISSING}":
                    out[:, at] = 0.0 if f.name in known else 1.0
                elif f.type == "number" and c == f.name:
                    out[:, at] = f.impute
                at += 1
        return out
