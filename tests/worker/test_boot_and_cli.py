"""The instance side around the worker: the boot step's install-when-changed, the unit, the command line."""
from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from autotraining.cli import main as cli_main
from worker.boot import install_if_changed

UNIT = Path(__file__).parents[2] / "worker" / "systemd" / "autotraining-worker.service"


def artifact_bytes(marker: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = marker.encode()
        info = tarfile.TarInfo("src/constraints.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_boot_step_installs_only_when_the_artifact_key_changes(aws, tmp_path: Path) -> None:
    s3, bucket = aws.s3, aws.settings.bucket
    s3.put_object(Bucket=bucket, Key="worker/aaa.tar.gz", Body=artifact_bytes("one"))
    s3.put_object(Bucket=bucket, Key="worker/bbb.tar.gz", Body=artifact_bytes("two"))
    built: list[Path] = []

    def installer(release: Path, python: str) -> None:
        built.append(release)

    assert install_if_changed(s3, f"s3://{bucket}/worker/aaa.tar.gz", tmp_path, installer=installer)
    assert (tmp_path / "current" / "src" / "constraints.txt").read_text() == "one"
    assert not install_if_changed(s3, f"s3://{bucket}/worker/aaa.tar.gz", tmp_path, installer=installer)
    assert install_if_changed(s3, f"s3://{bucket}/worker/bbb.tar.gz", tmp_path, installer=installer)
    assert (tmp_path / "current" / "src" / "constraints.txt").read_text() == "two"
    assert [p.name for p in built] == ["aaa", "bbb"]
    assert (tmp_path / "installed-artifact").read_text().strip() == f"s3://{bucket}/worker/bbb.tar.gz"


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
    assert d["ExecStartPre"][0].endswith("-m worker.boot --root /opt/autotraining")
    assert d["ExecStart"] == ["/opt/autotraining/current/venv/bin/python -m worker"]


def test_worker_help_describes_every_option() -> None:
    out = subprocess.run([sys.executable, "-m", "worker", "--help"], capture_output=True, text=True, check=True).stdout
    for option in ("--idle-grace", "--max-segments-per-round", "--poll-seconds", "--once", "--no-stop",
                   "--visibility-seconds", "--epochs", "--batch-size", "--seed"):
        assert option in out
    import argparse

    from autotraining.commands import worker as command

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


@pytest.mark.parametrize("url", ["bucket/key", "s3://bucket"])
def test_boot_rejects_an_artifact_that_is_not_an_s3_url(url: str, tmp_path: Path) -> None:
    from worker.boot import parse_s3_url

    with pytest.raises(ValueError):
        parse_s3_url(url)
