"""The per-function action table of test_template.py, checked against the code: each handler runs
against the moto-provisioned stack, every AWS operation it makes is recorded and translated to
the IAM action AWS authorizes it with, and that set must be inside the table (= the role)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from serving_fixtures import export_model, http_event, publish
from test_template import FUNCTION_ACTIONS

from autotraining import invoke
from autotraining.aws import Aws
from autotraining.generator import generate, generate_features
from autotraining.schema import Schema

EVENTS = Path(__file__).resolve().parents[1] / "events"

# Operations whose IAM action is not "<service>:<operation name>".
OPERATION_ACTIONS = {
    "s3:HeadObject": {"s3:GetObject"},
    "s3:CopyObject": {"s3:GetObject", "s3:PutObject"},
    "s3:ListObjectsV2": {"s3:ListBucket"},
    "s3:DeleteObjects": {"s3:DeleteObject"},
    "sqs:SendMessageBatch": {"sqs:SendMessage"},
    "sqs:DeleteMessageBatch": {"sqs:DeleteMessage"},
    "sqs:ChangeMessageVisibilityBatch": {"sqs:ChangeMessageVisibility"},
    "lambda:Invoke": {"lambda:InvokeFunction"},
}


class RecordingAws(Aws):
    """An ``Aws`` whose clients record the IAM action of every call they make."""

    def __init__(self, aws: Aws) -> None:
        super().__init__(aws.settings)
        self.actions: set[str] = set()
        self._hooked: set[str] = set()

    def client(self, service: str) -> Any:
        client = super().client(service)
        if service not in self._hooked:
            self._hooked.add(service)
            client.meta.events.register("before-parameter-build", self._record)
        return client

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        prefix = model.service_model.signing_name
        name = f"{prefix}:{model.name}"
        if name == "dynamodb:TransactWriteItems":  # authorized item by item
            for item in params.get("TransactItems", []):
                self.actions.update(f"dynamodb:{kind}Item" for kind in item)
            return
        self.actions.update(OPERATION_ACTIONS.get(name, {name}))


@pytest.fixture
def recording(aws: Aws) -> RecordingAws:
    return RecordingAws(aws)


def assert_within_role(module: str, recorded: set[str], *also: str) -> None:
    assert recorded, f"{module} made no AWS call"
    extra = recorded - FUNCTION_ACTIONS[module]
    assert not extra, f"handlers.{module} needs {sorted(extra)}, which its role does not grant"
    for action in also:
        assert action in FUNCTION_ACTIONS[module]


def test_upload_and_generator_stay_within_their_roles(recording: RecordingAws, schema: Schema) -> None:
    from handlers import generator, upload

    records = [r.to_log_dict(schema) for r in generate(schema, 20, seed=3)]
    response = upload.handle(http_event("POST", "/records", records), recording)
    assert response["statusCode"] == 201
    assert_within_role("upload", recording.actions)
    recording.actions.clear()
    generator.handle({"source": "schedule"}, recording)
    assert_within_role("generator", recording.actions)


def test_stream_stays_within_its_role(recording: RecordingAws, monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers import stream

    invoked: list[str] = []

    def record_invoke(name: str, event: dict[str, Any]) -> None:  # the Lambda Event invoke, recorded
        invoked.append(name)
        recording.actions.add("lambda:InvokeFunction")

    invoke.set_local_invoker(record_invoke)
    try:
        stream.handle(json.loads((EVENTS / "dynamodb_stream_batch.json").read_text()), recording)
    finally:
        invoke.set_local_invoker(None)
    assert invoked == [recording.settings.starter_function]
    assert_within_role("stream", recording.actions)
    # the stream read and the on-failure destination use the role too (the mapping, not the code)
    assert {"dynamodb:GetRecords", "dynamodb:GetShardIterator", "sqs:SendMessage"} <= FUNCTION_ACTIONS["stream"]


def test_starter_stays_within_its_role(recording: RecordingAws) -> None:
    from handlers import starter

    recording.sqs.send_message(QueueUrl=recording.settings.queue_url, MessageBody="{}")  # work is waiting
    recording.actions.clear()
    starter.handle({"source": "schedule"}, recording)
    assert_within_role("starter", recording.actions, "ec2:StartInstances")
    assert {"ec2:StartInstances", "sqs:GetQueueAttributes"} <= recording.actions


def test_serving_functions_stay_within_their_roles(recording: RecordingAws, schema: Schema) -> None:
    from autotraining.serving import ModelCache, ModelProxy
    from handlers import infer, model_proxy

    publish(recording, schema, export_model(schema))
    recording.actions.clear()
    rows = generate_features(schema, 3, seed=1)
    body = [dict(zip(schema.feature_names, row, strict=True)) for row in rows]
    response = infer.handle(http_event("POST", "/predict", body), recording, ModelCache.for_aws(recording))
    assert response["statusCode"] == 200, response["body"]
    assert_within_role("infer", recording.actions)
    recording.actions.clear()
    proxy = ModelProxy.for_aws(recording)
    listing = model_proxy.handle(http_event("GET", "/models"), recording, proxy)
    assert json.loads(listing["body"])["versions"]
    redirect = model_proxy.handle(http_event("GET", "/models/latest/model.json",
                                             path_parameters={"version": "latest", "file": "model.json"}),
                                  recording, proxy)
    assert redirect["statusCode"] == 302
    # a presigned GET URL is signed locally: it works only if the role may s3:GetObject
    assert_within_role("model_proxy", recording.actions | {"s3:GetObject"})


def test_worker_rounds_and_self_stop_stay_within_the_instance_role(aws: Aws, schema: Schema) -> None:
    from test_template import WORKER_ACTIONS

    from autotraining.segments import SegmentRef, encode_segment, segment_key
    from worker.loop import Worker, WorkerOptions
    from worker.trainer import TrainConfig

    recording = RecordingAws(Aws(aws.settings.replace(reservoir_size=300)))
    s = recording.settings

    def log_segment(seed: int, first: int) -> None:  # what the stream function writes
        records = list(generate(schema, 200, seed=seed))
        ref = SegmentRef(key=segment_key("shardId-1", str(first), str(first + 199)), count=200)
        aws.s3.put_object(Bucket=s.bucket, Key=ref.key, Body=encode_segment(records, schema))
        aws.sqs.send_message(QueueUrl=s.queue_url, MessageBody=ref.to_message())

    options = WorkerOptions(idle_grace=0.0, poll_seconds=0, config=TrainConfig(hidden=(8,), epochs=2, batch_size=128))
    for round_number in range(2):  # a first model, then a warm start from it
        log_segment(seed=round_number, first=1 + 1000 * round_number)
        aws.ec2.start_instances(InstanceIds=[s.instance_id])
        assert Worker(recording, options).run() == 0
    state = aws.ec2.describe_instances(InstanceIds=[s.instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "stopped"  # it stopped itself
    extra = recording.actions - WORKER_ACTIONS
    assert not extra, f"the worker needs {sorted(extra)}, which the instance role does not grant"
    assert {"ec2:StopInstances", "sqs:ReceiveMessage", "dynamodb:UpdateItem", "s3:PutObject"} <= recording.actions
