"""`autotraining deploy` against moto's CloudFormation (the real server over HTTP), and the
embedded run's provision building its resources from the same template."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from autotraining.aws import Aws
from autotraining_tools.cli import main
from autotraining_tools.deploy.template import dropped_for_emulator, load_template
from autotraining_tools.deploy.wheelhouse import sha256_file
from autotraining_tools.local.provision import emulator_template_body


@pytest.fixture
def server(moto_server_url: str, wheelhouse_file: Path) -> Iterator[dict[str, Any]]:
    clients = {name: boto3.client(name, endpoint_url=moto_server_url, region_name="us-east-1")
               for name in ("cloudformation", "sqs", "lambda", "ec2", "s3", "dynamodb")}
    yield {"url": moto_server_url, "wheelhouse": str(wheelhouse_file), **clients}


def deploy(server: dict[str, Any], capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["deploy", "--endpoint-url", server["url"], "--region", "us-east-1", "--poll-seconds", "0.05",
                 "--wheelhouse", server["wheelhouse"], *args])
    out, err = capsys.readouterr()
    return code, out, err


def pending_visibility(server: dict[str, Any], stack: str) -> str:
    url = server["sqs"].get_queue_url(QueueName=f"{stack}-pending")["QueueUrl"]
    return server["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]["VisibilityTimeout"]


pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")  # moto skipping a type


def test_deploy_creates_the_stack_then_a_changed_parameter_applies_as_a_change_set(
        server: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    stack = f"deploytest-{uuid.uuid4().hex[:8]}"
    code, out, err = deploy(server, capsys, "--stack-name", stack)
    assert code == 0, err
    assert f"(CREATE) for stack {stack}" in out and f"Stack {stack}: CREATE_COMPLETE" in out
    assert "Add      WorkerInstance" in out and "Uploaded lambda: lambda/" in out
    assert server["cloudformation"].describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    # what the template made: functions with code from the uploaded S3 bundle, the queues, the instance
    fn = server["lambda"].get_function_configuration(FunctionName=f"{stack}-stream")
    assert fn["Handler"] == "handlers.stream.handler" and fn["Runtime"] == "python3.11"
    assert str(fn["Environment"]["Variables"]["AUTOTRAINING_START_THRESHOLD"]) == "1"  # moto keeps the number
    assert pending_visibility(server, stack) == "120"
    params = {p["ParameterKey"]: p["ParameterValue"]
              for p in server["cloudformation"].describe_stacks(StackName=stack)["Stacks"][0]["Parameters"]}
    assert params["CodeKey"].startswith("lambda/") and params["WorkerArtifactKey"].startswith("worker/")
    server["s3"].head_object(Bucket=params["CodeBucket"], Key=params["CodeKey"])
    # the instance's artifact is the wheelhouse given to deploy, uploaded under its content hash
    assert params["WorkerArtifactKey"] == f"worker/{sha256_file(Path(server['wheelhouse']))}.tar"
    assert "Uploaded worker wheelhouse: worker/" in out
    server["s3"].head_object(Bucket=params["CodeBucket"], Key=params["WorkerArtifactKey"])

    # second run, changed parameters: an UPDATE change set, printed, executed, applied
    code, out, err = deploy(server, capsys, "--stack-name", stack, "--parameter", "QueueVisibilityTimeout=300",
                            "--parameter", "StartThreshold=7")
    assert code == 0, err
    assert f"(UPDATE) for stack {stack}" in out and f"Stack {stack}: UPDATE_COMPLETE" in out
    assert "Unchanged lambda:" in out  # same code, same key: not uploaded again
    assert pending_visibility(server, stack) == "300"
    fn = server["lambda"].get_function_configuration(FunctionName=f"{stack}-stream")
    assert str(fn["Environment"]["Variables"]["AUTOTRAINING_START_THRESHOLD"]) == "7"

    # a third run without parameters keeps the previous values (UsePreviousValue)
    code, out, err = deploy(server, capsys, "--stack-name", stack)
    assert code == 0, err
    assert pending_visibility(server, stack) == "300"

    # --dry-run prints the change set and changes nothing
    code, out, err = deploy(server, capsys, "--stack-name", stack, "--parameter", "QueueVisibilityTimeout=60", "--dry-run")
    assert code == 0, err
    assert "Dry run: change set deleted, nothing executed." in out and "Executing" not in out
    assert "Unchanged worker wheelhouse: worker/" in out
    assert pending_visibility(server, stack) == "300"


def test_first_dry_run_leaves_no_stack(server: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    stack = f"deploytest-{uuid.uuid4().hex[:8]}"
    code, out, err = deploy(server, capsys, "--stack-name", stack, "--dry-run")
    assert code == 0, err
    assert "Add      RecordsTable" in out and "nothing executed" in out
    # the wheelhouse a dry run would ship is named, not uploaded
    key = f"worker/{sha256_file(Path(server['wheelhouse']))}.tar"
    assert f"Dry run: would upload worker wheelhouse: {key}" in out
    bucket = next(b["Name"] for b in server["s3"].list_buckets()["Buckets"] if b["Name"].startswith(stack))
    assert server["s3"].list_objects_v2(Bucket=bucket, Prefix="worker/").get("KeyCount") == 0
    stacks = [s for s in server["cloudformation"].list_stacks()["StackSummaries"]
              if s["StackName"] == stack and s["StackStatus"] != "DELETE_COMPLETE"]
    assert stacks == []
    assert not [q for q in server["sqs"].list_queues().get("QueueUrls", []) if stack in q]


def test_deploy_tags_the_stack_with_the_given_tags_and_a_project_tag(server: dict[str, Any],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    stack = f"deploytest-{uuid.uuid4().hex[:8]}"
    code, out, err = deploy(server, capsys, "--stack-name", stack, "--tags", "team=ml", "cost-center=42")
    assert code == 0, err
    cfn = server["cloudformation"]

    def tags_of_stack() -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Tags"]}

    assert tags_of_stack() == {"project": "autotraining", "team": "ml", "cost-center": "42"}
    # CloudFormation copies stack tags onto every resource that takes tags; moto does that only for
    # stacks made by create_stack (EC2 resources), not through a change set, so it is not checked here.
    # (moto ignores the tags of an UPDATE change set: tests/deploy/test_tags.py checks what an update sends)


@pytest.mark.parametrize("tag", ["novalue", "aws:reserved=1", "=empty-key", "k=" + "v" * 256])
def test_bad_tags_are_one_line_errors_before_anything_is_built(server: dict[str, Any],
                                                               capsys: pytest.CaptureFixture[str], tag: str) -> None:
    stack = f"deploytest-{uuid.uuid4().hex[:8]}"
    code, out, err = deploy(server, capsys, "--stack-name", stack, "--tags", tag)
    assert code == 2
    assert "--tags" in err and "is not KEY=VALUE" in err and len(err.strip().splitlines()) == 1
    assert "Uploaded" not in out and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["--parameter", "NoSuchParameter=1"], "the template has no parameter NoSuchParameter"),
    (["--parameter", "novalue"], "is not KEY=VALUE"),
    (["--wheelhouse", "/nonexistent/wheelhouse.tar"], "cannot read the wheelhouse /nonexistent/wheelhouse.tar"),
    (["--wheelhouse", __file__], "cannot read the wheelhouse"),
])
def test_bad_parameters_are_one_line_errors(server: dict[str, Any], capsys: pytest.CaptureFixture[str],
                                            args: list[str], message: str) -> None:
    code, out, err = deploy(server, capsys, "--stack-name", f"deploytest-{uuid.uuid4().hex[:8]}", *args)
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "Uploaded" not in out  # refused before anything is built or uploaded


def test_deploy_without_credentials_is_a_one_line_error(tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    console_script = Path(sys.executable).parent / "autotraining"
    proc = subprocess.run([str(console_script), "deploy", "--stack-name", "x",
                           "--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("autotraining deploy: error: no AWS credentials found "
                                   "(set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")


def test_embedded_provision_deploys_the_template_minus_what_moto_cannot_run(aws: Aws) -> None:
    cfn = aws.client("cloudformation")
    stack = cfn.describe_stacks(StackName="autotraining")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    body = cfn.get_template(StackName="autotraining")["TemplateBody"]
    deployed = body if isinstance(body, dict) else json.loads(body)
    assert json.loads(emulator_template_body()) == deployed
    template = load_template()
    dropped = set(dropped_for_emulator(template))
    assert set(deployed["Resources"]) == set(template["Resources"]) - dropped
    dropped_types = {template["Resources"][d]["Type"] for d in dropped}
    assert dropped_types == {"AWS::Lambda::EventSourceMapping", "AWS::CloudWatch::Alarm", "AWS::Lambda::Permission",
                             "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Stage", "AWS::ApiGatewayV2::Integration",
                             "AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::Authorizer",
                             "AWS::IAM::ManagedPolicy"}  # the producer policy names the API's ARN
    # every dropped Lambda permission is an API one (the schedule permissions stay)
    assert all("Api" in d for d in dropped if template["Resources"][d]["Type"] == "AWS::Lambda::Permission")
    # the settings name the stack's own resources
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                for r in cfn.list_stack_resources(StackName="autotraining")["StackResourceSummaries"]}
    s = aws.settings
    assert (s.records_table, s.models_table, s.bucket, s.instance_id) == (
        physical["RecordsTable"], physical["ModelsTable"], physical["DataBucket"], physical["WorkerInstance"])
    assert s.queue_url.endswith("/autotraining-pending") and s.dlq_url.endswith("/autotraining-pending-dlq")
    assert s.starter_function == "autotraining-starter" and s.worker_artifact.startswith("s3://")
    assert aws.client("lambda").get_function_configuration(FunctionName=s.starter_function)["Handler"] == \
        "handlers.starter.handler"
    # no event source mapping (it would make the stream's records vanish in moto)
    assert aws.client("lambda").list_event_source_mappings()["EventSourceMappings"] == []
    # the outputs are exported under the stack's name (ApiUrl is cut with the HTTP API)
    exports = {e["Name"]: e["Value"] for e in cfn.list_exports()["Exports"]}
    assert exports["autotraining-RecordsTable"] == s.records_table and exports["autotraining-QueueUrl"] == s.queue_url
    assert exports["autotraining-InstanceId"] == s.instance_id
    # the instance ends up stopped
    state = aws.ec2.describe_instances(InstanceIds=[s.instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "stopped"


def test_a_deploy_with_nothing_to_change_is_reported_and_not_executed(aws: Aws) -> None:
    from autotraining_tools.deploy.stack import deploy_stack

    body = json.dumps({"Parameters": {"Visibility": {"Type": "Number", "Default": 30}},
                       "Resources": {"Queue": {"Type": "AWS::SQS::Queue",
                                               "Properties": {"VisibilityTimeout": {"Ref": "Visibility"}}}}})
    cfn, lines = aws.client("cloudformation"), []
    first = deploy_stack(cfn, "nochange", template_body=body, template_parameters={"Visibility": {}},
                         parameters={"Visibility": "45"}, echo=lines.append, poll_seconds=0.01)
    assert first.executed and first.change_set_type == "CREATE" and first.status == "CREATE_COMPLETE"
    again = deploy_stack(cfn, "nochange", template_body=body, template_parameters={"Visibility": {}},
                         parameters={}, echo=lines.append, poll_seconds=0.01)  # previous value kept
    assert not again.executed and again.changes == ()
    assert lines[-1] == "No changes: the stack is up to date."
