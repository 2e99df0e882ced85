"""The template's side of flat cost at any history: the history index, the TTL of segment marks,
the staging lifecycle rule and the starter's one queue read."""
from __future__ import annotations

from typing import Any

import pytest

from autotraining.registry import EXPIRES_ATTRIBUTE, HISTORY_INDEX
from autotraining_tools.deploy.template import load_template
from worker.state import SUPERSEDED_TAG


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return load_template()["Resources"]


def test_models_table_has_the_history_index_and_segment_marks_expire_in_their_own_table(
        resources: dict[str, Any]) -> None:
    props = resources["ModelsTable"]["Properties"]
    index = {i["IndexName"]: i for i in props["GlobalSecondaryIndexes"]}[HISTORY_INDEX]
    assert [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]] == [("kind", "HASH"), ("version", "RANGE")]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    marks = resources["ConsumedTable"]["Properties"]
    assert marks["TimeToLiveSpecification"] == {"AttributeName": EXPIRES_ATTRIBUTE, "Enabled": True}
    assert marks["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]


def test_only_the_worker_may_touch_the_segment_marks(resources: dict[str, Any]) -> None:
    users = {name for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"
             and "ConsumedTable" in str(r["Properties"].get("Policies", ""))}
    assert users == {"WorkerRole"}


def test_staging_leftovers_expire_and_only_states_marked_superseded_expire(resources: dict[str, Any]) -> None:
    rules = resources["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    staging = [r for r in rules if r.get("Prefix") == "staging/"]
    assert len(staging) == 1 and staging[0]["Status"] == "Enabled" and staging[0]["ExpirationInDays"] >= 1
    # The latest state must never expire by age (a quiet month would lose it): only the states the
    # worker marks superseded (worker.state.expire_states) expire.
    state = [r for r in rules if r.get("Prefix", "").startswith("state")]
    assert len(state) == 1 and state[0]["Status"] == "Enabled" and state[0]["TagFilters"] == [SUPERSEDED_TAG]


def test_model_proxy_reads_history_through_the_index_only(resources: dict[str, Any]) -> None:
    statements = resources["ModelProxyRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    query = [s for s in statements if "dynamodb:Query" in s["Action"]]
    assert len(query) == 1 and query[0]["Resource"] == {"Fn::Sub": "${ModelsTable.Arn}/index/history"}
    assert not [s for s in statements if "dynamodb:Scan" in s["Action"]]


def test_starter_may_read_only_the_pending_queue_depth(resources: dict[str, Any]) -> None:
    statements = resources["StarterRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    sqs = [s for s in statements if any(a.startswith("sqs:") for a in s["Action"])]
    assert len(sqs) == 1 and sqs[0]["Action"] == ["sqs:GetQueueAttributes"]
    assert sqs[0]["Resource"] == {"Fn::GetAtt": ["PendingQueue", "Arn"]}
