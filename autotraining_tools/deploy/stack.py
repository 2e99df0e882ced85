"""Create or update the stack through a change set: create it, print it, execute it, wait, report.

The same flow serves a first deploy (change set of type CREATE) and every update (UPDATE);
parameters not given on an update keep their previous values (``UsePreviousValue``). Tags go on
the stack (the change set's ``Tags``), and CloudFormation copies stack tags onto every resource
that takes tags; ``project`` is always set, and tags given once stay on later updates. A change
set with no changes is reported and deleted, not executed. ``dry_run`` stops after printing
(the change set is deleted, and so is the empty stack a first dry run leaves behind).
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from autotraining.logs import get_logger
from autotraining_tools.deploy import bundle, template, wheelhouse

log = get_logger(__name__)

Echo = Callable[[str], None]
SUCCESS = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
FAILED = {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_COMPLETE", "DELETE_FAILED",
          "UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED", "IMPORT_ROLLBACK_COMPLETE"}
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed", "no changes")
DEFAULT_TAGS = {"project": "autotraining"}


class DeployError(RuntimeError):
    """The stack could not be created or updated (the message says why, in one line)."""


@dataclass(frozen=True)
class Change:
    action: str  # Add | Modify | Remove | Dynamic
    logical_id: str
    resource_type: str
    replacement: str = ""

    def line(self) -> str:
        extra = f" (replacement: {self.replacement})" if self.replacement and self.action == "Modify" else ""
        return f"  {self.action:<8} {self.logical_id:<32} {self.resource_type}{extra}"


@dataclass(frozen=True)
class DeployResult:
    stack_name: str
    change_set_type: str  # CREATE | UPDATE
    changes: tuple[Change, ...]
    executed: bool
    status: str  # final stack status ("" when not executed)
    outputs: dict[str, str] = field(default_factory=dict)


def _error_message(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Message") or str(exc)


def describe_stack(cfn: Any, stack_name: str) -> dict[str, Any] | None:
    try:
        return cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in _error_message(exc):
            return None
        raise


def stack_outputs(stack: Mapping[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _parameters(template_parameters: Mapping[str, Any], given: Mapping[str, str],
                existing: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    unknown = sorted(set(given) - set(template_parameters))
    if unknown:
        raise DeployError(f"the template has no parameter {', '.join(unknown)} "
                          f"(it has: {', '.join(sorted(template_parameters))})")
    previous = {p["ParameterKey"]: p.get("ParameterValue", "") for p in (existing or {}).get("Parameters", [])}
    out: list[dict[str, Any]] = []
    for key, spec in template_parameters.items():
        if key in given:
            out.append({"ParameterKey": key, "ParameterValue": str(given[key])})
        elif key in previous:
            if str(spec.get("Type", "")).startswith("AWS::SSM::Parameter::"):
                # Keep the parameter's name (AWS reports the name, resolves it again and moves to a
                # newer AMI); an emulator that reports the resolved value gets the default instead.
                if previous[key].startswith("/"):
                    out.append({"ParameterKey": key, "ParameterValue": previous[key]})
                continue
            out.append({"ParameterKey": key, "UsePreviousValue": True})
    return out


def stack_tags(given: Mapping[str, str], existing: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The stack's tags: the default ``project`` tag, then the stack's current tags (an update that
    names no tag must not strip them), then ``given``; keys sorted."""
    tags = {**DEFAULT_TAGS, **{t["Key"]: t["Value"] for t in (existing or {}).get("Tags", [])
                               if not t["Key"].startswith("aws:")}, **given}
    return [{"Key": key, "Value": tags[key]} for key in sorted(tags)]


def _wait_change_set(cfn: Any, stack_name: str, name: str, poll: float, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        cs = cfn.describe_change_set(StackName=stack_name, ChangeSetName=name)
        if cs["Status"] in ("CREATE_COMPLETE", "FAILED", "DELETE_COMPLETE"):
            return cs
        if time.monotonic() > deadline:
            raise DeployError(f"change set {name} still {cs['Status']} after {timeout:.0f} s")
        time.sleep(poll)


def _changes(cs: Mapping[str, Any]) -> tuple[Change, ...]:
    out = []
    for c in cs.get("Changes", []):
        rc = c.get("ResourceChange", {})
        out.append(Change(action=rc.get("Action", "?"), logical_id=rc.get("LogicalResourceId", "?"),
                          resource_type=rc.get("ResourceType", "?"), replacement=str(rc.get("Replacement", ""))))
    return tuple(out)


def _event_ids(cfn: Any, stack_name: str) -> set[str]:
    try:
        return {ev["EventId"] for ev in cfn.describe_stack_events(StackName=stack_name).get("StackEvents", [])}
    except ClientError:
        return set()


def _wait_stack(cfn: Any, stack_name: str, seen: set[str], echo: Echo, poll: float, timeout: float) -> dict[str, Any]:
    """Poll until the stack settles, echoing each stack event not in ``seen`` (the progress)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            events = cfn.describe_stack_events(StackName=stack_name).get("StackEvents", [])
        except ClientError:
            events = []
        for ev in reversed(events):
            if ev["EventId"] in seen:
                continue
            seen.add(ev["EventId"])
            reason = f"  {ev['ResourceStatusReason']}" if ev.get("ResourceStatusReason") else ""
            echo(f"  {ev['ResourceStatus']:<20} {ev['LogicalResourceId']:<32} {ev.get('ResourceType', '')}{reason}")
        stack = describe_stack(cfn, stack_name)
        status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
        if status in SUCCESS or status in FAILED:
            return stack or {"StackStatus": status}
        if time.monotonic() > deadline:
            raise DeployError(f"stack {stack_name} still {status} after {timeout:.0f} s")
        time.sleep(poll)


def deploy_stack(cfn: Any, stack_name: str, *, template_url: str = "", template_body: str = "",
                 template_parameters: Mapping[str, Any], parameters: Mapping[str, str],
                 tags: Mapping[str, str] | None = None, dry_run: bool = False, echo: Echo = print, poll_seconds: float = 5.0,
                 timeout_seconds: float = 3600.0) -> DeployResult:
    """Create or update ``stack_name`` from the template (URL or body) through one change set."""
    existing = describe_stack(cfn, stack_name)
    status = existing["StackStatus"] if existing else ""
    if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"):
        raise DeployError(f"stack {stack_name} is {status}: delete it (aws cloudformation delete-stack) and deploy again")
    if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        raise DeployError(f"stack {stack_name} is busy ({status}); wait for it to finish")
    kind = "UPDATE" if existing and status != "REVIEW_IN_PROGRESS" else "CREATE"
    name = f"deploy-{time.strftime('%Y%m%d-%H%M%S')}-{int(time.time() * 1000) % 1000:03d}"
    request: dict[str, Any] = {
        "StackName": stack_name, "ChangeSetName": name, "ChangeSetType": kind,
        "Parameters": _parameters(template_parameters, parameters, existing if kind == "UPDATE" else None),
        "Capabilities": ["CAPABILITY_IAM"],
        "Tags": stack_tags(tags or {}, existing if kind == "UPDATE" else None),
        "Description": "autotraining deploy",
    }
    request.update({"TemplateURL": template_url} if template_url else {"TemplateBody": template_body})
    echo(f"Creating change set {name} ({kind}) for stack {stack_name} ...")
    try:
        cfn.create_change_set(**request)
    except ClientError as exc:
        message = _error_message(exc)
        if any(s in message for s in _NO_CHANGES):
            echo("No changes: the stack is up to date.")
            return DeployResult(stack_name, kind, (), executed=False, status=status,
                                outputs=stack_outputs(existing or {}))
        raise DeployError(f"change set refused: {message}") from None
    cs = _wait_change_set(cfn, stack_name, name, poll_seconds, timeout_seconds)
    if cs["Status"] == "FAILED":
        reason = cs.get("StatusReason", "")
        cfn.delete_change_set(StackName=stack_name, ChangeSetName=name)
        if any(s in reason for s in _NO_CHANGES):
            echo("No changes: the stack is up to date.")
            return DeployResult(stack_name, kind, (), executed=False, status=status,
                                outputs=stack_outputs(existing or {}))
        raise DeployError(f"change set failed: {reason}")
    changes = _changes(cs)
    echo(f"Change set {name}: {len(changes)} change(s)")
    for change in changes:
        echo(change.line())
    if dry_run:
        cfn.delete_change_set(StackName=stack_name, ChangeSetName=name)
        if kind == "CREATE":
            try:  # the empty REVIEW_IN_PROGRESS stack a first change set creates
                cfn.delete_stack(StackName=stack_name)
            except ClientError as exc:
                log.warning("deploy.dry_run_cleanup_failed", stack=stack_name, error=_error_message(exc))
        echo("Dry run: change set deleted, nothing executed.")
        return DeployResult(stack_name, kind, changes, executed=False, status=status)
    started = time.time()
    seen = _event_ids(cfn, stack_name)
    cfn.execute_change_set(StackName=stack_name, ChangeSetName=name)
    echo(f"Executing change set {name} ...")
    final = _wait_stack(cfn, stack_name, seen, echo, poll_seconds, timeout_seconds)
    final_status = final["StackStatus"]
    if final_status not in SUCCESS:
        reason = final.get("StackStatusReason", "")
        raise DeployError(f"stack {stack_name} ended {final_status}" + (f": {reason}" if reason else ""))
    echo(f"Stack {stack_name}: {final_status} in {time.time() - started:.1f} s")
    if not final.get("Outputs"):
        # moto does not recompute outputs after a change set (see docs/deploy.md).
        echo("(the endpoint reported no stack outputs)")
    return DeployResult(stack_name, kind, changes, executed=True, status=final_status, outputs=stack_outputs(final))


# ------------------------------------------------------------------ the whole deploy

@dataclass(frozen=True)
class DeployRequest:
    """What ``autotraining deploy`` (and the embedded run's provision) asks for."""

    stack_name: str
    artifact_bucket: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)  # stack tags besides DEFAULT_TAGS
    dry_run: bool = False
    emulator_cut: bool = False  # deploy template.for_emulator(...) (the embedded run)
    with_dependencies: bool = True  # vendor numpy & co into the Lambda bundle
    poll_seconds: float = 5.0
    schema_file: str = ""  # a schema to ship (S3 object in the artifact bucket, parameter SchemaKey)
    new_lineage: bool = False  # an incompatible schema change starts a fresh lineage instead of being refused
    wheelhouse: str = ""  # a wheelhouse tar built earlier (`deploy --wheelhouse FILE`); "" builds the worker's


def ensure_artifact_bucket(s3: Any, bucket: str, region: str) -> bool:
    """Create the private artifact bucket when missing; True when it was created."""
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("403", "AccessDenied"):
            raise DeployError(f"artifact bucket {bucket} exists but belongs to someone else (or is not readable)") from None
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    return True


def template_url(bucket: str, key: str, region: str) -> str:
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"


def schema_key(body: bytes) -> str:
    return f"schema/{hashlib.sha256(body).hexdigest()}.json"


def check_schema_change(aws: Any, request: DeployRequest) -> None:
    """Before anything changes: the schema file must be valid and, when the stack already serves a
    model, able to continue its lineage (``autotraining.schema_change``) unless ``new_lineage``."""
    from autotraining.registry import Registry
    from autotraining.schema import SchemaError, load_schema
    from autotraining.schema_change import IncompatibleSchema, check_serving

    try:
        schema = load_schema(request.schema_file)
    except SchemaError as exc:
        raise DeployError(str(exc)) from None
    cfn = aws.client("cloudformation")
    if describe_stack(cfn, request.stack_name) is None:
        return  # a first deploy: no lineage to continue
    physical = {r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
                for page in cfn.get_paginator("list_stack_resources").paginate(StackName=request.stack_name)
                for r in page["StackResourceSummaries"]}
    if not physical.get("DataBucket") or not physical.get("ModelsTable"):
        return
    try:
        check_serving(aws.s3, physical["DataBucket"], Registry(aws.dynamodb, physical["ModelsTable"]), schema,
                      request.new_lineage)
    except IncompatibleSchema as exc:
        raise DeployError(str(exc)) from None


def upload_schema(aws: Any, request: DeployRequest, echo: Echo) -> str:
    """Put the schema file in the artifact bucket under its content hash; returns the key."""
    with open(request.schema_file, "rb") as f:
        body = f.read()
    key = schema_key(body)
    aws.s3.put_object(Bucket=request.artifact_bucket, Key=key, Body=body, ContentType="application/json",
                      ServerSideEncryption="AES256")
    echo(f"Uploaded schema {request.schema_file} as s3://{request.artifact_bucket}/{key}")
    return key


def _memory_warning(schema_file: str, template_parameters: Mapping[str, Any], given: Mapping[str, str]) -> str | None:
    """Whether the worker's round fits the instance (given values, else the template's defaults);
    the replay sample's width is the schema's encoded width (one-hot columns, missing indicators)."""
    from autotraining.encoding import Encoding
    from autotraining.schema import load_schema
    from autotraining_tools.costs import memory_warning

    def value(name: str) -> str:
        return str(given.get(name, template_parameters.get(name, {}).get("Default", "")))

    try:
        reservoir = int(value("ReservoirSize"))
    except ValueError:
        return None  # CloudFormation refuses a non-number with its own message
    return memory_warning(value("InstanceType"), reservoir, Encoding.from_schema(load_schema(schema_file)).width)


def worker_wheelhouse(aws: Any, request: DeployRequest, echo: Echo) -> wheelhouse.Wheelhouse:
    """The wheelhouse the instance installs (given, or built from the worker's pinned requirements),
    uploaded under its content hash; a dry run only says whether it would be uploaded."""
    if request.wheelhouse:
        house = wheelhouse.open_wheelhouse(Path(request.wheelhouse))
        echo(f"Using {house.describe()} from {request.wheelhouse}")
    else:
        house = wheelhouse.build_wheelhouse(echo=echo)
    if request.dry_run:
        there = wheelhouse.present(aws.s3, request.artifact_bucket, house.key)
        echo(f"{'Unchanged' if there else 'Dry run: would upload'} {house.describe()}")
    else:
        uploaded = wheelhouse.upload(aws.s3, request.artifact_bucket, house, echo)
        echo(f"{'Uploaded' if uploaded else 'Unchanged'} {house.describe()}")
    return house


def deploy(aws: Any, request: DeployRequest, echo: Echo = print) -> DeployResult:
    """Build and upload the artifacts and the template, then create or update the stack."""
    region = aws.settings.region
    doc = template.load_template()
    _parameters(doc.get("Parameters", {}), request.parameters, None)  # refuse unknown names before building
    if request.wheelhouse:  # a given wheelhouse is checked before anything is built or uploaded
        wheelhouse.open_wheelhouse(Path(request.wheelhouse))
    if request.schema_file:
        check_schema_change(aws, request)
    warning = _memory_warning(request.schema_file or aws.settings.schema_file, doc.get("Parameters", {}),
                              request.parameters)
    if warning:
        echo(f"WARNING: {warning}")
    if ensure_artifact_bucket(aws.s3, request.artifact_bucket, region):
        echo(f"Created artifact bucket {request.artifact_bucket}")
    code = bundle.lambda_bundle(with_dependencies=request.with_dependencies)
    uploaded = bundle.upload(aws.s3, request.artifact_bucket, code)
    echo(f"{'Uploaded' if uploaded else 'Unchanged'} {code.describe()}")
    worker = worker_wheelhouse(aws, request, echo)
    if request.emulator_cut:
        body, suffix = template.to_json(template.for_emulator(doc)), "json"
    else:
        body, suffix = template.TEMPLATE_PATH.read_text(), "yaml"
    key = f"templates/{hashlib.sha256(body.encode()).hexdigest()}.{suffix}"
    aws.s3.put_object(Bucket=request.artifact_bucket, Key=key, Body=body.encode(), ServerSideEncryption="AES256")
    parameters = {"CodeBucket": request.artifact_bucket, "CodeKey": code.key,
                  "WorkerArtifactKey": worker.key, **request.parameters}
    if request.schema_file:
        parameters["SchemaKey"] = upload_schema(aws, request, echo)
    if request.new_lineage:
        parameters["NewLineage"] = "true"
    return deploy_stack(aws.client("cloudformation"), request.stack_name,
                        template_url=template_url(request.artifact_bucket, key, region),
                        template_parameters=doc.get("Parameters", {}), parameters=parameters,
                        tags=request.tags, dry_run=request.dry_run, echo=echo, poll_seconds=request.poll_seconds)
