"""The worker's S3 calls stay inside what its role and the bucket policy allow (template.yaml,
WorkerRole and DataBucketPolicy): every put is create-only (``If-None-Match: *``) under
``models/``, ``state/`` or ``staging/``; deletes only under ``staging/``; tags only the superseded
mark on ``state/``. IAM itself cannot run here (the emulator does not evaluate conditions), so the
template's statements are checked in tests/deploy/test_template_access.py and the calls here."""
from __future__ import annotations

from typing import Any

from autotraining.generator import generate
from worker.state import KEEP_STATES, SUPERSEDED_TAG

WRITABLE_PREFIXES = ("models/", "state/", "staging/")


def _record_calls(s3: Any) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, dict(params)))

    s3.meta.events.register("provide-client-params.s3.*", record)
    return calls


def test_rounds_write_create_only_and_delete_only_staged_copies(waws, log_segment, make_worker, registry, schema):
    calls = _record_calls(waws.s3)
    w = make_worker()
    for i in range(KEEP_STATES + 2):
        before = len(calls)
        log_segment(generate(schema, 60, seed=i), 100 + 60 * i)
        del calls[before:]  # the test's own log segment, not the worker's
        w.run()
    assert len(registry.history()) == KEEP_STATES + 2 and registry.latest_model() is not None
    ops = {op for op, _ in calls}
    assert {"PutObject", "GetObject", "PutObjectTagging", "DeleteObject"} <= ops
    assert ops <= {"PutObject", "GetObject", "HeadObject", "ListObjectsV2", "PutObjectTagging", "DeleteObject"}
    for op, params in calls:
        key = params.get("Key", "")
        if op == "PutObject":
            assert params.get("IfNoneMatch") == "*" and key.startswith(WRITABLE_PREFIXES), key
        elif op == "DeleteObject":
            assert key.startswith("staging/"), key
        elif op == "PutObjectTagging":
            assert key.startswith("state/") and params["Tagging"] == {"TagSet": [SUPERSEDED_TAG]}, key
