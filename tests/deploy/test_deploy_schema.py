"""`autotraining deploy --schema FILE` into the emulator: the schema ships as an S3 object, every Lambda
and the worker read it (not the packaged default), and an incompatible change is refused before
anything changes unless --new-lineage."""
from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from schema_fixtures import MIXED_SCHEMA_FILE, mixed_rows, mixed_schema
from serving_fixtures import http_event

from autotraining.artifacts import METADATA_JSON, model_key
from autotraining.aws import Aws
from autotraining.registry import STATUS_PUBLISHED, ModelVersion, Registry
from autotraining.schema import load_schema
from autotraining.settings import Settings
from autotraining_tools.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")

FUNCTIONS = ("upload", "stream", "starter", "infer", "model-proxy", "generator", "page")


@pytest.fixture(autouse=True)
def _small_wheelhouse(wheelhouse_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(WHEELHOUSE, "path", str(wheelhouse_file))


WHEELHOUSE: dict[str, str] = {}  # the deploys here ship the project's wheel alone (no TensorFlow download)


def deploy(url: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["deploy", "--endpoint-url", url, "--region", "us-east-1", "--poll-seconds", "0.05",
                 "--wheelhouse", WHEELHOUSE["path"], *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_deploy_ships_the_schema_to_every_lambda_and_the_worker(moto_server_url: str,
                                                                capsys: pytest.CaptureFixture[str],
                                                                tmp_path: Path, monkeypatch) -> None:
    stack = f"schematest-{uuid.uuid4().hex[:8]}"
    code, out, err = deploy(moto_server_url, capsys, "--stack-name", stack, "--schema", MIXED_SCHEMA_FILE)
    assert code == 0, err
    cfn = boto3.client("cloudformation", endpoint_url=moto_server_url, region_name="us-east-1")
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    params = {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}
    uri = f"s3://{params['CodeBucket']}/{params['SchemaKey']}"
    assert f"Uploaded schema {MIXED_SCHEMA_FILE} as {uri}" in out

    lam = boto3.client("lambda", endpoint_url=moto_server_url, region_name="us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server_url)  # the s3:// schema is read through the emulator
    for name in FUNCTIONS:
        env = lam.get_function_configuration(FunctionName=f"{stack}-{name}")["Environment"]["Variables"]
        assert env["AUTOTRAINING_SCHEMA_FILE"] == uri, name
    # A Lambda's own settings load the shipped schema, and its upload handler accepts mixed rows only.
    env = {**lam.get_function_configuration(FunctionName=f"{stack}-upload")["Environment"]["Variables"],
           "AWS_ENDPOINT_URL": moto_server_url}
    settings = Settings.from_env(environ=env)
    assert load_schema(settings.schema_file) == mixed_schema()
    from handlers.upload import handle

    aws = Aws(settings)
    ok = handle(http_event("POST", "/records", [{**r, "label": "cool"} for r in mixed_rows()]), aws)
    assert ok["statusCode"] == 201, ok["body"]
    thermal = handle(http_event("POST", "/records", [{"temp": 70, "rh": 40, "clo": 0.5, "wind": 0.1,
                                                      "label": "ok"}]), aws)
    assert thermal["statusCode"] == 400
    # The worker's environment file (instance user data) points at the same object.
    ec2 = boto3.client("ec2", endpoint_url=moto_server_url, region_name="us-east-1")
    outputs = {r["LogicalResourceId"].replace("DataBucket", "Bucket").replace("WorkerInstance", "InstanceId"):
               r["PhysicalResourceId"] for r in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]}
    user_data = ec2.describe_instance_attribute(InstanceId=outputs["InstanceId"], Attribute="userData")
    script = base64.b64decode(user_data["UserData"]["Value"]).decode()
    assert f'SCHEMA_KEY="{params["SchemaKey"]}"' in script and "AUTOTRAINING_SCHEMA_FILE=$SCHEMA_FILE" in script

    # A serving model trained on this schema: an incompatible schema is refused before anything changes.
    registry = Registry(aws.dynamodb, outputs["ModelsTable"])
    s3 = aws.s3
    s3.put_object(Bucket=outputs["Bucket"], Key=model_key("000001", METADATA_JSON),
                  Body=json.dumps({"schema": mixed_schema().to_dict()}).encode())
    registry.commit_round(None, ModelVersion(
        version="000001", parent="", created=int(time.time() * 1000), status=STATUS_PUBLISHED,
        model_version="000001", records_seen=5, new_records=5, prequential_accuracy=None, holdout_accuracy=0.9,
        parent_holdout_accuracy=None, gate="first model", duration_s=1.0))
    changed: dict[str, Any] = mixed_schema().to_dict()
    changed["labels"] = ["cool", "hot"]
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))
    code, out, err = deploy(moto_server_url, capsys, "--stack-name", stack, "--schema", str(path))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "the label set changed" in err and "--new-lineage" in err
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["Parameters"] == described["Parameters"]

    code, out, err = deploy(moto_server_url, capsys, "--stack-name", stack, "--schema", str(path), "--new-lineage")
    assert code == 0, err
    params = {p["ParameterKey"]: p["ParameterValue"]
              for p in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Parameters"]}
    assert params["NewLineage"] == "true" and params["SchemaKey"] != described["Parameters"]
