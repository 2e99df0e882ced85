"""ensure_started (autotraining.instance) in every instance state, with botocore's Stubber.

moto changes EC2 states instantly and never raises IncorrectInstanceState, so the states
AWS really passes through (stopping, an in-between start refusal, terminated) are stubbed.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from ingest_fixtures import IID, described, starting

from autotraining.aws import Aws
from autotraining.instance import (
    ALREADY_PENDING,
    ALREADY_RUNNING,
    STARTED,
    InstanceUnavailable,
    StartPolicy,
    ensure_started,
)

FAST = StartPolicy(attempts=5, initial=0.0, maximum=0.0)


@pytest.fixture
def ec2() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def expect_describe(stub: Stubber, state: str) -> None:
    stub.add_response("describe_instances", described(state), {"InstanceIds": [IID]})


def test_stopped_instance_is_started(ec2: tuple[Any, Stubber]) -> None:
    client, stub = ec2
    expect_describe(stub, "stopped")
    stub.add_response("start_instances", starting(), {"InstanceIds": [IID]})
    assert ensure_started(client, IID, FAST) == STARTED


@pytest.mark.parametrize("state, result", [("running", ALREADY_RUNNING), ("pending", ALREADY_PENDING)])
def test_running_or_pending_instance_is_left_alone(ec2: tuple[Any, Stubber], state: str, result: str) -> None:
    client, stub = ec2
    expect_describe(stub, state)  # no start_instances queued: calling it would fail the stub
    assert ensure_started(client, IID, FAST) == result


def test_stopping_instance_is_waited_for_then_started(ec2: tuple[Any, Stubber]) -> None:
    client, stub = ec2
    for state in ("stopping", "stopping", "stopping", "stopped"):
        expect_describe(stub, state)
    stub.add_response("start_instances", starting(), {"InstanceIds": [IID]})
    assert ensure_started(client, IID, FAST) == STARTED


def test_incorrect_instance_state_on_start_is_retried(ec2: tuple[Any, Stubber]) -> None:
    client, stub = ec2
    expect_describe(stub, "stopped")
    stub.add_client_error("start_instances", service_error_code="IncorrectInstanceState",
                          service_message=f"The instance '{IID}' is not in a state from which it can be started.",
                          http_status_code=400, expected_params={"InstanceIds": [IID]})
    expect_describe(stub, "stopped")
    stub.add_response("start_instances", starting(), {"InstanceIds": [IID]})
    assert ensure_started(client, IID, FAST) == STARTED


def test_state_change_between_look_and_start_ends_as_no_op(ec2: tuple[Any, Stubber]) -> None:
    client, stub = ec2
    expect_describe(stub, "stopped")
    stub.add_client_error("start_instances", service_error_code="IncorrectInstanceState", http_status_code=400)
    expect_describe(stub, "pending")  # someone else started it meanwhile
    assert ensure_started(client, IID, FAST) == ALREADY_PENDING


def test_instance_stuck_stopping_gives_up_after_the_bound(ec2: tuple[Any, Stubber]) -> None:
    client, stub = ec2
    for _ in range(FAST.attempts):
        expect_describe(stub, "stopping")
    with pytest.raises(InstanceUnavailable, match="after 5 attempts"):
        ensure_started(client, IID, FAST)


@pytest.mark.parametrize("state", ["terminated", "shutting-down"])
def test_terminated_instance_is_a_clear_error(ec2: tuple[Any, Stubber], state: str) -> None:
    client, stub = ec2
    expect_describe(stub, state)
    with pytest.raises(InstanceUnavailable, match=f"{IID} is {state} and cannot be started"):
        ensure_started(client, IID, FAST)


def test_missing_instance_is_a_clear_error(ec2: tuple[Any, Stubber]) -> None:
    client, stub = ec2
    stub.add_client_error("describe_instances", service_error_code="InvalidInstanceID.NotFound",
                          service_message=f"The instance ID '{IID}' does not exist", http_status_code=400)
    with pytest.raises(InstanceUnavailable, match=f"instance {IID} does not exist"):
        ensure_started(client, IID, FAST)


def test_unconfigured_instance_id_is_a_clear_error(ec2: tuple[Any, Stubber]) -> None:
    with pytest.raises(InstanceUnavailable, match="AUTOTRAINING_INSTANCE_ID"):
        ensure_started(ec2[0], "", FAST)


def test_other_ec2_errors_propagate(ec2: tuple[Any, Stubber]) -> None:
    client, stub = ec2
    stub.add_client_error("describe_instances", service_error_code="UnauthorizedOperation", http_status_code=403)
    with pytest.raises(Exception, match="UnauthorizedOperation"):
        ensure_started(client, IID, FAST)


def test_stopped_instance_in_the_emulator_ends_running(aws: Aws) -> None:
    iid = aws.settings.instance_id
    assert ensure_started(aws.ec2, iid) == STARTED
    state = aws.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "running"
    assert ensure_started(aws.ec2, iid) == ALREADY_RUNNING
