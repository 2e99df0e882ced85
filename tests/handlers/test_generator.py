"""The scheduled generator: synthetic labeled records through the upload path, seeded by the event id."""
from __future__ import annotations

from autotraining.aws import Aws
from autotraining.schema import load_schema
from handlers import generator


def _count(aws) -> int:
    return aws.dynamodb.scan(TableName=aws.settings.records_table, Select="COUNT")["Count"]


def test_generator_stores_a_batch_of_valid_labeled_records(aws):
    settings = aws.settings.replace(generator_batch=40)
    aws = Aws(settings)
    result = generator.handle({"id": "evt-1", "detail-type": "Scheduled Event"}, aws)
    assert result["accepted"] == 40
    assert _count(aws) == 40
    items = aws.dynamodb.scan(TableName=settings.records_table)["Items"]
    labels = {i["label"]["S"] for i in items}
    assert labels <= set(load_schema().labels) and len(labels) > 1


def test_a_redelivered_schedule_event_writes_nothing_new(aws):
    first = generator.handle({"id": "evt-2", "count": 25}, aws)
    again = generator.handle({"id": "evt-2", "count": 25}, aws)
    assert first == again and _count(aws) == 25
    other = generator.handle({"id": "evt-3", "count": 25}, aws)
    assert other["first_id"] != first["first_id"] and _count(aws) == 50


def test_count_zero_generates_nothing(aws):
    assert generator.handle({"id": "evt-4", "count": 0}, aws) == {"accepted": 0, "first_id": None}
    assert _count(aws) == 0
