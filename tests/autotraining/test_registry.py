"""Registry history reads: a Query on the history index, newest first, paged; segment marks live in
their own table and carry the TTL attribute."""
from __future__ import annotations

import time
from typing import Any

from autotraining.aws import Aws
from autotraining.registry import EXPIRES_ATTRIBUTE, SEGMENT_PREFIX, ModelVersion, Registry, version_name


def _commit(registry: Registry, n: int, segments_per_round: int) -> None:
    for i in range(1, n + 1):
        round_ = ModelVersion(version=version_name(i), parent=version_name(i - 1) if i > 1 else "", created=i,
                              status="published", model_version=version_name(i), records_seen=10 * i, new_records=10,
                              segments=tuple(f"log/s/{i:06d}-{k:03d}.jsonl.gz" for k in range(segments_per_round)))
        registry.commit_round(version_name(i - 1) if i > 1 else None, round_)


def test_history_is_one_query_newest_first_and_pages_with_before(aws: Aws) -> None:
    registry = Registry.for_settings(aws.dynamodb, aws.settings)
    _commit(registry, 12, segments_per_round=20)  # 240 segment marks, in their own table
    calls: list[tuple[str, dict[str, Any]]] = []
    aws.dynamodb.meta.events.register("provide-client-params.dynamodb.*",
                                      lambda params, model, **_: calls.append((model.name, dict(params))))
    page = registry.history(limit=5)
    assert [v.version for v in page] == ["000012", "000011", "000010", "000009", "000008"]
    assert [name for name, _ in calls] == ["Query"] and calls[0][1]["Limit"] == 5
    assert calls[0][1]["IndexName"] == "history" and calls[0][1]["ScanIndexForward"] is False
    older = registry.history(limit=5, before=page[-1].version)
    assert [v.version for v in older] == ["000007", "000006", "000005", "000004", "000003"]
    assert [v.version for v in registry.history(limit=50, before="000003")] == ["000002", "000001"]
    assert page[0] == registry.get("000012")  # the index projects the whole round item
    assert not [name for name, _ in calls if name == "Scan"]


def test_segment_marks_expire_after_the_queue_retention(aws: Aws) -> None:
    registry = Registry.for_settings(aws.dynamodb, aws.settings)
    _commit(registry, 1, segments_per_round=2)
    assert aws.settings.consumed_table and aws.settings.consumed_table != aws.settings.models_table
    item = aws.dynamodb.get_item(TableName=aws.settings.consumed_table,
                                 Key={"pk": {"S": SEGMENT_PREFIX + "log/s/000001-000.jsonl.gz"}})["Item"]
    days = (int(item[EXPIRES_ATTRIBUTE]["N"]) - time.time()) / 86400
    assert 14 < days <= 15  # longer than any message can name the segment (the template's TTL: test_template_scale)


def test_history_reads_never_touch_the_segment_marks(aws: Aws) -> None:
    registry = Registry.for_settings(aws.dynamodb, aws.settings)
    _commit(registry, 3, segments_per_round=30)
    models = aws.dynamodb.scan(TableName=aws.settings.models_table)["Items"]
    assert not [i for i in models if i["pk"]["S"].startswith(SEGMENT_PREFIX)]
    assert registry.consumed(["log/s/000002-007.jsonl.gz", "log/s/999999-000.jsonl.gz"]) == {
        "log/s/000002-007.jsonl.gz": "000002"}
