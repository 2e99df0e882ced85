"""The issue's acceptance, end to end: `autotraining local`'s stack with AUTOTRAINING_SCHEMA_FILE pointing
at a schema with a category, a boolean and an optional feature accepts records, refuses bad ones,
trains with the real worker process, publishes, and POST /predict answers rows with missing values."""
from __future__ import annotations

import pytest
from e2e_fixtures import call_status, predict_when_serving
from schema_fixtures import MIXED_SCHEMA_FILE, mixed_rows, mixed_schema

from autotraining.generator import generate
from autotraining.registry import Registry
from autotraining.segments import LOG_PREFIX
from autotraining_tools.local.stack import EmbeddedStack

pytestmark = pytest.mark.e2e


def test_mixed_schema_records_train_publish_and_predict_with_missing_values(monkeypatch) -> None:
    import time

    schema = mixed_schema()
    monkeypatch.setenv("AUTOTRAINING_SCHEMA_FILE", MIXED_SCHEMA_FILE)
    records = generate(schema, 3000, seed=5)
    rows = [{k: v for k, v in r.to_log_dict(schema).items() if v is not None or i % 2} for i, r in
            enumerate(records)]  # missing values sent both as null and as an absent key
    with EmbeddedStack(batch_size=1000, batch_window=1.0, idle_grace=6.0, boot_delay=1.0,
                       schedule_seconds=5.0) as stack:
        api = stack.api_url
        registry = Registry(stack.aws.dynamodb, stack.settings.models_table)
        bad = [{**rows[0], "id": "bad-1", "charging": "yes"}, {**rows[1], "id": "bad-2", "cpu_load": None}]
        status, body = call_status(f"{api}/records", "POST", bad)
        assert status == 400 and [(e["index"], e["field"]) for e in body["errors"]] == [(0, "charging"),
                                                                                      (1, "cpu_load")]
        for i in range(0, len(rows), 1000):
            status, body = call_status(f"{api}/records", "POST", rows[i:i + 1000])
            assert status == 201 and body["accepted"] == 1000

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not (registry.latest() and registry.latest().records_seen == 3000):
            time.sleep(0.5)
        latest = registry.latest()
        assert latest is not None and latest.records_seen == 3000 and latest.model_version

        answer = predict_when_serving(api, mixed_rows(), latest.model_version)
        assert len(answer["predictions"]) == len(mixed_rows())
        status, history = call_status(f"{api}/models")
        assert history["versions"][0]["metrics"]["schema"] == schema.tag  # the worker used the custom schema
        held_out = generate(schema, 500, seed=77)
        status, answer = call_status(f"{api}/predict", "POST", [{k: v for k, v in r.to_log_dict(schema).items()
                                                          if k in schema.feature_names} for r in held_out])
        accuracy = sum(p["label"] == r.label for p, r in zip(answer["predictions"], held_out, strict=True)) / 500
        assert accuracy >= 0.8, accuracy
        s3, bucket = stack.aws.s3, stack.settings.bucket
        key = s3.list_objects_v2(Bucket=bucket, Prefix=LOG_PREFIX)["Contents"][0]["Key"]
        assert s3.head_object(Bucket=bucket, Key=key)["Metadata"]["schema"] == schema.tag
        assert registry.get("000001") is not None
