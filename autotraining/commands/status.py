"""`autotraining status`: not built yet (owned by its issue)."""
from __future__ import annotations

import argparse

HELP = "status (not built yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from autotraining.cli import UsageError

    raise UsageError("'status' is not built yet")
