"""The dashboard on a mixed-type schema: a select for a category, a checkbox for a boolean, a "missing"
toggle for an optional feature, numeric-only map axes, and probabilities equal to POST /predict."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from schema_fixtures import MIXED_SCHEMA_FILE, mixed_schema
from test_dashboard import CHROMIUM, CHROMIUM_FLAGS, TOLERANCE, WAIT_MS, server_prediction

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def mixed_stack() -> Iterator[Any]:
    from serving_fixtures import export_model, publish

    from autotraining_tools.local.stack import EmbeddedStack

    mp = pytest.MonkeyPatch()
    mp.setenv("AUTOTRAINING_SCHEMA_FILE", MIXED_SCHEMA_FILE)
    try:
        with EmbeddedStack(port=0, emulator_port=0, run_agent=False, run_scheduler=False, run_poller=False) as s:
            publish(s.aws, mixed_schema(), export_model(mixed_schema(), seed=3, hidden=(16, 8)))
            yield s
    finally:
        mp.undo()


def test_typed_inputs_missing_toggle_and_numeric_map_axes_match_the_server(mixed_stack: Any, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    schema = mixed_schema()
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                        headless=True, args=CHROMIUM_FLAGS)
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(mixed_stack.api_url + "/")
        page.wait_for_selector('#prediction[data-state="ready"]', timeout=WAIT_MS)
        assert page.eval_on_selector("#input-device", "e => e.tagName") == "SELECT"
        assert page.eval_on_selector_all("#input-device option", "os => os.map(o => o.value)") == [
            "phone", "tablet", "laptop", "(other)"]
        assert page.get_attribute("#input-charging", "type") == "checkbox"
        assert page.locator("#missing-battery_temp").count() == 1 and page.locator("#missing-cpu_load").count() == 0
        assert page.eval_on_selector_all("#map-x option", "os => os.map(o => o.textContent)") == [
            "battery_temp", "cpu_load"]
        assert page.get_attribute("#prediction", "data-schema") == schema.tag

        cases = [({"device": "tablet", "charging": True}, False), ({"device": "(other)", "charging": False}, True)]
        for values, missing in cases:
            page.select_option("#input-device", values["device"])
            page.set_checked("#input-charging", values["charging"])
            page.set_checked("#missing-battery_temp", missing)
            page.fill("#input-cpu_load", "70")
            want = {**values, "cpu_load": 70}
            if missing:
                want["battery_temp"] = None
            page.wait_for_function(
                "want => { const f = document.querySelector('#prediction').dataset.features;"
                " if (!f) return false; const got = JSON.parse(f);"
                " return Object.entries(want).every(([k, v]) => got[k] === v); }", arg=want, timeout=WAIT_MS)
            features = json.loads(page.get_attribute("#prediction", "data-features"))
            in_browser = json.loads(page.get_attribute("#prediction", "data-probabilities"))
            expected = server_prediction(mixed_stack.api_url, features)["predictions"][0]["probabilities"]
            for label in schema.labels:
                assert abs(in_browser[label] - expected[label]) <= TOLERANCE, (features, in_browser, expected)
        page.wait_for_selector('#comfort-map[data-state="ready"]', timeout=WAIT_MS)
        assert page.get_attribute("#comfort-map", "data-x") == "battery_temp"
        context.close()
    assert not problems, problems
