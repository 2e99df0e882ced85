"""Entry of ``autotraining worker`` and ``python -m worker``: options → ``WorkerOptions`` → ``Worker.run``.

The options themselves are declared once, in ``autotraining_tools.commands.worker.add_arguments``
(light, no TensorFlow), and shared by both entry points.
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from autotraining.aws import Aws
from autotraining.errors import UsageError
from autotraining.logs import configure
from autotraining.settings import Settings, SettingsError

if TYPE_CHECKING:  # the real import is deferred: it loads TensorFlow
    from worker.loop import WorkerOptions


def options_from(args: argparse.Namespace, settings: Settings) -> WorkerOptions:
    from worker.loop import WorkerOptions
    from worker.trainer import TrainConfig

    return WorkerOptions(
        idle_grace=settings.idle_grace if args.idle_grace is None else args.idle_grace,
        max_segments=args.max_segments_per_round, poll_seconds=args.poll_seconds, once=args.once,
        stop_instance=not args.no_stop, visibility_seconds=args.visibility_seconds,
        config=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed))


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env({"new_lineage": True} if getattr(args, "new_lineage", False) else None)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    if not settings.queue_url:
        raise UsageError("no queue: set AUTOTRAINING_QUEUE_URL (the worker's environment file sets it)")
    try:
        options = options_from(args, settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    aws = Aws(settings)
    check_schema(aws)
    configure(settings.log_format)
    from worker.loop import Worker

    return Worker(aws, options).run()


def check_schema(aws: Aws) -> None:
    """Refuse to start on a bad schema file or one that cannot continue the serving model's lineage."""
    from autotraining.registry import Registry
    from autotraining.schema import SchemaError, load_schema
    from autotraining.schema_change import IncompatibleSchema, check_serving

    s = aws.settings
    try:
        schema = load_schema(s.schema_file)
        check_serving(aws.s3, s.bucket, Registry(aws.dynamodb, s.models_table), schema, s.new_lineage)
    except (SchemaError, IncompatibleSchema) as exc:
        raise UsageError(str(exc)) from None
