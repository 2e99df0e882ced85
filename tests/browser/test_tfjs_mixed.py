"""TensorFlow.js in Node and POST /predict agree to 1e-5 on rows with categories, booleans and missing
values: the dashboard's own encoding.js against the numpy predictor's encoding, end to end over HTTP."""
from __future__ import annotations

import time

import numpy as np
import pytest
from schema_fixtures import MIXED_SCHEMA_FILE, mixed_rows, mixed_schema
from serving_fixtures import export_model, post_json, publish, tfjs_predict

from autotraining.generator import generate
from autotraining_tools.local.stack import EmbeddedStack

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_tfjs_in_node_and_post_predict_agree_on_mixed_rows(monkeypatch):
    schema = mixed_schema()
    monkeypatch.setenv("AUTOTRAINING_SCHEMA_FILE", MIXED_SCHEMA_FILE)
    rows = mixed_rows() + [{n: v for n, v in zip(schema.feature_names, r.features, strict=True) if v is not None}
                           for r in generate(schema, 200, seed=21)]
    assert any("battery_temp" not in r for r in rows) and any(r["battery_temp"] is None for r in rows if
                                                              "battery_temp" in r)
    with EmbeddedStack(port=0, emulator_port=0, run_agent=False, run_scheduler=False, run_poller=False) as stack:
        round_ = publish(stack.aws, schema, export_model(schema, seed=3, hidden=(16, 8)))
        deadline = time.monotonic() + stack.settings.model_cache_seconds + 5
        while True:
            status, answer = post_json(f"{stack.api_url}/predict", rows)
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status == 200 and answer["version"] == round_.version, answer
        served = np.array([[p["probabilities"][label] for label in schema.labels] for p in answer["predictions"]])
        result = tfjs_predict(f"{stack.api_url}/models/latest/model.json", rows, list(schema.feature_names))
    tfjs = np.array(result["probabilities"])
    assert tfjs.shape == (len(rows), len(schema.labels))
    np.testing.assert_allclose(tfjs, served, atol=1e-5, rtol=0)
    assert len(set(served.argmax(axis=1))) > 1  # a model that actually discriminates
