"""`autotraining cost`: a monthly estimate per service from the dated price table, beside a managed
training job per round and the 2019 design; bad input is a one-line message."""
from __future__ import annotations

import pytest

from autotraining_tools import prices
from autotraining_tools.cli import main
from autotraining_tools.costs import Workload, estimate


def test_estimate_prints_every_service_the_date_and_the_alternatives(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--records-per-day", "1e6"]) == 0
    out = capsys.readouterr().out
    for service in ("API Gateway", "Lambda", "DynamoDB", "S3", "SQS", "EC2 (t3.small", "EBS"):
        assert service in out
    assert prices.AS_OF in out and "managed training job" in out and "2019 design" in out
    # 2,000 requests of 500 records a day for 30 days at the table's price per request
    assert f"${2000 * 30 * prices.HTTP_API_PER_REQUEST:>12,.2f}" in out.splitlines()[2]


def test_cost_grows_with_volume_and_the_2019_design_grows_fastest() -> None:
    small, large = estimate(Workload(records_per_day=10_000)), estimate(Workload(records_per_day=1_000_000))
    assert large.total > small.total
    assert large.design_2019_total / large.total > small.design_2019_total / small.total
    assert large.design_2019_total > 10 * large.total  # full retrains on all of history, per batch


def test_an_idle_month_costs_the_stopped_instance_volume_not_its_hours() -> None:
    idle = estimate(Workload(records_per_day=1, rounds_per_day=1, instance_type="t3.medium"))
    ec2 = next(v for k, v in idle.services.items() if k.startswith("EC2"))
    assert idle.instance_hours < 2 and ec2 < 0.1
    assert idle.services["EBS (20 GB gp3 root volume)"] == pytest.approx(20 * prices.EBS_GP3_PER_GB_MONTH)


def test_rounds_per_day_and_instance_type_change_the_instance_line() -> None:
    base = estimate(Workload(records_per_day=100_000, rounds_per_day=10))
    more = estimate(Workload(records_per_day=100_000, rounds_per_day=100))
    bigger = estimate(Workload(records_per_day=100_000, rounds_per_day=10, instance_type="t3.large"))
    assert more.instance_hours > base.instance_hours
    ec2 = [next(v for k, v in e.services.items() if k.startswith("EC2")) for e in (base, bigger)]
    assert ec2[1] == pytest.approx(ec2[0] * prices.EC2_PER_HOUR["t3.large"] / prices.EC2_PER_HOUR["t3.small"])


@pytest.mark.parametrize(("argv", "message"), [
    (["--records-per-day", "lots"], "--records-per-day must be a number, got 'lots'"),
    (["--records-per-day", "-5"], "--records-per-day must be a whole number"),
    (["--records-per-day", "1.5"], "--records-per-day must be a whole number"),
    (["--records-per-day", "1000", "--rounds-per-day", "0"], "--rounds-per-day must be a whole number from 1"),
    (["--records-per-day", "1000", "--instance-type", "p5.48xlarge"], "has no price in autotraining_tools/prices.py"),
])
def test_bad_input_is_a_one_line_message(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("autotraining cost: error: ") and message in err and "Traceback" not in err


def test_help_names_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["cost", "--help"])
    out = capsys.readouterr().out
    for flag in ("--records-per-day", "--rounds-per-day", "--instance-type"):
        assert flag in out
