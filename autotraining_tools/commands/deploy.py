"""`autotraining deploy`: build the Lambda bundle and the worker's hashed wheelhouse, upload them under
content-addressed keys, and create or update the CloudFormation stack through a change set
(printed before it runs; ``--dry-run`` stops there). Prints the stack's outputs at the end.
"""
from __future__ import annotations

import argparse
import re

from autotraining.errors import UsageError

HELP = "deploy (or update) the whole system as one CloudFormation stack"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack-name", required=True,
                        help="CloudFormation stack name (also the prefix of the tables, queues and functions)")
    parser.add_argument("--region", default=None,
                        help="AWS region (None: AWS_REGION or AWS_DEFAULT_REGION, else us-east-1)")
    parser.add_argument("--endpoint-url", default=None,
                        help="endpoint to talk to instead of AWS, e.g. the emulator http://127.0.0.1:5000 (None: AWS)")
    parser.add_argument("--parameter", "-p", action="append", default=[], metavar="KEY=VALUE",
                        help="template parameter (repeatable), e.g. --parameter InstanceType=t3.medium; "
                             "parameters not given keep their previous value on an update")
    parser.add_argument("--tags", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="stack tags, copied by CloudFormation onto every resource that takes tags, e.g. "
                             "--tags team=ml cost-center=42 (a 'project=autotraining' tag is always added; "
                             "tags given once stay on later updates)")
    parser.add_argument("--artifact-bucket", default=None,
                        help="private bucket for the code artifacts and the template, created when missing "
                             "(None: <stack-name>-artifacts-<account>-<region>)")
    parser.add_argument("--schema", default=None, metavar="FILE",
                        help="schema file to ship with the stack (every Lambda and the worker read it); checked "
                             "first, and refused when it cannot continue the serving model's lineage")
    parser.add_argument("--new-lineage", action="store_true",
                        help="let an incompatible schema change start a fresh model lineage (old versions stay readable)")
    parser.add_argument("--wheelhouse", default=None, metavar="FILE",
                        help="a worker wheelhouse tar built earlier (worker/<sha256>.tar under .cache/wheelhouse/built/); "
                             "None: resolve the worker's pinned requirements for the instance and build it (cached)")
    parser.add_argument("--dry-run", action="store_true",
                        help="create and print the change set, then delete it without executing")
    parser.add_argument("--poll-seconds", type=float, default=5.0,
                        help="how often to poll CloudFormation for progress")


def _parameters(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9]+", key):
            raise UsageError(f"--parameter {item!r} is not KEY=VALUE")
        out[key] = value
    return out


def _tags(items: list[str]) -> dict[str, str]:
    from autotraining_tools.cli import UsageError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        # CloudFormation's limits: key 1-127 characters, value up to 255, and the aws: prefix is AWS's own
        if not sep or not 0 < len(key) <= 127 or len(value) > 255 or key.lower().startswith("aws:"):
            raise UsageError(f"--tags {item!r} is not KEY=VALUE (key 1-127 characters, not starting with "
                             "'aws:'; value up to 255)")
        out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    from autotraining.aws import Aws
    from autotraining.settings import Settings
    from autotraining_tools.deploy.bundle import BundleError
    from autotraining_tools.deploy.stack import DeployError, DeployRequest, deploy
    from autotraining_tools.deploy.template import TemplateError

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,63}", args.stack_name):
        raise UsageError(f"--stack-name {args.stack_name!r}: letters, digits and '-', starting with a letter")
    parameters = _parameters(args.parameter)
    tags = _tags(args.tags)
    overrides = {k: v for k, v in {"region": args.region, "endpoint_url": args.endpoint_url}.items() if v}
    try:
        settings = Settings.from_env(overrides)
        if not settings.region:
            raise UsageError("no AWS region: pass --region or set AWS_REGION")
        aws = Aws(settings)
        bucket = args.artifact_bucket
        if not bucket:
            account = aws.client("sts").get_caller_identity()["Account"]
            bucket = f"{args.stack_name.lower()}-artifacts-{account}-{settings.region}"[:63].rstrip("-")
        result = deploy(aws, DeployRequest(stack_name=args.stack_name, artifact_bucket=bucket,
                                           parameters=parameters, tags=tags, dry_run=args.dry_run,
                                           poll_seconds=args.poll_seconds, schema_file=args.schema or "",
                                           new_lineage=args.new_lineage,
                                           wheelhouse=args.wheelhouse or ""), echo=lambda s: print(s, flush=True))
    except NoCredentialsError:
        raise UsageError("no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)") from None
    except NoRegionError:
        raise UsageError("no AWS region: pass --region or set AWS_REGION") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise UsageError(f"{exc.operation_name}: {error.get('Code', '')}: {error.get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise UsageError(str(exc)) from None
    except (DeployError, BundleError, TemplateError) as exc:
        raise UsageError(str(exc)) from None
    if result.outputs:
        print("Outputs:")
        for key, value in sorted(result.outputs.items()):
            print(f"  {key} = {value}")
    return 0
