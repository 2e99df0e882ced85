"""A training round on the in-process stack: what it consumes, counts, publishes and commits."""
from __future__ import annotations

import json

import pytest

from autotraining.artifacts import KERAS_FILE, METADATA_JSON, MODEL_JSON, model_key
from autotraining.aws import Aws
from autotraining.generator import generate
from worker.state import TrainingState


def test_first_round_publishes_model_files_metadata_and_state(queue_counts, waws, log_segment, make_worker, registry, schema):
    a = log_segment(generate(schema, 400, seed=1), 100)
    b = log_segment(generate(schema, 300, seed=2), 1000)
    assert make_worker().run() == 0
    latest = registry.latest()
    assert (latest.round_version, latest.model_version, latest.records_seen) == ("000001", "000001", 700)
    v = registry.get("000001")
    assert v.published and v.gate == "first model" and v.new_records == 700 and set(v.segments) == {a.key, b.key}
    s3, bucket = waws.s3, waws.settings.bucket
    for name in (MODEL_JSON, "group1-shard1of1.bin", KERAS_FILE, METADATA_JSON):
        assert s3.head_object(Bucket=bucket, Key=model_key("000001", name))["ContentLength"] > 0
    meta = json.loads(s3.get_object(Bucket=bucket, Key=model_key("000001", METADATA_JSON))["Body"].read())
    assert meta["labels"] == list(schema.labels) and meta["feature_names"] == list(schema.feature_names)
    assert meta["records_seen"] == 700 and meta["parent"] == "" and sorted(meta["segments"]) == sorted([a.key, b.key])
    assert meta["schema"] == schema.to_dict() and meta["gate"] == "first model"
    state = TrainingState.from_bytes(s3.get_object(Bucket=bucket, Key=v.state_key)["Body"].read())
    assert state.records_seen == 700 and len(state.reservoir) == 300
    assert sum(state.label_counts.values()) == 700
    assert queue_counts() == (0, 0)


def test_next_round_warm_starts_scores_prequentially_and_counts_on(queue_counts, waws, log_segment, make_worker, registry, schema):
    log_segment(generate(schema, 500, seed=1), 100)
    w = make_worker()
    w.run()
    log_segment(generate(schema, 200, seed=2), 1000)
    w.run()
    v2 = registry.get("000002")
    assert v2.parent == "000001" and v2.records_seen == 700 and v2.new_records == 200
    assert v2.prequential_accuracy is not None and v2.parent_holdout_accuracy is not None
    assert set(v2.metrics["prequential"]["per_class"]) == set(schema.labels)
    assert v2.metrics["reservoir_rows"] == 300  # trained on new + the reservoir sample
    assert registry.latest().records_seen == 700


def test_rejected_round_counts_its_records_and_keeps_the_parent_model(queue_counts, waws, log_segment, make_worker, registry,
                                                                     schema):
    log_segment(generate(schema, 500, seed=1), 100)
    make_worker().run()
    strict = Aws(waws.settings.replace(gate_tolerance=-1.0))  # any candidate is "worse"
    log_segment(generate(schema, 200, seed=2), 1000)
    from worker.loop import Worker, WorkerOptions

    Worker(strict, WorkerOptions(once=True, poll_seconds=0, config=make_worker().options.config)).run()
    v2 = registry.get("000002")
    assert v2.status == "rejected" and v2.model_version == "000001" and v2.gate.startswith("worse by")
    assert v2.records_seen == 700 and v2.new_records == 200
    latest = registry.latest()
    assert (latest.round_version, latest.model_version, latest.records_seen) == ("000002", "000001", 700)
    assert not waws.s3.list_objects_v2(Bucket=waws.settings.bucket, Prefix="models/000002/").get("Contents")
    state = TrainingState.from_bytes(
        waws.s3.get_object(Bucket=waws.settings.bucket, Key=v2.state_key)["Body"].read())
    assert state.records_seen == 700  # the rejected round's records are in the seen set and reservoir
    assert queue_counts() == (0, 0)


def test_records_repeated_across_segments_count_once(queue_counts, waws, log_segment, make_worker, registry, schema):
    recs = generate(schema, 300, seed=1)
    # Record i sits at stream position 100 + i; overlapping segments are what a retried or
    # bisected stream batch writes (a re-sent id is a MODIFY and never logged again).
    log_segment(recs[:200], 100)
    log_segment(recs[100:], 200)  # overlaps the first by 100 records (same round)
    w = make_worker()
    w.run()
    assert registry.latest().records_seen == 300
    log_segment(recs[250:] + generate(schema, 50, seed=2), 350)  # 50 old records in a later round
    w.run()
    assert registry.latest().records_seen == 350 and registry.get("000002").new_records == 50


def test_segment_of_only_known_records_is_deleted_without_a_round(queue_counts, waws, log_segment, make_worker, registry, schema):
    recs = generate(schema, 200, seed=1)
    log_segment(recs, 100)
    w = make_worker()
    w.run()
    log_segment(recs[:50], 100)  # a bisected half of the batch already consumed
    w.run()
    assert registry.latest().round_version == "000001" and registry.latest().records_seen == 200
    assert queue_counts() == (0, 0)


def test_export_mismatch_refuses_to_publish_but_consumes_the_records(queue_counts, waws, log_segment, make_worker, registry,
                                                                    schema, monkeypatch):
    from worker import publish

    def broken(files, expected, x, atol=1e-4):
        raise publish.ExportMismatch("exported model differs from the Keras model by 0.5")

    monkeypatch.setattr(publish, "verify_export", broken)
    log_segment(generate(schema, 300, seed=1), 100)
    make_worker().run()
    v = registry.get("000001")
    assert v.status == "rejected" and v.gate.startswith("export mismatch") and v.model_version == ""
    assert registry.latest().records_seen == 300 and registry.latest_model() is None


def test_max_segments_per_round_splits_the_queue_into_rounds(queue_counts, waws, log_segment, make_worker, registry, schema):
    for i in range(5):
        log_segment(generate(schema, 60, seed=i), 1000 * (i + 1))
    w = make_worker(max_segments=2)
    w.run()
    history = registry.history()
    assert [len(v.segments) for v in reversed(history)] == [2, 2, 1]
    assert registry.latest().records_seen == 300



def test_round_reads_only_its_new_segments_never_the_table_or_the_whole_log(queue_counts, waws, log_segment, make_worker,
                                                                           registry, schema):
    """The 2019 design scanned the whole table and retrained from scratch every round; a round
    here reads the segments its messages name plus the saved state, nothing that grows with history."""
    first = log_segment(generate(schema, 600, seed=1), 100)
    w = make_worker()
    w.run()
    calls: list[tuple[str, str, dict]] = []

    def record(event_name: str, params: dict, **_: object) -> None:
        service, operation = event_name.split(".")[1:3]
        calls.append((service, operation, params))

    for client in (waws.s3, waws.dynamodb):
        client.meta.events.register("provide-client-params.*.*", record)
    new = log_segment(generate(schema, 150, seed=2), 5000)
    w.run()
    log_reads = [p["Key"] for s, op, p in calls if s == "s3" and op == "GetObject" and p["Key"].startswith("log/")]
    assert log_reads == [new.key] and first.key not in log_reads
    # The only log listing is the dedupe's look between consumed intervals: it starts above the
    # first round's segment (never at the head of the log).
    listings = [p for s, op, p in calls if s == "s3" and op.startswith("ListObjects") and p.get("Prefix", "").startswith("log")]
    assert all(p.get("StartAfter", "") > first.key for p in listings)
    records_table = waws.settings.records_table
    assert not [op for s, op, p in calls if s == "dynamodb" and p.get("TableName") == records_table]
    v2 = registry.get("000002")
    assert v2.new_records == 150 and v2.metrics["reservoir_rows"] == 300  # new records + a fixed-size sample


def _served_accuracy(waws, registry, schema, records) -> float:
    import numpy as np

    from worker import trainer

    body = waws.s3.get_object(Bucket=waws.settings.bucket,
                              Key=model_key(registry.latest().model_version, KERAS_FILE))["Body"].read()
    x = np.array([r.features for r in records])
    y = np.array([schema.label_index(r.label) for r in records])
    return float(trainer.score(trainer.from_h5_bytes(body), x, y, schema.labels).accuracy)


def _flipped(records, schema):
    import dataclasses

    swap = {"cold": "warm", "warm": "cold", "ok": "ok"}  # a new concept: the same rows, other answers
    return [dataclasses.replace(r, id=f"flip-{r.id}", label=swap[r.label]) for r in records]


def _learning_worker(make_worker):
    from worker.trainer import TrainConfig

    return make_worker(config=TrainConfig(hidden=(16,), epochs=10, batch_size=32, change_steps=600))


@pytest.mark.slow
def test_abrupt_change_is_detected_and_the_adapted_model_is_published_in_one_round(queue_counts, waws, log_segment,
                                                                                  make_worker, registry, schema):
    w = _learning_worker(make_worker)
    for r in range(2):
        log_segment(generate(schema, 1500, seed=10 + r, id_prefix=f"a{r}-"), 1 + 10000 * r)
        w.run()
    fresh_new = _flipped(generate(schema, 600, seed=99, id_prefix="fresh-"), schema)
    before = _served_accuracy(waws, registry, schema, fresh_new)
    log_segment(_flipped(generate(schema, 1500, seed=20, id_prefix="b-"), schema), 30001)
    w.run()
    v3 = registry.get("000003")
    assert v3.metrics["drift"]["detected"] and "accuracy" in v3.metrics["drift"]["signals"]
    assert v3.published, v3.gate  # a gate that refuses every adaptation after a change is a defect
    assert v3.metrics["effort"]["reason"] == "change detected"
    after = _served_accuracy(waws, registry, schema, fresh_new)
    assert before < 0.6 and after > 0.8, (before, after)
    state = TrainingState.from_bytes(waws.s3.get_object(Bucket=waws.settings.bucket, Key=v3.state_key)["Body"].read())
    assert state.change_at == v3.metrics["drift"]["change_at"] and (state.reservoir.t >= state.change_at).all()


@pytest.mark.slow
def test_a_change_before_the_models_first_scored_round_is_detected_in_that_round(queue_counts, waws, log_segment,
                                                                                make_worker, registry, schema):
    """One round of the old concept, then the new one: the round that first scores the model sees only
    new-concept records; its gate's held-out accuracy (round 1's metrics) is the "before"."""
    w = _learning_worker(make_worker)
    log_segment(generate(schema, 1500, seed=10, id_prefix="a-"), 1)
    w.run()
    assert registry.get("000001").published
    fresh_new = _flipped(generate(schema, 600, seed=98, id_prefix="fresh-"), schema)
    log_segment(_flipped(generate(schema, 1500, seed=21, id_prefix="b-"), schema), 10001)
    w.run()
    v2 = registry.get("000002")
    assert v2.metrics["drift"]["detected"] and "accuracy" in v2.metrics["drift"]["signals"], v2.metrics["drift"]
    assert v2.metrics["drift"]["change_at"] == 1500  # the first record of round 2 (stream positions count records)
    assert v2.published and v2.metrics["effort"]["reason"] == "change detected", v2.gate
    assert _served_accuracy(waws, registry, schema, fresh_new) > 0.8


@pytest.mark.slow
def test_round_of_shuffled_labels_looks_like_a_change_and_is_refused(queue_counts, waws, log_segment, make_worker,
                                                                     registry, schema):
    import dataclasses
    import random

    w = _learning_worker(make_worker)
    for r in range(2):
        log_segment(generate(schema, 1500, seed=10 + r, id_prefix=f"a{r}-"), 1 + 10000 * r)
        w.run()
    served = registry.latest().model_version
    recs = generate(schema, 1500, seed=30, id_prefix="noise-")
    labels = [r.label for r in recs]
    random.Random(1).shuffle(labels)
    log_segment([dataclasses.replace(r, label=lab) for r, lab in zip(recs, labels, strict=True)], 30001)
    w.run()
    v3 = registry.get("000003")
    assert v3.metrics["drift"]["detected"]
    assert v3.status == "rejected" and v3.gate.startswith("no better than chance"), v3.gate
    assert registry.latest().model_version == served and registry.latest().records_seen == 4500


def test_stationary_rounds_report_no_drift_and_show_it_in_the_metrics(queue_counts, waws, log_segment, make_worker,
                                                                     registry, schema):
    w = make_worker()
    for r in range(3):
        log_segment(generate(schema, 400, seed=40 + r, id_prefix=f"s{r}-"), 1 + 1000 * r)
        w.run()
    for v in registry.history():
        assert v.metrics["drift"]["detected"] is False and v.metrics["drift"]["signals"] == []
    assert registry.get("000003").metrics["effort"]["reason"] == "stationary"
