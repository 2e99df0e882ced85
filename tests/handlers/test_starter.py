"""handlers.starter in each instance state (Stubber for the states moto cannot produce) and on the emulator."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from ingest_fixtures import IID, described, starting

import handlers.starter
from autotraining.aws import Aws
from autotraining.instance import InstanceUnavailable, StartPolicy
from autotraining.settings import Settings

FAST = StartPolicy(attempts=4, initial=0.0, maximum=0.0)
SCHEDULED = {"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
             "source": "aws.events", "account": "123456789012", "time": "2026-11-26T06:00:00Z", "region": "us-east-1",
             "resources": ["arn:aws:events:us-east-1:123456789012:rule/autotraining-start-schedule"], "detail": {}}


QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/autotraining-pending"


class StubbedAws(Aws):
    def __init__(self, ec2: Any, sqs: Any) -> None:
        super().__init__(Settings(instance_id=IID, queue_url=QUEUE))
        self._clients = {"ec2": ec2, "sqs": sqs}

    def client(self, service: str) -> Any:
        assert service in self._clients, service
        return self._clients[service]


@pytest.fixture
def stubbed() -> Iterator[tuple[StubbedAws, Stubber]]:
    """EC2 stubbed; a scheduled tick sees one message waiting in the (stubbed) pending queue."""
    keys = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    client, sqs = boto3.client("ec2", **keys), boto3.client("sqs", **keys)
    with Stubber(client) as stub, Stubber(sqs) as queue:
        queue.add_response("get_queue_attributes", {"Attributes": {
            "ApproximateNumberOfMessages": "1", "ApproximateNumberOfMessagesNotVisible": "0"}})
        yield StubbedAws(client, sqs), stub
        stub.assert_no_pending_responses()


def describe(stub: Stubber, *states: str) -> None:
    for state in states:
        stub.add_response("describe_instances", described(state), {"InstanceIds": [IID]})


def test_stopped_instance_is_started_from_a_stream_invoke(stubbed: tuple[StubbedAws, Stubber]) -> None:
    aws, stub = stubbed
    describe(stub, "stopped")
    stub.add_response("start_instances", starting(), {"InstanceIds": [IID]})
    assert handlers.starter.handle({"source": "stream"}, aws, FAST) == {
        "instance_id": IID, "action": "started", "source": "stream"}


@pytest.mark.parametrize("state", ["running", "pending"])
def test_running_or_pending_instance_is_a_no_op_on_schedule(stubbed: tuple[StubbedAws, Stubber], state: str) -> None:
    aws, stub = stubbed
    describe(stub, state)
    out = handlers.starter.handle(SCHEDULED, aws, FAST)
    assert out == {"instance_id": IID, "action": f"already {state}", "source": "aws.events"}


def test_stopping_instance_is_waited_for_then_started(stubbed: tuple[StubbedAws, Stubber]) -> None:
    aws, stub = stubbed
    describe(stub, "stopping", "stopping", "stopped")
    stub.add_response("start_instances", starting(), {"InstanceIds": [IID]})
    assert handlers.starter.handle({"source": "stream"}, aws, FAST)["action"] == "started"


def test_incorrect_instance_state_is_retried(stubbed: tuple[StubbedAws, Stubber]) -> None:
    aws, stub = stubbed
    describe(stub, "stopped")
    stub.add_client_error("start_instances", service_error_code="IncorrectInstanceState", http_status_code=400)
    describe(stub, "stopped")
    stub.add_response("start_instances", starting(), {"InstanceIds": [IID]})
    assert handlers.starter.handle({"source": "stream"}, aws, FAST)["action"] == "started"


def test_terminated_instance_raises(stubbed: tuple[StubbedAws, Stubber]) -> None:
    aws, stub = stubbed
    describe(stub, "terminated")
    with pytest.raises(InstanceUnavailable, match="is terminated and cannot be started"):
        handlers.starter.handle(SCHEDULED, aws, FAST)


def test_lambda_entry_point_starts_the_emulated_instance(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in aws.settings.to_env().items():
        if value:
            monkeypatch.setenv(name, value)
    assert handlers.starter.handler({"source": "stream"}, None)["action"] == "started"
    reservation = aws.ec2.describe_instances(InstanceIds=[aws.settings.instance_id])["Reservations"][0]
    assert reservation["Instances"][0]["State"]["Name"] == "running"
    assert handlers.starter.handler(SCHEDULED, None)["action"] == "queue empty"
    aws.sqs.send_message(QueueUrl=aws.settings.queue_url, MessageBody="{}")
    assert handlers.starter.handler(SCHEDULED, None)["action"] == "already running"


def _instance_state(aws: Aws) -> str:
    reservation = aws.ec2.describe_instances(InstanceIds=[aws.settings.instance_id])["Reservations"][0]
    return str(reservation["Instances"][0]["State"]["Name"])


def test_scheduled_tick_with_an_empty_queue_leaves_a_stopped_instance_stopped(aws: Aws) -> None:
    aws.ec2.stop_instances(InstanceIds=[aws.settings.instance_id])
    calls: list[str] = []
    aws.ec2.meta.events.register("before-call.ec2.*", lambda model, **_: calls.append(model.name))
    for _ in range(3):
        assert handlers.starter.handle(SCHEDULED, aws, FAST)["action"] == "queue empty"
    assert calls == []  # not even a DescribeInstances
    assert _instance_state(aws) == "stopped"


@pytest.mark.parametrize("in_flight", [False, True])
def test_scheduled_tick_with_a_message_waiting_or_in_flight_starts_the_instance(aws: Aws, in_flight: bool) -> None:
    aws.ec2.stop_instances(InstanceIds=[aws.settings.instance_id])
    aws.sqs.send_message(QueueUrl=aws.settings.queue_url, MessageBody="{}")
    if in_flight:  # a worker received it, then its instance was stopped from outside
        assert aws.sqs.receive_message(QueueUrl=aws.settings.queue_url, VisibilityTimeout=60)["Messages"]
    assert handlers.starter.handle(SCHEDULED, aws, FAST)["action"] == "started"
    assert _instance_state(aws) == "running"
