"""`deploy` warns when the worker's round (ReservoirSize × features) would not fit the instance type."""
from __future__ import annotations

import uuid

import pytest

from autotraining_tools.cli import main
from autotraining_tools.costs import memory_warning, worker_peak_mib

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")


def test_the_default_reservoir_fits_the_default_instance_and_a_huge_one_does_not() -> None:
    assert memory_warning("t3.small", 5000, 4) is None
    warning = memory_warning("t3.small", 20_000_000, 4)
    assert warning and "ReservoirSize 20,000,000 × 4 features" in warning and "t3.small" in warning
    assert memory_warning("t3.large", 20_000_000, 4) is None  # 8 GiB holds it
    assert worker_peak_mib(1_000_000, 40) > worker_peak_mib(1_000_000, 4)
    assert "cannot check" in (memory_warning("z9.mega", 5000, 4) or "")


def test_deploy_prints_the_warning_before_the_change_set(moto_server_url: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    base = ["deploy", "--endpoint-url", moto_server_url, "--region", "us-east-1", "--poll-seconds", "0.05",
            "--dry-run", "--stack-name", f"memtest-{uuid.uuid4().hex[:8]}"]
    assert main([*base, "--parameter", "ReservoirSize=20000000"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: ReservoirSize 20,000,000 × 4 features" in out
    assert out.index("WARNING") < out.index("Creating change set")
    assert main(base) == 0
    assert "WARNING" not in capsys.readouterr().out
