"""Stack tags on the change set: the default ``project`` tag, the tags given, and the stack's current
tags kept on an update. botocore's Stubber checks the exact request, since moto ignores the tags
of an UPDATE change set (the create path is checked against moto in test_stack_moto.py)."""
from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import ANY, Stubber

from autotraining_tools.deploy.stack import DEFAULT_TAGS, deploy_stack, stack_tags

STACK = "tagged"
EXISTING = {"StackName": STACK, "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/tagged/1",
            "CreationTime": "2026-11-30T00:00:00Z", "StackStatus": "UPDATE_COMPLETE",
            "Parameters": [{"ParameterKey": "Visibility", "ParameterValue": "30"}],
            "Tags": [{"Key": "project", "Value": "autotraining"}, {"Key": "team", "Value": "ml"},
                     {"Key": "cost-center", "Value": "42"},
                     {"Key": "aws:cloudformation:stack-name", "Value": STACK}]}


def dry_run_update(tags: dict[str, str]) -> list[dict[str, str]]:
    """Run a dry-run UPDATE through a stubbed client; the Tags the change set was created with."""
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    sent: list[Any] = []
    cfn.meta.events.register("provide-client-params.cloudformation.CreateChangeSet",
                             lambda params, **_: sent.append(params.get("Tags")))
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", {"Stacks": [EXISTING]}, {"StackName": STACK})
        stub.add_response("create_change_set", {"Id": "cs-1", "StackId": EXISTING["StackId"]},
                          {"StackName": STACK, "ChangeSetName": ANY, "ChangeSetType": "UPDATE", "Parameters": ANY,
                           "Capabilities": ANY, "Description": ANY, "TemplateBody": ANY, "Tags": ANY})
        stub.add_response("describe_change_set", {"Status": "CREATE_COMPLETE", "Changes": []},
                          {"StackName": STACK, "ChangeSetName": ANY})
        stub.add_response("delete_change_set", {}, {"StackName": STACK, "ChangeSetName": ANY})
        result = deploy_stack(cfn, STACK, template_body="{}", template_parameters={"Visibility": {}},
                              parameters={}, tags=tags, dry_run=True, echo=lambda _: None, poll_seconds=0.0)
        stub.assert_no_pending_responses()
    assert result.change_set_type == "UPDATE" and not result.executed
    assert len(sent) == 1
    return sent[0]


def test_an_update_that_names_one_tag_changes_it_and_keeps_the_others() -> None:
    assert dry_run_update({"team": "data"}) == [
        {"Key": "cost-center", "Value": "42"}, {"Key": "project", "Value": "autotraining"},
        {"Key": "team", "Value": "data"}]


def test_an_update_without_tags_keeps_the_stacks_tags_and_never_sends_aws_ones() -> None:
    sent = dry_run_update({})
    assert {t["Key"] for t in sent} == {"cost-center", "project", "team"}


def test_a_first_deploy_gets_the_project_tag_and_the_given_tags_may_override_it() -> None:
    assert stack_tags({}, None) == [{"Key": k, "Value": v} for k, v in DEFAULT_TAGS.items()]
    assert stack_tags({"project": "demo", "a": "1"}, None) == [{"Key": "a", "Value": "1"},
                                                                 {"Key": "project", "Value": "demo"}]
