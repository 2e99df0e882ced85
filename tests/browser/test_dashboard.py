"""The dashboard in a real headless Chromium, on the real embedded stack.

The stack runs without the worker (no instance agent, poller or scheduler); instead real
models are exported with tensorflowjs and committed with ``Registry.commit_round``
(``tests/serving_fixtures.py``), the same bytes and registry items the worker publishes. The
browser is Debian's chromium (installed by ``make install``), driven by Playwright with
``executable_path`` (Playwright's own browser download is never used).

The page's probabilities (TensorFlow.js in the browser) are checked against ``POST /predict``
(the numpy predictor on the server) to 1e-5, and a screenshot is saved to docs/dashboard.png.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from autotraining.schema import Schema, load_schema
from autotraining_tools.signing import signed_request

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(300)]

CHROMIUM = os.environ.get("AUTOTRAINING_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
TOLERANCE = 1e-5
WAIT_MS = 30_000


def http(method: str, url: str, body: Any = None) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = signed_request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


class AssetLinks(HTMLParser):
    """Every script src, stylesheet / icon href, img src and font link of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.others: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            if a.get("src"):
                self.scripts.append(str(a["src"]))
        elif tag == "link" and a.get("href"):
            (self.styles if a.get("rel") == "stylesheet" else self.others).append(str(a["href"]))
        elif tag in ("img", "iframe", "source", "audio", "video") and a.get("src"):
            self.others.append(str(a["src"]))


@pytest.fixture(scope="module")
def stack() -> Iterator[Any]:
    from autotraining_tools.local.stack import EmbeddedStack

    with EmbeddedStack(port=0, emulator_port=0, run_agent=False, run_scheduler=False, run_poller=False) as s:
        yield s


@pytest.fixture(scope="module")
def published(stack: Any) -> dict[str, Any]:
    """Four committed rounds: published, published, rejected, published (the serving one, after a detected change)."""
    from serving_fixtures import commit_rejected, export_model, publish

    schema = load_schema(stack.settings.schema_file)
    first, second = export_model(schema), export_model(schema, seed=3)
    publish(stack.aws, schema, first, records_seen=1500, new_records=1500, holdout_accuracy=0.81)
    publish(stack.aws, schema, second, records_seen=3000, new_records=1500, holdout_accuracy=0.9,
            prequential_accuracy=0.8)
    commit_rejected(stack.aws, schema, records_seen=4200, new_records=1200, holdout_accuracy=0.84,
                    gate="worse by 0.060 (tolerance 0.020)")
    drift = {"detected": True, "change_at": 4200, "signals": ["accuracy"], "changes": {}}
    serving = publish(stack.aws, schema, second, records_seen=5000, new_records=800, holdout_accuracy=0.93,
                      prequential_accuracy=0.61, metrics={"drift": drift})
    return {"schema": schema, "serving": serving.version, "second": second}


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install` (it installs Debian's chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1360, "height": 1000}, device_scale_factor=1)
        yield context
        context.close()


@pytest.fixture
def page(browser_context: Any, stack: Any, published: dict[str, Any]) -> Iterator[Any]:
    """The dashboard, opened, with its model loaded; ``page.requests`` lists every URL it fetched."""
    p = browser_context.new_page()
    requests: list[str] = []
    problems: list[str] = []
    p.on("request", lambda r: requests.append(r.url))
    p.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    p.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    p.goto(stack.api_url + "/")
    try:
        p.wait_for_selector(f'#prediction[data-state="ready"][data-version="{published["serving"]}"]',
                            timeout=WAIT_MS)
    except Exception:
        pytest.fail(f"the model did not load: status {p.inner_text('#status')!r}, "
                    f"model {p.inner_text('#model-status')!r}, problems {problems}")
    p.requests, p.problems = requests, problems
    yield p
    p.close()


def set_inputs(page: Any, values: dict[str, float]) -> dict[str, float]:
    """Type the values into the number inputs; wait until the page has predicted for exactly them."""
    for name, value in values.items():
        page.fill(f"#input-{name}", repr(value))
    page.wait_for_function(
        "want => { const f = document.querySelector('#prediction').dataset.features;"
        " if (!f) return false; const got = JSON.parse(f);"
        " return Object.entries(want).every(([k, v]) => got[k] === v); }",
        arg=values, timeout=WAIT_MS)
    return json.loads(page.get_attribute("#prediction", "data-features"))


def page_probabilities(page: Any) -> dict[str, float]:
    return json.loads(page.get_attribute("#prediction", "data-probabilities"))


def server_prediction(api_url: str, features: dict[str, float] | list[dict[str, float]]) -> dict[str, Any]:
    status, _, body = http("POST", api_url + "/predict", features if isinstance(features, list) else [features])
    assert status == 200, body
    return json.loads(body)


def corner_inputs(schema: Schema) -> list[dict[str, float]]:
    """A few inputs spread over the features' typical ranges (low, high, mixed)."""
    out = []
    for fractions in ((0.15, 0.8, 0.3, 0.1), (0.9, 0.2, 0.7, 0.6), (0.5, 0.5, 0.5, 0.5)):
        row = {}
        for j, f in enumerate(schema.features):
            lo, hi = f.typical if f.typical else (f.min, f.max)
            v = lo + fractions[j % len(fractions)] * (hi - lo)
            row[f.name] = float(round(v)) if f.type == "integer" else round(v, 3)
        out.append(row)
    return out


def least_certain_input(api_url: str, schema: Schema, base: dict[str, float]) -> dict[str, float]:
    """``base`` with the first feature moved to where the serving model's top probability is lowest."""
    f = schema.features[0]
    lo, hi = f.typical if f.typical else (f.min, f.max)
    rows = [{**base, f.name: round(lo + i * (hi - lo) / 60, 1)} for i in range(61)]
    answers = server_prediction(api_url, rows)["predictions"]
    best = min(range(len(rows)), key=lambda i: max(answers[i]["probabilities"].values()))
    return rows[best]


def test_page_before_the_first_model_says_so(browser_context: Any, stack: Any) -> None:
    # Runs first in this module, before the `published` fixture commits any round.
    from autotraining.registry import Registry

    assert Registry(stack.aws.dynamodb, stack.settings.models_table).latest() is None, "run before publishing"
    p = browser_context.new_page()
    try:
        p.goto(stack.api_url + "/")
        p.wait_for_selector('#status[data-state="live"]', timeout=WAIT_MS)
        p.wait_for_function("() => document.querySelector('#model-status').textContent.includes('No model')")
        assert p.get_attribute("#prediction", "data-state") == "waiting"
        assert p.locator("#rounds tbody tr").count() == 0
        assert p.locator(".feature").count() == len(load_schema(stack.settings.schema_file).features)
    finally:
        p.close()


def test_page_probabilities_match_server_predictions(page: Any, stack: Any, published: dict[str, Any]) -> None:
    schema: Schema = published["schema"]
    assert page.get_attribute("#prediction", "data-version") == published["serving"]
    # One input per schema feature, built from the schema.
    assert page.eval_on_selector_all(".feature", "els => els.map(e => e.dataset.feature)") == list(schema.feature_names)
    tops = set()
    for values in corner_inputs(schema):
        features = set_inputs(page, values)
        assert features == values
        in_browser = page_probabilities(page)
        server = server_prediction(stack.api_url, features)
        assert server["version"] == published["serving"]
        expected = server["predictions"][0]["probabilities"]
        assert set(in_browser) == set(schema.labels) == set(expected)
        for label in schema.labels:
            assert abs(in_browser[label] - expected[label]) <= TOLERANCE, (label, in_browser, expected)
        assert page.get_attribute("#prediction", "data-label") == server["predictions"][0]["label"]
        tops.add(server["predictions"][0]["label"])
    assert len(tops) >= 2  # the inputs really moved the prediction
    assert not page.problems, page.problems


def test_page_assets_are_served_by_the_project_and_nothing_is_external(page: Any, stack: Any) -> None:
    status, headers, body = http("GET", stack.api_url + "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    links = AssetLinks()
    links.feed(body.decode())
    assert any(re.search(r"(^|/)tf\.min\.js(\?|$)", s) for s in links.scripts), links.scripts
    assert links.styles, "the page has a stylesheet"
    for ref in links.scripts + links.styles + links.others:
        url = urljoin(stack.api_url + "/", ref)
        assert urlsplit(url).netloc == urlsplit(stack.api_url).netloc, f"{ref} is not served by the project"
        got, got_headers, _ = http("GET", url)
        assert got == 200, (ref, got)
        kind = "javascript" if ref in links.scripts else "css" if ref in links.styles else ""
        assert kind in got_headers["content-type"], (ref, got_headers["content-type"])
    # Everything the browser fetched came from the API or the emulator's presigned S3 URLs.
    ours = {urlsplit(stack.api_url).netloc, urlsplit(stack.emulator_url).netloc}
    fetched = {urlsplit(u).netloc for u in page.requests if urlsplit(u).scheme in ("http", "https")}
    assert fetched <= ours, fetched - ours
    assert page.evaluate("typeof tf !== 'undefined' && tf.version.tfjs") == "4.22.0"
    assert any("/models/" in u and u.endswith("/model.json") for u in page.requests)


def test_label_map_is_computed_by_the_model_over_the_chosen_features(page: Any, published: dict[str, Any]) -> None:
    schema: Schema = published["schema"]
    canvas = "#comfort-map"
    page.wait_for_selector(f'{canvas}[data-state="ready"]')
    assert page.get_attribute(canvas, "data-x") == schema.feature_names[0]
    assert page.get_attribute(canvas, "data-y") == schema.feature_names[1]
    counts = json.loads(page.get_attribute(canvas, "data-label-counts"))
    assert sum(counts.values()) == int(page.get_attribute(canvas, "data-cells"))
    assert sum(1 for n in counts.values() if n > 0) >= 2  # regions of more than one label
    page.select_option("#map-y", str(len(schema.features) - 1))
    page.wait_for_function(f"() => document.querySelector('{canvas}').dataset.y === {json.dumps(schema.feature_names[-1])}")
    assert page.eval_on_selector_all("#map-legend [data-label]", "els => els.map(e => e.dataset.label)") == list(schema.labels)


def test_history_chart_and_rounds_table_mark_the_rejected_round(page: Any, published: dict[str, Any]) -> None:
    rows = page.eval_on_selector_all("#rounds tbody tr", "els => els.map(e => [e.dataset.version, e.dataset.status])")
    assert rows == [["000004", "published"], ["000003", "rejected"], ["000002", "published"], ["000001", "published"]]
    assert "worse by 0.060" in page.inner_text('#rounds tr[data-status="rejected"]')
    assert page.locator("#chart svg .reject-mark").count() >= 1
    assert page.locator("#chart svg .bar").count() >= 4
    # The round whose detector reported a change is marked, and only that one (GET /models carries metrics.drift).
    marks = page.locator("#chart svg .drift-mark")
    assert marks.count() == 1 and marks.first.get_attribute("data-version") == published["serving"]
    assert "change detected (accuracy)" in marks.first.locator("title").text_content()
    assert page.inner_text("#summary-model") == "4"
    assert page.inner_text("#summary-records") == "5,000"


def test_page_refreshes_live_and_loads_a_newly_published_model(page: Any, stack: Any, published: dict[str, Any]) -> None:
    from serving_fixtures import export_model, publish

    schema: Schema = published["schema"]
    values = corner_inputs(schema)[0]
    set_inputs(page, values)
    before = page_probabilities(page)
    newer = publish(stack.aws, schema, export_model(schema, seed=7), records_seen=6000, new_records=1000,
                    holdout_accuracy=0.94, prequential_accuracy=0.92)
    page.wait_for_selector(f'#prediction[data-version="{newer.version}"]', timeout=WAIT_MS)
    page.wait_for_selector(f'#rounds tbody tr[data-version="{newer.version}"]', timeout=WAIT_MS)
    after = page_probabilities(page)
    expected = server_prediction(stack.api_url, values)
    assert expected["version"] == newer.version
    for label in schema.labels:
        assert abs(after[label] - expected["predictions"][0]["probabilities"][label]) <= TOLERANCE
    assert after != before  # a different model answers differently
    # The picture for the README: mid-range inputs, the first feature where the model is least sure.
    set_inputs(page, least_certain_input(stack.api_url, schema, corner_inputs(schema)[2]))
    page.wait_for_selector('#comfort-map[data-state="ready"]')
    page.evaluate("document.activeElement && document.activeElement.blur()")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    tmp = SCREENSHOT.with_suffix(".tmp.png")
    page.screenshot(path=str(tmp), full_page=True)
    shutil.move(tmp, SCREENSHOT)
    assert SCREENSHOT.stat().st_size > 10_000
