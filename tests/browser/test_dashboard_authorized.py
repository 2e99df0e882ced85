"""The dashboard of a stack with authorized reads, opened in a real headless Chromium through `autotraining dashboard`.

The stack (IAM writes, ``read_auth="authorized"``) refuses the browser's own, unsigned requests;
through the proxy (the command's server object, signing with the stack's credentials) the page
loads, draws the history, and TensorFlow.js loads the serving model through the model proxy's
302 to a presigned S3 URL, answering as ``POST /predict`` does to 1e-5. The models are the ones
``test_dashboard.py`` publishes (``export_model`` is cached per process: no extra training).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
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

from autotraining.schema import load_schema

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def stack() -> Iterator[Any]:
    from serving_fixtures import commit_rejected, export_model, publish

    from autotraining_tools.local.stack import EmbeddedStack

    with EmbeddedStack(port=0, emulator_port=0, run_agent=False, run_scheduler=False, run_poller=False,
                       read_auth="authorized") as s:
        schema = load_schema(s.settings.schema_file)
        publish(s.aws, schema, export_model(schema), records_seen=1500, new_records=1500, holdout_accuracy=0.81)
        commit_rejected(s.aws, schema, records_seen=2700, new_records=1200, holdout_accuracy=0.7,
                        gate="worse by 0.110 (tolerance 0.020)")
        s.serving = publish(s.aws, schema, export_model(schema, seed=3), records_seen=4000, new_records=1300,
                            holdout_accuracy=0.9, prequential_accuracy=0.8).version
        yield s


@pytest.fixture(scope="module")
def proxy(stack: Any) -> Iterator[Any]:
    from autotraining_tools.client import ApiClient
    from autotraining_tools.dashboard_proxy import DashboardProxy
    from autotraining_tools.local.stack import stack_credentials

    p = DashboardProxy(ApiClient(stack.api_url, credentials=stack_credentials()), port=0).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install` (it installs Debian's chromium)")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1360, "height": 1000})
        yield context
        context.close()


def test_the_stack_itself_refuses_the_browser(browser: Any, stack: Any) -> None:
    page = browser.new_page()
    try:
        response = page.goto(stack.api_url + "/")
        assert response.status == 403 and json.loads(response.text()) == {"message": "Forbidden"}
    finally:
        page.close()


def test_through_the_proxy_the_history_renders_and_the_model_answers_as_the_server(
        browser: Any, stack: Any, proxy: Any) -> None:
    schema = load_schema(stack.settings.schema_file)
    page = browser.new_page()
    requests: list[tuple[str, int]] = []
    problems: list[str] = []
    page.on("response", lambda r: requests.append((r.url, r.status)))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    try:
        page.goto(proxy.url + "/")
        try:
            page.wait_for_selector(f'#prediction[data-state="ready"][data-version="{stack.serving}"]',
                                   timeout=WAIT_MS)
        except Exception:
            pytest.fail(f"the model did not load: status {page.inner_text('#status')!r}, "
                        f"model {page.inner_text('#model-status')!r}, problems {problems}")
        # the history: every round in the table (the rejected one marked) and on the chart
        rows = page.eval_on_selector_all("#rounds tbody tr",
                                         "els => els.map(e => [e.dataset.version, e.dataset.status])")
        assert rows == [["000003", "published"], ["000002", "rejected"], ["000001", "published"]]
        assert page.locator("#chart svg .bar").count() >= 3 and page.locator("#chart svg .reject-mark").count() >= 1
        assert page.inner_text("#summary-records") == "4,000"
        # TF.js fetched model.json from the proxy, which answered 302, and then from S3 (the emulator)
        proxy_host, s3_host = urlsplit(proxy.url).netloc, urlsplit(stack.emulator_url).netloc
        model_json = [(urlsplit(u).netloc, s) for u, s in requests if urlsplit(u).path.endswith("/model.json")]
        assert (proxy_host, 302) in model_json and (s3_host, 200) in model_json, model_json
        assert {urlsplit(u).netloc for u, _ in requests} <= {proxy_host, s3_host}  # never the stack directly
        # the in-browser model answers as POST /predict does (signed, straight to the stack)
        tops = set()
        for values in corner_inputs(schema):
            features = set_inputs(page, values)
            in_browser = page_probabilities(page)
            server = server_prediction(stack.api_url, features)
            assert server["version"] == stack.serving
            expected = server["predictions"][0]["probabilities"]
            assert set(in_browser) == set(expected) == set(schema.labels)
            for label in schema.labels:
                assert abs(in_browser[label] - expected[label]) <= TOLERANCE, (label, in_browser, expected)
            tops.add(server["predictions"][0]["label"])
        assert len(tops) >= 2
        assert not problems, problems
    finally:
        page.close()


def test_a_read_refused_mid_session_shows_the_stacks_reason(browser: Any, stack: Any) -> None:
    """Credentials that stop working while the page is open (an expired session): the next refresh
    shows the stack's own refusal, not just a status code."""
    from botocore.credentials import Credentials

    from autotraining_tools.client import ApiClient
    from autotraining_tools.dashboard_proxy import DashboardProxy
    from autotraining_tools.local.authorizers import BAD_SIGNATURE
    from autotraining_tools.local.stack import stack_credentials

    p = DashboardProxy(ApiClient(stack.api_url, credentials=stack_credentials()), port=0).start()
    page = browser.new_page()
    try:
        page.goto(p.url + "/")
        page.wait_for_selector('#status[data-state="live"]', timeout=WAIT_MS)
        p.client = ApiClient(stack.api_url, credentials=Credentials("testing", "no-longer-valid"))
        page.wait_for_selector('#status[data-state="error"]', timeout=WAIT_MS)
        text = page.inner_text("#status")
        assert "HTTP 403" in text and BAD_SIGNATURE[:60] in text, text
    finally:
        page.close()
        p.stop()
