"""``Aws``'s clients are typed: mypy (as ``make lint`` runs it) refuses a misspelt operation or a
wrongly typed argument on them, with the service's own stubs (types-boto3, dev only)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CALLS = '''
from autotraining.aws import Aws
from autotraining.settings import Settings

aws = Aws(Settings())
aws.s3.put_object(Bucket="b", Key="k", Body=b"x")
aws.s3.put_objet(Bucket="b", Key="k")
aws.sqs.send_message(QueueUrl="u", MessageBody=3)
aws.dynamodb.batch_write_item(RequestItems={"t": [{"PutRequest": {"Item": {"id": {"S": "1"}}}}]})
aws.ec2.stop_instances(InstanceIds=[1])
'''


@pytest.mark.slow
def test_mypy_checks_the_operations_and_arguments_of_client_calls(tmp_path: Path) -> None:
    snippet = tmp_path / "calls.py"
    snippet.write_text(CALLS)
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "setup.cfg"),
                           "--cache-dir", str(tmp_path / "cache"), str(snippet)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert [int(line.split(":")[1]) for line in errors] == [7, 8, 10], done.stdout  # the three bad calls only
    assert '"S3Client" has no attribute "put_objet"' in errors[0]
    assert '"MessageBody" to "send_message" of "SQSClient"' in errors[1]
    assert 'List item 0 has incompatible type "int"; expected "str"' in errors[2]
