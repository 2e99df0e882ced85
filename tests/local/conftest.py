"""Fixtures for the embedded run's parts: a light in-process moto with only what they touch.

The gateway, poller and agent need a records table with a stream and an instance, not the
whole provisioned stack, so ``aws`` here overrides the root fixture: one moto mock per
module, and per test a fresh table and a stopped instance (unique names, so tests do not
share state). It is several seconds per test faster than provisioning everything.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from autotraining.aws import Aws
from autotraining.settings import Settings


@pytest.fixture(scope="module")
def _moto_mock() -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def aws(_moto_mock: None) -> Aws:
    base = Aws(Settings(region="us-east-1"))
    table = f"records-{uuid.uuid4().hex[:8]}"
    base.dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                               AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                               KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                               StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    instance = base.ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                      InstanceType="t3.small")["Instances"][0]["InstanceId"]
    base.ec2.stop_instances(InstanceIds=[instance])
    return Aws(base.settings.replace(records_table=table, instance_id=instance))
