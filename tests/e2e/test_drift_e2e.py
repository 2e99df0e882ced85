"""End to end on the embedded stack: an abrupt change is detected, shown in GET /models, and adapted to.

The real worker process (``python -m worker`` via the instance agent) trains on thermal-comfort
records, then on records of a new concept (the same inputs, cold and warm swapped). The first
round with new-concept records must report the change in its metrics, publish an adapted model
(the gate on post-change rows lets it through), and ``POST /predict`` must then answer the new
concept — the one round the benchmark (scripts/bench_drift.py) claims.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from e2e_fixtures import call, predict_when_serving, records_seen, upload, wait_for

from autotraining.generator import generate
from autotraining.registry import Registry
from autotraining.schema import load_schema
from autotraining_tools.local.stack import EmbeddedStack

pytestmark = pytest.mark.e2e

SWAP = {"cold": "warm", "warm": "cold", "ok": "ok"}


def accuracy(api: str, schema: Any, records: list[Any]) -> float:
    answer = call(f"{api}/predict", "POST", [dict(zip(schema.feature_names, r.features, strict=True)) for r in records])
    return sum(p["label"] == r.label for p, r in zip(answer["predictions"], records, strict=True)) / len(records)


def test_abrupt_change_is_detected_shown_and_adapted_to_in_one_round() -> None:
    schema = load_schema()
    old = generate(schema, 4000, seed=301, id_prefix="old-")
    new = [dataclasses.replace(r, label=SWAP[r.label]) for r in generate(schema, 3000, seed=302, id_prefix="new-")]
    fresh_new = [dataclasses.replace(r, label=SWAP[r.label]) for r in generate(schema, 500, seed=399)]
    with EmbeddedStack(batch_size=1000, batch_window=1.0, idle_grace=6.0, boot_delay=1.0,
                       schedule_seconds=5.0) as stack:
        registry = Registry(stack.aws.dynamodb, stack.settings.models_table)

        # The old concept in two rounds, as a served model sees it in use (a change right after the
        # first publish is detected too, against the model's own gate measurements: see
        # tests/worker/test_round.py::test_a_change_before_the_models_first_scored_round_is_detected_in_that_round).
        upload(stack.api_url, old[:3000], schema)
        wait_for("the first old-concept round to be committed", lambda: records_seen(registry) == 3000, 180)
        upload(stack.api_url, old[3000:], schema)
        wait_for("the old concept to be committed", lambda: records_seen(registry) == 4000, 180)
        before = accuracy(stack.api_url, schema, fresh_new)
        last_old_round = registry.latest().round_version
        upload(stack.api_url, new, schema)
        wait_for("the new concept to be committed", lambda: records_seen(registry) == 7000, 180)

        history = call(f"{stack.api_url}/models")["versions"][::-1]  # oldest first
        after_change = [v for v in history if v["version"] > last_old_round]
        assert not any(v["metrics"]["drift"]["detected"] for v in history if v["version"] <= last_old_round)
        first = after_change[0]
        assert first["metrics"]["drift"]["detected"], first["metrics"]["drift"]
        assert first["status"] == "published", first["gate"]
        # Judged on post-change held-out rows only: the adapted model of that one round already knows the new concept.
        assert first["holdout_accuracy"] >= 0.85 and first["metrics"]["holdout"]["n"] < first["new_records"]
        probe = [dict(zip(schema.feature_names, fresh_new[0].features, strict=True))]
        predict_when_serving(stack.api_url, probe, registry.latest().model_version)
        served = accuracy(stack.api_url, schema, fresh_new)
        assert before < 0.6 and served >= 0.85, (before, served, [v["gate"] for v in after_change])
