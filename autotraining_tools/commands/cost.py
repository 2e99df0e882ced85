"""`autotraining cost`: a monthly cost estimate per AWS service for a workload, beside the same
workload run as a managed training job per round and as the 2019 design (a fresh instance and a
full retrain per stream batch). Prices come from one dated table (``autotraining_tools/prices.py``);
round time from this project's benchmarks. An estimate, not a bill: free tiers, data transfer
and CloudWatch are left out.
"""
from __future__ import annotations

import argparse

HELP = "estimate the monthly AWS cost of a workload (per service, and beside two alternatives)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--records-per-day", required=True, metavar="N",
                        help="labeled records uploaded per day, e.g. 1000000 or 1e6")
    parser.add_argument("--rounds-per-day", default=None, metavar="R",
                        help="training rounds per day (None: one per 5-minute schedule tick with work, "
                             "more when the volume needs it)")
    parser.add_argument("--instance-type", default="t3.small", metavar="T",
                        help="worker instance type (the template's InstanceType)")
    parser.add_argument("--reservoir", default="5000", metavar="ROWS", help="the template's ReservoirSize")
    parser.add_argument("--retained-days", default="30", metavar="DAYS",
                        help="days of records kept in the table and the log (the 2019 design retrains on all of them)")


def _whole(flag: str, text: str | None, minimum: int) -> int | None:
    from autotraining_tools.cli import UsageError

    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{flag} must be a number, got {text!r}") from None
    if not value.is_integer() or value < minimum or value > 1e12:
        raise UsageError(f"{flag} must be a whole number from {minimum} to 10^12, got {text!r}")
    return int(value)


def run(args: argparse.Namespace) -> int:
    from autotraining_tools import prices
    from autotraining_tools.cli import UsageError
    from autotraining_tools.costs import Workload, estimate, format_estimate

    if args.instance_type not in prices.EC2_PER_HOUR:
        raise UsageError(f"--instance-type {args.instance_type!r} has no price in autotraining_tools/prices.py; "
                         f"known: {', '.join(prices.EC2_PER_HOUR)}")
    workload = Workload(records_per_day=_whole("--records-per-day", args.records_per_day, 1) or 1,
                        rounds_per_day=_whole("--rounds-per-day", args.rounds_per_day, 1),
                        instance_type=args.instance_type,
                        reservoir=_whole("--reservoir", args.reservoir, 0) or 0,
                        retained_days=_whole("--retained-days", args.retained_days, 1) or 1)
    print(format_estimate(estimate(workload)), end="")
    return 0
