"""`autotraining redrive`: move dead-lettered log segments back to the pending queue, after a fix.

A segment lands in the dead-letter queue when the worker could not parse or validate it three
times. Once the cause is fixed (a schema change, a repaired object), this sends each such
message back to the pending queue as a fresh one and deletes it from the dead-letter queue.
``--dry-run`` only lists them. Queue URLs come from ``--stack`` (the stack's outputs) or the
environment (AUTOTRAINING_QUEUE_URL, AUTOTRAINING_DLQ_URL).
"""
from __future__ import annotations

import argparse

from autotraining.errors import UsageError

HELP = "move dead-lettered log segments back to the pending queue (after a fix; --dry-run lists them)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="list the segments that would move; move nothing")
    parser.add_argument("--max", type=int, default=None, metavar="N", help="move at most N messages (default: all)")
    parser.add_argument("--stack", default=None, metavar="NAME",
                        help="read the queue URLs from this CloudFormation stack's outputs (default: the environment)")


def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from autotraining.aws import Aws
    from autotraining.settings import Settings, SettingsError
    from autotraining_tools.redrive import redrive

    if args.max is not None and args.max < 1:
        raise UsageError("--max must be at least 1")
    try:
        settings = Settings.from_env()
        aws = Aws(settings)
        if args.stack:
            from autotraining_tools.deploy.stack import describe_stack, stack_outputs
            from autotraining_tools.deploy.template import settings_from_outputs

            stack = describe_stack(aws.client("cloudformation"), args.stack)
            if stack is None:
                raise UsageError(f"no stack named {args.stack!r} in {settings.region}")
            settings = settings_from_outputs(stack_outputs(stack), settings)
            aws = Aws(settings)
        if not settings.dlq_url or not settings.queue_url:
            raise UsageError("no queues: give --stack NAME or set AUTOTRAINING_QUEUE_URL and AUTOTRAINING_DLQ_URL")
        result = redrive(aws.sqs, settings.dlq_url, settings.queue_url, dry_run=args.dry_run, limit=args.max)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    except (ClientError, BotoCoreError) as exc:
        raise UsageError(f"cannot redrive: {exc}") from None
    verb = "would move" if result.dry_run else "moved"
    for key in result.segments:
        print(f"{verb} {key}")
    print(f"{verb} {len(result.segments)} segment message(s) to the pending queue"
          + (f"; left {len(result.not_segments)} message(s) that name no segment" if result.not_segments else ""))
    return 0
