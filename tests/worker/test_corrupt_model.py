"""A corrupted committed model is detected when the worker warm-starts: the round records the sha256
of every published file, checks ``model.h5`` on load, and on a mismatch warm-starts from the newest
intact published version (or from scratch) — one logged error, recorded in the round's metrics,
no crash, and the round's healthy segments are consumed, never sent towards the DLQ."""
from __future__ import annotations

import hashlib

from structlog.testing import capture_logs

from autotraining.artifacts import HASHES_METRIC, KERAS_FILE, METADATA_JSON, MODEL_JSON, model_key
from autotraining.aws import Aws
from autotraining.generator import generate


def _body(waws: Aws, version: str, name: str) -> bytes:
    return waws.s3.get_object(Bucket=waws.settings.bucket, Key=model_key(version, name))["Body"].read()


def _overwrite(waws: Aws, version: str, name: str, body: bytes) -> None:
    waws.s3.put_object(Bucket=waws.settings.bucket, Key=model_key(version, name), Body=body)


def _publishing_worker(waws: Aws, make_worker):  # noqa: ANN001, ANN202 - fixtures
    from worker.loop import Worker

    lenient = Aws(waws.settings.replace(gate_tolerance=1.0))  # every candidate passes: two published versions
    return Worker(lenient, make_worker().options)


def test_a_published_round_records_the_sha256_of_every_model_file(waws, log_segment, make_worker, registry, schema):
    log_segment(generate(schema, 400, seed=1), 100)
    make_worker().run()
    v1 = registry.get("000001")
    hashes = v1.metrics[HASHES_METRIC]
    assert set(hashes) == {MODEL_JSON, "group1-shard1of1.bin", KERAS_FILE}  # metadata.json carries them itself
    for name, digest in hashes.items():
        assert hashlib.sha256(_body(waws, "000001", name)).hexdigest() == digest, name
    assert METADATA_JSON in v1.metrics["files"] and "warm_start" not in v1.metrics


def test_a_corrupt_serving_model_h5_warm_starts_from_the_newest_intact_version(queue_counts, waws, log_segment,
                                                                               make_worker, registry, schema):
    worker = _publishing_worker(waws, make_worker)
    log_segment(generate(schema, 400, seed=1), 100)
    worker.run()
    log_segment(generate(schema, 200, seed=2), 1000)
    worker.run()
    assert registry.latest().model_version == "000002"
    # the injected fault: the serving model.h5 replaced by other bytes — a valid Keras file (round 1's),
    # which only the committed hash tells apart
    _overwrite(waws, "000002", KERAS_FILE, _body(waws, "000001", KERAS_FILE))
    log_segment(generate(schema, 200, seed=3), 2000)
    with capture_logs() as logs:
        assert worker.run() == 0
    v3 = registry.get("000003")
    assert v3 is not None and v3.parent == "000002" and v3.new_records == 200
    assert v3.metrics["warm_start"]["version"] == "000001"
    (skipped,) = v3.metrics["warm_start"]["skipped"]
    assert skipped["version"] == "000002" and "models/000002/model.h5 is corrupt" in skipped["error"]
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [(e["event"], e["version"]) for e in errors] == [("round.model_corrupt", "000002")]
    assert queue_counts() == (0, 0)  # the segment was consumed; nothing waits or heads for the DLQ
    assert queue_counts(waws.settings.dlq_url) == (0, 0)


def test_an_unloadable_only_model_means_training_from_scratch(queue_counts, waws, log_segment, make_worker, registry,
                                                              schema):
    log_segment(generate(schema, 400, seed=1), 100)
    worker = _publishing_worker(waws, make_worker)
    worker.run()
    _overwrite(waws, "000001", KERAS_FILE, b"not an HDF5 file at all")
    log_segment(generate(schema, 300, seed=2), 1000)
    with capture_logs() as logs:
        assert worker.run() == 0
    v2 = registry.get("000002")
    assert v2 is not None and v2.metrics["warm_start"]["version"] == ""
    assert [s["version"] for s in v2.metrics["warm_start"]["skipped"]] == ["000001"]
    assert v2.metrics["effort"]["starts"] == ["fresh"] and v2.gate == "first model"  # nothing to warm-start from
    events = [e["event"] for e in logs if e["log_level"] == "error"]
    assert events == ["round.model_corrupt", "round.warm_start_unavailable"]
    assert queue_counts() == (0, 0) and queue_counts(waws.settings.dlq_url) == (0, 0)
    # the round's own model is intact, so the next round warm-starts from it again, quietly
    assert v2.published
    log_segment(generate(schema, 100, seed=3), 2000)
    with capture_logs() as later:
        worker.run()
    assert not [e for e in later if e["log_level"] == "error"]
    assert "warm_start" not in registry.get("000003").metrics
