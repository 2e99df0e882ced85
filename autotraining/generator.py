"""Synthetic labeled records for any schema, seeded (fixtures, the demo, benchmarks, load tests).

For the default thermal-comfort schema the label follows a documented, physically sensible
rule: an *effective temperature* that rises with clothing and humidity and falls with air
speed (wind chill), split into three bands::

    eff = temp + 14·(clo − 0.6) + 0.06·(rh − 50) − 4·sqrt(wind)
    cold if eff < 70 °F,  warm if eff > 79 °F,  ok otherwise

(Clothing of 0.6 clo at 50 % humidity in still air is the reference; the band edges match a
comfortable 70–79 °F indoor range.) Features are drawn uniformly from each feature's
``typical`` range (its full range if none), which gives every label a fair share.

For any other schema of plain numbers the label is the argmax of a fixed random linear function of the
features scaled to [0, 1] (seeded by the schema name), so the data is learnable; a schema
with categories, booleans or optional features gets typed rows from ``generate_rows``.

>>> from autotraining.schema import load_schema
>>> recs = generate(load_schema(), 3, seed=1)
>>> [r.label in ("cold", "ok", "warm") for r in recs]
[True, True, True]
>>> generate(load_schema(), 3, seed=1) == recs
True
"""
from __future__ import annotations

import hashlib
import math

import numpy as np

from autotraining.encoding import Encoding
from autotraining.records import Record
from autotraining.schema import Schema, Value

BASE_CREATED_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: fixed so seeded output is reproducible


def comfort_label(temp: float, rh: float, clo: float, wind: float) -> str:
    eff = temp + 14.0 * (clo - 0.6) + 0.06 * (rh - 50.0) - 4.0 * math.sqrt(max(wind, 0.0))
    if eff < 70.0:
        return "cold"
    if eff > 79.0:
        return "warm"
    return "ok"


def _ranges(schema: Schema) -> tuple[np.ndarray, np.ndarray]:
    # Non-numeric features get [0, 1] (unused); an unbounded side falls back to a unit span.
    lo = np.array([f.typical[0] if f.typical else f.min if f.numeric else 0.0 for f in schema.features], dtype=float)
    hi = np.array([f.typical[1] if f.typical else f.max if f.numeric else 1.0 for f in schema.features], dtype=float)
    lo = np.where(np.isfinite(lo), lo, np.where(np.isfinite(hi), hi - 1.0, 0.0))
    hi = np.where(np.isfinite(hi), hi, lo + 1.0)
    return lo, hi


def label_rows(schema: Schema, x: np.ndarray) -> list[str]:
    """The generator's rule applied to feature rows (n × features)."""
    if schema.name == "thermal_comfort" and schema.feature_names == ("temp", "rh", "clo", "wind"):
        return [comfort_label(*map(float, row)) for row in x]
    seed = int.from_bytes(hashlib.sha256(schema.name.encode()).digest()[:4], "little")
    w = np.random.default_rng(seed).normal(size=(len(schema.features), len(schema.labels)))
    lo, hi = _ranges(schema)
    scaled = (x - lo) / np.where(hi > lo, hi - lo, 1.0) - 0.5
    return [schema.labels[i] for i in np.argmax(scaled @ w, axis=1)]


def generate_features(schema: Schema, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo, hi = _ranges(schema)
    x = rng.uniform(lo, hi, size=(n, len(schema.features)))
    for j, f in enumerate(schema.features):
        x[:, j] = np.round(x[:, j]) if f.type == "integer" else np.round(x[:, j], 3)
    return x


def _all_numeric(schema: Schema) -> bool:
    return all(f.numeric and not f.optional for f in schema.features)


def generate_rows(schema: Schema, n: int, seed: int) -> tuple[list[tuple[Value, ...]], list[str]]:
    """Typed rows and their labels for a schema with categories, booleans or optional features.

    Categories are drawn uniformly from their values (one row in 20 an unseen string when the
    feature has ``other``), booleans are fair coins, an optional feature is missing one time in
    ten. The label is the argmax of a fixed random linear function (seeded by the schema name)
    of the encoded row, numbers scaled to [0, 1] by their typical range."""
    rng = np.random.default_rng(seed)
    numbers = generate_features(schema, n, seed)
    columns: list[list[Value]] = []
    for j, f in enumerate(schema.features):
        if f.type == "category":
            pick = rng.integers(0, len(f.values), size=n)
            unseen = rng.random(n) < (0.05 if f.other else 0.0)
            col: list[Value] = [f"unseen-{k % 3}" if u else f.values[k] for k, u in zip(pick, unseen, strict=True)]
        elif f.type == "boolean":
            col = [bool(b) for b in rng.random(n) < 0.5]
        else:
            col = [float(v) for v in numbers[:, j]]
        if f.optional:
            gone = rng.random(n) < 0.1
            col = [None if g else v for g, v in zip(gone, col, strict=True)]
        columns.append(col)
    rows = list(zip(*columns, strict=True))
    enc = Encoding.from_schema(schema)
    x = enc.encode(rows)
    lo, hi = _ranges(schema)
    at = 0
    for j, ef in enumerate(enc.features):
        width = len(ef.columns)
        if ef.type == "number":
            x[:, at] = (x[:, at] - lo[j]) / (hi[j] - lo[j] if hi[j] > lo[j] else 1.0)
        at += width
    key = int.from_bytes(hashlib.sha256(schema.name.encode()).digest()[:4], "little")
    w = np.random.default_rng(key).normal(size=(enc.width, len(schema.labels)))
    labels = [schema.labels[i] for i in np.argmax((x - 0.5) @ w, axis=1)]
    return rows, labels


def generate(schema: Schema, n: int, seed: int = 0, id_prefix: str | None = None) -> list[Record]:
    """``n`` labeled records; the same (schema, n, seed) gives the same records, ids included."""
    prefix = id_prefix if id_prefix is not None else f"gen-{seed}-"
    if not _all_numeric(schema):
        rows, typed_labels = generate_rows(schema, n, seed)
        return [Record(id=f"{prefix}{i:08d}", features=rows[i], label=typed_labels[i],
                       created=BASE_CREATED_MS + i) for i in range(n)]
    x = generate_features(schema, n, seed)
    labels = label_rows(schema, x)
    return [Record(id=f"{prefix}{i:08d}", features=tuple(float(v) for v in x[i]), label=labels[i],
                   created=BASE_CREATED_MS + i) for i in range(n)]
