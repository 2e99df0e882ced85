"""A bad schema file stops `local`, `worker` and `deploy` at start with one line naming the file and feature."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from autotraining_tools.cli import main


@pytest.fixture
def bad_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"name": "bad", "labels": ["a", "b"],
                                "features": [{"name": "ok"}, {"name": "colour", "type": "string"}]}))
    monkeypatch.setenv("AUTOTRAINING_SCHEMA_FILE", str(path))
    monkeypatch.setenv("AUTOTRAINING_QUEUE_URL", "http://127.0.0.1:1/queue/none")
    return str(path)


@pytest.mark.parametrize("argv", [
    ["local", "--port", "0", "--emulator-port", "0"],
    ["worker", "--once"],
])
def test_local_and_worker_refuse_a_bad_schema_before_starting(argv: list[str], bad_schema: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{bad_schema}: feature 'colour': type must be one of" in err


@pytest.mark.slow
def test_deploy_refuses_a_bad_schema_before_uploading_anything(bad_schema: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from moto import mock_aws

    with mock_aws():
        code = main(["deploy", "--stack-name", "s1", "--region", "us-east-1", "--artifact-bucket", "arts-1",
                     "--schema", bad_schema])
        import boto3

        assert boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"] == []  # nothing changed
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and f"{bad_schema}: feature 'colour'" in err


def test_a_lambda_cold_start_refuses_a_bad_schema_in_one_line(bad_schema: str) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", "import handlers.upload"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"autotraining: bad schema: {bad_schema}: feature 'colour': type must be one of number, integer, "
        "boolean, category, not 'string'"]
