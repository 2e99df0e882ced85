"""The instance side around the worker: the unit, the command line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from autotraining_tools.cli import main as cli_main

UNIT = Path(__file__).parents[2] / "worker" / "systemd" / "autotraining-worker.service"


def unit_directives(text: str) -> dict[str, list[str]]:
    """systemd directives by name (a name may repeat, e.g. Environment=)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_systemd_unit_restarts_on_failure_with_legacy_keras_and_the_env_file() -> None:
    d = unit_directives(UNIT.read_text())
    assert d["Restart"] == ["on-failure"]
    assert d["EnvironmentFile"] == ["/etc/autotraining/worker.env"]
    assert "TF_USE_LEGACY_KERAS=1" in d["Environment"]
    assert "ExecStartPre" not in d  # one boot path: the user data installs, the unit only runs
    assert d["ExecStart"] == ["/opt/autotraining/current/venv/bin/python -m worker"]


def test_worker_help_describes_every_option() -> None:
    out = subprocess.run([sys.executable, "-m", "worker", "--help"], capture_output=True, text=True, check=True).stdout
    for option in ("--idle-grace", "--max-segments-per-round", "--poll-seconds", "--once", "--no-stop",
                   "--visibility-seconds", "--epochs", "--batch-size", "--seed"):
        assert option in out
    import argparse

    from autotraining_tools.commands import worker as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert all(a.help for a in parser._actions)


def test_worker_without_a_queue_is_a_usage_error(monkeypatch, capsys) -> None:
    monkeypatch.delenv("AUTOTRAINING_QUEUE_URL", raising=False)
    assert cli_main(["worker", "--once"]) == 2
    assert "error: no queue" in capsys.readouterr().err


def test_too_many_segments_per_round_is_a_usage_error(monkeypatch, capsys) -> None:
    monkeypatch.setenv("AUTOTRAINING_QUEUE_URL", "http://127.0.0.1:1/queue/x")
    assert cli_main(["worker", "--max-segments-per-round", "500"]) == 2
    assert "max segments per round must be 1..90" in capsys.readouterr().err
