"""Schema changes: each compatible change continues the lineage, each incompatible one is refused in one line."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from schema_fixtures import mixed_schema

from autotraining.schema import Schema
from autotraining.schema_change import compare

Edit = Callable[[dict[str, Any]], None]


def feature(d: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in d["features"] if f["name"] == name)


def edited(edit: Edit) -> Schema:
    d = json.loads(json.dumps(mixed_schema().to_dict()))
    edit(d)
    return Schema.from_dict(d)


COMPATIBLE: dict[str, Edit] = {
    "a new optional feature": lambda d: d["features"].append({"name": "fan", "type": "boolean", "optional": True}),
    "a required feature made optional": lambda d: feature(d, "cpu_load").update(optional=True),
    "a widened range": lambda d: feature(d, "battery_temp").update(min=-40, max=90),
    "a new category value on a feature with other": lambda d: feature(d, "device")["values"].append("watch"),
    "description and unit edits": lambda d: feature(d, "cpu_load").update(description="load", unit="percent"),
    "typical and impute edits": lambda d: feature(d, "battery_temp").update(typical=[10, 50], impute=25),
    "an integer made a number": lambda d: None,
    "a renamed schema": lambda d: d.update(name="renamed", description="another text"),
}
INCOMPATIBLE: dict[str, tuple[Edit, str]] = {
    "a removed feature": (lambda d: d["features"].pop(1), "feature 'charging' was removed"),
    "a retyped feature": (lambda d: feature(d, "charging").update(type="number"),
                          "feature 'charging' changed type from boolean to number"),
    "a new required feature": (lambda d: d["features"].append({"name": "fan", "type": "boolean"}),
                               "new feature 'fan' is required"),
    "an optional feature made required": (lambda d: feature(d, "battery_temp").update(optional=False),
                                          "feature 'battery_temp' is no longer optional"),
    "a narrowed range": (lambda d: feature(d, "cpu_load").update(max=50, typical=[0, 50]), "feature 'cpu_load' range narrowed"),
    "a removed category value": (lambda d: feature(d, "device")["values"].remove("tablet"),
                                 "feature 'device' lost category values ['tablet']"),
    "other switched off": (lambda d: feature(d, "device").update(other=False),
                           "feature 'device' no longer has an 'other' bucket"),
    "a changed label set": (lambda d: d.update(labels=["cool", "hot"]),
                            "the label set changed from [cool, warm, hot] to [cool, hot]"),
    "reordered labels": (lambda d: d.update(labels=["hot", "warm", "cool"]), "the label set changed"),
}


def test_the_same_schema_is_the_same_lineage() -> None:
    assert compare(mixed_schema(), edited(lambda d: None)).reason == "same schema"


@pytest.mark.parametrize("case", sorted(COMPATIBLE))
def test_a_compatible_change_continues_the_lineage(case: str) -> None:
    old = mixed_schema()
    if case == "an integer made a number":
        old = edited(lambda d: feature(d, "cpu_load").update(type="integer"))
    change = compare(old, edited(COMPATIBLE[case]))
    assert change.compatible and change.reason.startswith("compatible: "), change


@pytest.mark.parametrize("case", sorted(INCOMPATIBLE))
def test_an_incompatible_change_is_refused_with_a_one_line_reason(case: str) -> None:
    edit, says = INCOMPATIBLE[case]
    change = compare(mixed_schema(), edited(edit))
    assert not change.compatible and change.reason.startswith("incompatible: ") and says in change.reason
    assert "\n" not in change.reason


def test_a_new_value_without_other_is_incompatible() -> None:
    closed = edited(lambda d: feature(d, "device").update(other=False))
    change = compare(closed, edited(lambda d: (feature(d, "device").update(other=False),
                                               feature(d, "device")["values"].append("watch"))))
    assert not change.compatible and "gained values ['watch'] but had no 'other' bucket" in change.reason
