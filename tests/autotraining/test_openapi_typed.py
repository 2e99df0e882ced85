"""The OpenAPI description follows typed schemas: categories, booleans and optional features."""
from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from autotraining.generator import generate
from autotraining.openapi import document
from autotraining.schema import load_schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "autotraining" / "schemas" / "device_health.json"


@pytest.fixture(scope="module")
def typed():
    return load_schema(str(SCHEMA_FILE))


@pytest.fixture(scope="module")
def record_validator(typed):
    return jsonschema.Draft202012Validator(document(typed)["components"]["schemas"]["Record"])


def test_generated_typed_records_conform_to_the_description(typed, record_validator):
    for rec in generate(typed, 50, seed=3):
        record_validator.validate(rec.to_log_dict(typed))


def test_description_refuses_what_validation_refuses(typed, record_validator):
    good = generate(typed, 1, seed=4)[0].to_log_dict(typed)
    boolean = next(f for f in typed.features if f.type == "boolean")
    closed = next((f for f in typed.features if f.type == "category" and not f.other), None)
    required = next(f for f in typed.features if not f.optional)
    assert not record_validator.is_valid({**good, boolean.name: "yes"})
    assert not record_validator.is_valid({k: v for k, v in good.items() if k != required.name})
    if closed is not None:
        assert not record_validator.is_valid({**good, closed.name: "never-seen-value"})


def test_optional_features_may_be_null_or_absent(typed, record_validator):
    good = generate(typed, 1, seed=5)[0].to_log_dict(typed)
    optional = [f.name for f in typed.features if f.optional]
    assert optional, "the example schema has an optional feature"
    assert record_validator.is_valid({**good, **{name: None for name in optional}})
    assert record_validator.is_valid({k: v for k, v in good.items() if k not in optional})
