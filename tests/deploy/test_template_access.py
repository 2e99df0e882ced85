"""The template's access rules: writes authorized (IAM by default, JWT as the alternative), reads by parameter."""
from __future__ import annotations

from typing import Any

import pytest

from autotraining import api
from autotraining_tools.deploy.template import load_template
from worker.state import SUPERSEDED_TAG

NO_VALUE = {"Ref": "AWS::NoValue"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _routes(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["Properties"]["RouteKey"]: r["Properties"] for r in template["Resources"].values()
            if r["Type"] == "AWS::ApiGatewayV2::Route"}


def _resolve(value: Any, conditions: dict[str, bool]) -> Any:
    """Evaluate ``Fn::If`` for the given condition values (enough for the route properties)."""
    if isinstance(value, dict) and "Fn::If" in value:
        name, yes, no = value["Fn::If"]
        return _resolve(yes if conditions[name] else no, conditions)
    return value


@pytest.mark.parametrize("write, reads", [("AWS_IAM", "NONE"), ("AWS_IAM", "SAME"), ("JWT", "NONE"), ("JWT", "SAME")])
def test_every_route_gets_the_authorization_its_parameters_choose(template: dict[str, Any], write: str, reads: str) -> None:
    conditions = {"UseJwt": write == "JWT", "AuthorizedReads": reads == "SAME",
                  "JwtReads": write == "JWT" and reads == "SAME"}
    for key, props in _routes(template).items():
        method, path = key.split(" ", 1)
        kind = _resolve(props.get("AuthorizationType", "NONE"), conditions)
        authorizer = _resolve(props.get("AuthorizerId", NO_VALUE), conditions)
        if method == "OPTIONS":
            expected = "NONE"  # browsers send preflights without credentials
        elif (method, path) in api.WRITE_ROUTES or reads == "SAME":
            expected = write
        else:
            expected = "NONE"
        assert kind == expected, key
        assert (authorizer == {"Ref": "JwtAuthorizer"}) == (expected == "JWT"), key


def test_default_parameters_are_iam_writes_and_public_reads(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["WriteAuthorization"]["Default"] == "AWS_IAM" and params["ReadAuthorization"]["Default"] == "NONE"


def test_producer_policy_allows_only_invoking_this_apis_routes_and_is_exported(template: dict[str, Any]) -> None:
    policy = template["Resources"]["ProducerPolicy"]["Properties"]["PolicyDocument"]
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and statement["Action"] == ["execute-api:Invoke"]
        for resource in statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]:
            assert "${HttpApi}/$default/" in resource["Fn::Sub"]
    assert "Export" in template["Outputs"]["ProducerPolicyArn"]


def test_http_functions_have_reserved_concurrency(template: dict[str, Any]) -> None:
    functions = {r["Properties"]["Handler"].split(".")[1]: r["Properties"] for r in template["Resources"].values()
                 if r["Type"] == "AWS::Lambda::Function"}
    for module in {m for _, _, m in api.ROUTES}:
        assert "ReservedConcurrentExecutions" in functions[module], module


def test_data_bucket_is_versioned_and_the_worker_may_not_delete_committed_objects(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["DataBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    statements = template["Resources"]["WorkerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    denied = {(action, str(resource)) for st in statements if st["Effect"] == "Deny"
              for action in st["Action"] for resource in st["Resource"]}
    for prefix in ("models/*", "state/*", "log/*"):
        assert ("s3:DeleteObject", str({"Fn::Sub": "${DataBucket.Arn}/" + prefix})) in denied
    assert any(action == "s3:DeleteObjectVersion" for action, _ in denied)
    allowed_deletes = [st["Resource"] for st in statements if st["Effect"] == "Allow" and "s3:DeleteObject" in st["Action"]]
    assert allowed_deletes == [{"Fn::Sub": "${DataBucket.Arn}/staging/*"}]


def _worker_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return template["Resources"]["WorkerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def test_the_worker_may_only_create_objects_never_replace_one(template: dict[str, Any]) -> None:
    """S3 refuses a put carrying If-None-Match: * when the key exists; the role allows no other put
    (worker/publish.py put_new), and the bucket policy denies the role any put without it."""
    puts = [st for st in _worker_statements(template) if st["Effect"] == "Allow" and "s3:PutObject" in st["Action"]]
    assert len(puts) == 1
    assert puts[0]["Condition"] == {"StringEquals": {"s3:if-none-match": "*"}}
    assert sorted(r["Fn::Sub"] for r in puts[0]["Resource"]) == [
        "${DataBucket.Arn}/models/*", "${DataBucket.Arn}/staging/*", "${DataBucket.Arn}/state/*"]
    bucket_policy = template["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    deny = [st for st in bucket_policy if st.get("Sid") == "WorkerWritesCreateOnly"]
    assert len(deny) == 1 and deny[0]["Effect"] == "Deny" and deny[0]["Action"] == "s3:PutObject"
    assert deny[0]["Resource"] == {"Fn::Sub": "${DataBucket.Arn}/*"}
    assert deny[0]["Condition"] == {"ArnEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["WorkerRole", "Arn"]}},
                                    "Null": {"s3:if-none-match": "true"}}


def test_the_worker_may_set_only_the_superseded_mark_and_only_on_states(template: dict[str, Any]) -> None:
    tagging = [st for st in _worker_statements(template) if "s3:PutObjectTagging" in st["Action"]]
    assert len(tagging) == 1 and tagging[0]["Resource"] == {"Fn::Sub": "${DataBucket.Arn}/state/*"}
    assert tagging[0]["Condition"] == {
        "StringEquals": {f"s3:RequestObjectTag/{SUPERSEDED_TAG['Key']}": SUPERSEDED_TAG["Value"]},
        "ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": [SUPERSEDED_TAG["Key"]]}}
