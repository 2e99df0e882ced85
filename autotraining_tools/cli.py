"""The ``autotraining`` console command: one subcommand per job, each in ``autotraining_tools/commands/``.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``
and imports nothing heavy (TensorFlow, moto) at module level, so ``--help`` stays fast.
Errors a user can fix (``UsageError``) print a one-line message and exit 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from autotraining import __version__
from autotraining.errors import UsageError

COMMANDS = ("local", "worker", "generate", "upload", "predict", "status", "dashboard", "deploy", "redrive", "cost")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autotraining",
        description="Continuously retrain a model on streaming labeled data, on AWS or on one machine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"autotraining_tools.commands.{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._module.run(args) or 0)
    except UsageError as exc:
        print(f"autotraining {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"autotraining {args.command}: interrupted", file=sys.stderr)
        return 130

