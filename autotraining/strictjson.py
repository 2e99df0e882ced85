"""Strict JSON for everything the system writes: no NaN, no ±Infinity (browsers cannot parse them).

``finite`` turns a non-finite float anywhere in a JSON-like value into ``null`` (an unbounded
range, an accuracy that could not be computed); ``dumps`` is ``json.dumps`` over it with
``allow_nan=False``, so a non-finite value that slips through fails loudly instead of writing
``Infinity``.

>>> dumps({"max": float("inf"), "acc": [0.5, float("nan")]}, sort_keys=True)
'{"acc": [0.5, null], "max": null}'
"""
from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (in dicts, lists, tuples) replaced by ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` that never writes NaN or Infinity (they become null)."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)
