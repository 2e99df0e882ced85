"""A mixed-type schema for tests: a category with an "other" bucket, a boolean, an optional number.

It is the packaged example ``autotraining/schemas/device_health.json`` (so the docs' example is
the tested one); ``mixed_rows`` are hand-picked rows covering every encoding case.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from autotraining.schema import Schema, load_schema

MIXED_SCHEMA_FILE = str(Path(str(resources.files("autotraining.schemas").joinpath("device_health.json"))))


def mixed_schema() -> Schema:
    return load_schema(MIXED_SCHEMA_FILE)


def mixed_rows() -> list[dict[str, Any]]:
    """Rows with every case: each category, an unseen category, both booleans, a null and an absent value."""
    return [
        {"device": "phone", "charging": True, "battery_temp": 31.5, "cpu_load": 12.0},
        {"device": "tablet", "charging": False, "battery_temp": None, "cpu_load": 80.0},
        {"device": "laptop", "charging": True, "cpu_load": 55.5},
        {"device": "smartwatch", "charging": False, "battery_temp": 44.0, "cpu_load": 99.0},
        {"device": "laptop", "charging": False, "battery_temp": -3.25, "cpu_load": 0.0},
    ]
