"""``python -m worker``: the instance's entry point (systemd unit, embedded instance agent).

Same options as ``autotraining worker`` (see ``--help``); settings come from the environment
(``AUTOTRAINING_*``, ``AWS_*``).
"""
from __future__ import annotations

import argparse
import sys

import worker  # noqa: F401  (sets TF_USE_LEGACY_KERAS before anything imports TensorFlow)
from autotraining.commands import worker as command
from autotraining.errors import UsageError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description=command.__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    command.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return command.run(args)
    except UsageError as exc:
        print(f"worker: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
