"""The model the real worker trained, in the real TensorFlow.js: in Node and in the dashboard.

``worker_trained`` starts the embedded stack with everything on (gateway, stream poller,
scheduler, the instance agent running ``python -m worker``), uploads 2,000 seeded records over
HTTP and waits until the worker has trained, exported (tensorflowjs) and published a model for
all of them, and its instance has stopped again. The tests then load that export, the worker's
own bytes, not a fixture model: TF.js in Node (backends ``cpu`` and ``wasm``) through the proxy,
and the dashboard in headless Chromium, each checked against ``POST /predict`` to 1e-5. One
stack for the module (an embedded stack owns the process's AWS environment, so no other stack
may run beside it) keeps the cost to one short training run.
"""
from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serving_fixtures import post_json, tfjs_predict
from test_dashboard import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    TOLERANCE,
    WAIT_MS,
    corner_inputs,
    page_probabilities,
    server_prediction,
    set_inputs,
)

from autotraining.generator import generate
from autotraining.registry import Registry
from autotraining.schema import Schema, load_schema
from autotraining_tools.signing import signed_request

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(400)]

RECORDS = 2000


@dataclass(frozen=True)
class WorkerTrained:
    """The running stack and the version the worker published for the uploaded records."""

    stack: Any
    version: str


def _wait(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def worker_trained() -> Iterator[WorkerTrained]:
    from autotraining_tools.local.stack import EmbeddedStack

    schema = load_schema()
    records = generate(schema, RECORDS, seed=303, id_prefix="tfjs-")
    with EmbeddedStack(port=0, emulator_port=0, batch_size=1000, batch_window=1.0, idle_grace=3.0,
                       boot_delay=0.5, schedule_seconds=5.0) as stack:
        rows = [r.to_log_dict(schema) for r in records]
        for i in range(0, len(rows), 1000):
            req = signed_request(f"{stack.api_url}/records", data=json.dumps(rows[i:i + 1000]).encode(),
                                         method="POST", headers={"content-type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as resp:
                assert resp.status == 201
        registry = Registry(stack.aws.dynamodb, stack.settings.models_table)

        def trained() -> bool:
            latest = registry.latest()
            return latest is not None and latest.records_seen == RECORDS and bool(latest.model_version)

        _wait(f"the worker to train on all {RECORDS} records", trained, 180)
        # the worker then idles out and stops its instance: the CPU is the tests' again
        _wait("the worker to stop its instance", lambda: stack.instance_state() == "stopped", 60)
        latest = registry.latest()
        assert latest is not None
        yield WorkerTrained(stack=stack, version=latest.model_version)


@pytest.mark.parametrize("backend", ["cpu", "wasm"])
def test_tfjs_in_node_runs_the_model_the_worker_published_and_equals_post_predict(
        worker_trained: WorkerTrained, schema: Schema, backend: str) -> None:
    api = worker_trained.stack.api_url
    with urllib.request.urlopen(f"{api}/models/latest/metadata.json", timeout=30) as resp:  # follows the 302
        metadata = json.loads(resp.read())
    # the worker's own export: it names the log segments it consumed (a fixture model names none)
    assert metadata["version"] == worker_trained.version and metadata["segments"]
    assert metadata["records_seen"] == RECORDS
    records = generate(schema, 300, seed=11, id_prefix="check-")
    rows = [dict(zip(schema.feature_names, map(float, r.features), strict=True)) for r in records]
    status, answer = post_json(f"{api}/predict", rows)
    assert status == 200 and answer["version"] == worker_trained.version
    served = np.array([[p["probabilities"][label] for label in schema.labels] for p in answer["predictions"]])

    result = tfjs_predict(f"{api}/models/latest/model.json", [list(map(float, r.features)) for r in records],
                          list(schema.feature_names), backend=backend)
    assert result["tfjs"] == "4.22.0" and result["backend"] == backend
    tfjs = np.array(result["probabilities"])
    np.testing.assert_allclose(tfjs, served, atol=1e-5, rtol=0)
    # a model that learned the generator's rule, not just one that loads
    correct = sum(schema.labels[int(i)] == r.label for i, r in zip(tfjs.argmax(axis=1), records, strict=True))
    assert correct / len(records) >= 0.9


def test_dashboard_runs_the_model_the_worker_published_and_equals_post_predict(
        worker_trained: WorkerTrained, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install` (it installs Debian's chromium)")
    stack, version = worker_trained.stack, worker_trained.version
    schema = load_schema(stack.settings.schema_file)
    problems: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                        headless=True, args=CHROMIUM_FLAGS)
        try:
            page = context.new_page()
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(stack.api_url + "/")
            page.wait_for_selector(f'#prediction[data-state="ready"][data-version="{version}"]', timeout=WAIT_MS)
            tops = set()
            for values in corner_inputs(schema):
                features = set_inputs(page, values)
                in_browser = page_probabilities(page)
                server = server_prediction(stack.api_url, features)
                assert server["version"] == version
                expected = server["predictions"][0]["probabilities"]
                for label in schema.labels:
                    assert abs(in_browser[label] - expected[label]) <= TOLERANCE, (label, in_browser, expected)
                tops.add(server["predictions"][0]["label"])
            assert len(tops) >= 2  # the worker's model tells the corners apart
        finally:
            context.close()
    assert not problems, problems
