"""`autotraining worker`: drain the pending queue, train and publish rounds, stop the own instance when idle.

Settings come from the environment (AUTOTRAINING_*; the instance's /etc/autotraining/worker.env).
Each round: read the queued segments, skip consumed ones, dedupe records, test-then-train on
new records + the reservoir sample, gate, publish, commit, then delete the round's messages.
"""
from __future__ import annotations

import argparse

HELP = "run the training worker (the instance side)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--idle-grace", type=float, default=None, metavar="SECONDS",
                        help="stop the own instance after the queue has been empty this long "
                             "(default: AUTOTRAINING_IDLE_GRACE)")
    parser.add_argument("--max-segments-per-round", type=int, default=50, metavar="N",
                        help="most log segments (queue messages with distinct keys) one round consumes (1-90)")
    parser.add_argument("--poll-seconds", type=float, default=5.0, metavar="SECONDS",
                        help="long-poll wait of each receive on the pending queue (0-20)")
    parser.add_argument("--once", action="store_true",
                        help="exit 0 as soon as the queue is drained, without stopping the instance")
    parser.add_argument("--no-stop", action="store_true",
                        help="when idle, exit without stopping the instance")
    parser.add_argument("--visibility-seconds", type=int, default=120, metavar="SECONDS",
                        help="visibility timeout the worker keeps on a round's messages (renewed while it runs)")
    parser.add_argument("--epochs", type=int, default=12, metavar="N", help="training epochs per round")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N", help="training mini-batch size")
    parser.add_argument("--seed", type=int, default=0, help="seed of weight initialisation and shuffling")
    parser.add_argument("--new-lineage", action="store_true",
                        help="let a schema that cannot continue the serving model's lineage start a fresh one "
                             "(default: $AUTOTRAINING_NEW_LINEAGE, else refuse to start)")


def run(args: argparse.Namespace) -> int:
    from worker.cli import run as run_worker

    return run_worker(args)
