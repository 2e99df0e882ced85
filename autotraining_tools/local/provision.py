"""Create the stack's resources in an emulator from the CloudFormation template; return Settings.

The embedded run's resources come from ``deploy/cloudformation/template.yaml``, deployed into
moto's CloudFormation exactly like ``autotraining deploy`` does on AWS: the code artifacts are
built and uploaded to an artifact bucket first (the Lambda bundle without its vendored numpy:
the emulator stores Lambda code but never runs it), then the stack is created and ``Settings``
are built from its outputs. Only what moto cannot run is left out (``template.for_emulator``:
event source mappings, alarms, the HTTP API and whatever refers to them); the embedded poller,
gateway and scheduler stand in for them. The instance is stopped after creation: on AWS the
worker stops itself when idle, which is how it ends up normally stopped.

``create_stack`` is used rather than a change set because moto fills in a stack's outputs only
on ``create_stack``; the change-set flow itself is tested in tests/deploy/test_stack_moto.py.
"""
from __future__ import annotations

import functools
import warnings
from pathlib import Path

from autotraining.aws import Aws
from autotraining.settings import Settings
from autotraining_tools.deploy import bundle, template
from autotraining_tools.deploy.stack import DeployError, ensure_artifact_bucket

QUEUE_VISIBILITY_SECONDS = 120


@functools.lru_cache(maxsize=4)
def _emulator_template(path: Path, mtime_ns: int) -> str:
    return template.to_json(template.for_emulator(template.load_template(path)))


def emulator_template_body(path: Path = template.TEMPLATE_PATH) -> str:
    """The template moto gets, as JSON (cached while the file is unchanged)."""
    return _emulator_template(path, path.stat().st_mtime_ns)


def provision(aws: Aws, prefix: str = "autotraining") -> Settings:
    """Deploy the template into the emulator as stack ``prefix``; return settings naming its resources."""
    s = aws.settings
    artifact_bucket = f"{prefix}-artifacts-{s.region}"
    ensure_artifact_bucket(aws.s3, artifact_bucket, s.region)
    code = bundle.lambda_bundle(with_dependencies=False)
    worker = bundle.worker_artifact()
    for artifact in (code, worker):
        bundle.upload(aws.s3, artifact_bucket, artifact)
    parameters = {"CodeBucket": artifact_bucket, "CodeKey": code.key, "WorkerArtifactKey": worker.key,
                  "QueueVisibilityTimeout": str(QUEUE_VISIBILITY_SECONDS)}
    cfn = aws.client("cloudformation")
    with warnings.catch_warnings():  # moto warns about each type it skips (bucket policy, metric filter)
        warnings.simplefilter("ignore")
        cfn.create_stack(StackName=prefix, TemplateBody=emulator_template_body(), Capabilities=["CAPABILITY_IAM"],
                         Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    stack = cfn.describe_stacks(StackName=prefix)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise DeployError(f"emulator stack {prefix} is {stack['StackStatus']}: {stack.get('StackStatusReason', '')}")
    settings = template.settings_from_outputs({o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}, s)
    aws.ec2.stop_instances(InstanceIds=[settings.instance_id])
    return settings
