"""The real TensorFlow.js 4.22 in Node loads a published model through the running gateway's proxy and
agrees with POST /predict to 1e-5 (the issue's "both must agree" claim, end to end over HTTP)."""
from __future__ import annotations

import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from serving_fixtures import export_model, post_json, publish, tfjs_predict

from autotraining.generator import generate_features
from autotraining_tools.local.stack import EmbeddedStack

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def stack():
    with EmbeddedStack(port=0, emulator_port=0, run_agent=False, run_scheduler=False, run_poller=False) as s:
        yield s


def _status(url: str, method: str = "GET") -> int:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, method=method), timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_tfjs_in_node_loads_through_the_proxy_and_equals_post_predict(stack, schema):
    status, body = post_json(f"{stack.api_url}/predict", [{"temp": 70, "rh": 40, "clo": 0.5, "wind": 0.1}])
    assert status == 503  # nothing published yet
    round_ = publish(stack.aws, schema, export_model(schema, seed=4, hidden=(16, 8)))
    x = generate_features(schema, 300, seed=11)
    rows = [dict(zip(schema.feature_names, map(float, r), strict=False)) for r in x]
    deadline = time.monotonic() + stack.settings.model_cache_seconds + 5  # the container re-checks `latest` that often
    while True:
        status, answer = post_json(f"{stack.api_url}/predict", rows)
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200 and answer["version"] == round_.version
    served = np.array([[p["probabilities"][label] for label in schema.labels] for p in answer["predictions"]])

    result = tfjs_predict(f"{stack.api_url}/models/latest/model.json", x.tolist(), list(schema.feature_names))
    assert result["tfjs"] == "4.22.0"
    tfjs = np.array(result["probabilities"])
    assert tfjs.shape == (300, len(schema.labels))
    np.testing.assert_allclose(tfjs, served, atol=1e-5, rtol=0)
    assert len(set(served.argmax(axis=1))) > 1  # a model that actually discriminates


def test_proxy_over_http_refuses_the_issue_paths_and_redirects_good_ones(stack, schema):
    if not stack.aws.dynamodb.get_item(TableName=stack.settings.models_table, Key={"pk": {"S": "latest"}}).get("Item"):
        publish(stack.aws, schema, export_model(schema))
    bad = ["/models/latest/../../state", "/models/latest/%2e%2e/%2e%2e/records", "/models/latest/..%2f..%2fx",
           "/models/does-not-exist/model.json", "/models/latest/not-a-model-file.txt",
           "/models/latest/%2Fetc%2Fpasswd"]
    for path in bad:
        # urllib sends the path as given (no dot-segment normalisation), like `curl --path-as-is`.
        assert 400 <= _status(stack.api_url + path) < 500, path
    assert _status(f"{stack.api_url}/models/latest/model.json") == 302
    assert _status(f"{stack.api_url}/models/latest/model.json", method="OPTIONS") == 204
