"""On the embedded stack: writes need a real SigV4 signature, hostile inputs get 4xx, a bad model never stops serving."""
from __future__ import annotations

import http.client
import json
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials

from autotraining.generator import generate
from autotraining.schema import load_schema
from autotraining_tools import cli
from autotraining_tools.local.stack import EmbeddedStack, stack_credentials
from autotraining_tools.signing import sign_headers

pytestmark = pytest.mark.e2e

STAND_IN_WORKER = [sys.executable, "-c", "import time; time.sleep(300)"]
SCHEMA = load_schema()
FORBIDDEN = {"message": "Forbidden"}


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(port=0, emulator_port=0, batch_window=0.5, boot_delay=0.5, schedule_seconds=3600.0,
                       worker_command=STAND_IN_WORKER) as running:
        yield running


def _records(n: int, prefix: str) -> list[dict[str, Any]]:
    return [r.to_log_dict(SCHEMA) for r in generate(SCHEMA, n, seed=5, id_prefix=prefix)]


def _send(stack: EmbeddedStack, method: str, target: str, body: bytes = b"", sign: Credentials | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, Any]:
    all_headers = {"content-type": "application/json", **(headers or {})}
    if sign is not None:
        all_headers.update(sign_headers(method, stack.api_url + target, body, sign, stack.settings.region, all_headers))
    split = urllib.parse.urlsplit(stack.api_url)
    conn = http.client.HTTPConnection(split.hostname or "", split.port, timeout=60)
    try:
        conn.request(method, target, body=body, headers=all_headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def _stored(stack: EmbeddedStack, record_id: str) -> bool:
    item = stack.aws.dynamodb.get_item(TableName=stack.settings.records_table, Key={"id": {"S": record_id}},
                                       ConsistentRead=True)
    return "Item" in item


def test_unsigned_or_badly_signed_post_records_is_403_and_writes_nothing(stack: EmbeddedStack) -> None:
    body = json.dumps(_records(1, "unsigned-")).encode()
    assert _send(stack, "POST", "/records", body) == (403, FORBIDDEN)
    status, answer = _send(stack, "POST", "/records", body, sign=Credentials("testing", "wrong"))
    assert status == 403 and answer["message"].startswith("The request signature we calculated does not match")
    assert not _stored(stack, "unsigned-00000000")


def test_signed_post_records_is_201(stack: EmbeddedStack) -> None:
    body = json.dumps(_records(3, "signed-")).encode()
    status, answer = _send(stack, "POST", "/records", body, sign=stack_credentials())
    assert status == 201 and answer["accepted"] == 3
    assert _stored(stack, "signed-00000002")


def test_reads_are_public_by_default(stack: EmbeddedStack) -> None:
    assert _send(stack, "GET", "/models")[0] == 200


def test_upload_command_signs_with_the_users_credential_chain(stack: EmbeddedStack, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "records.json"
    path.write_text(json.dumps(_records(4, "cli-signed-")))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert cli.main(["upload", str(path), "--api", stack.api_url]) == 0
    assert _stored(stack, "cli-signed-00000003")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-stack-secret")
    assert cli.main(["upload", str(path), "--api", stack.api_url]) == 2


GOOD = {k: v for k, v in _records(1, "x-")[0].items() if k not in ("id", "created")}


FIRST = SCHEMA.feature_names[0]
HOSTILE = [
    ("nested 1,000 deep", b"[" * 1000 + b"]" * 1000),
    ("a 400-digit number", f'[{{"{FIRST}": 1{"0" * 400}}}]'.encode()),
    ("1 MB of unknown keys", json.dumps([{**GOOD, **{f"k{i}": 0 for i in range(100_000)}}]).encode()),
    ("not UTF-8", b"\xff\xfe[]"),
]
RECORDS_ONLY = [  # /predict ignores id and created
    ("created = 10**130",
     json.dumps([{**GOOD, "id": "c130"}]).replace('"label"', '"created": 1' + "0" * 130 + ', "label"').encode()),
    ("id with a newline", json.dumps([{**GOOD, "id": "abc\n"}]).encode()),
]


@pytest.mark.parametrize("path, name, body", [("/records", *case) for case in HOSTILE + RECORDS_ONLY]
                         + [("/predict", *case) for case in HOSTILE])
def test_each_hostile_body_is_a_bounded_4xx(stack: EmbeddedStack, path: str, name: str, body: bytes) -> None:
    status, answer = _send(stack, "POST", path, body, sign=stack_credentials())
    assert 400 <= status < 500, (name, status, answer)
    assert len(json.dumps(answer)) < 32 * 1024, name


def test_invalid_base64_flagged_body_is_400() -> None:
    # The gateway flags only non-UTF-8 bodies as base64; a Lambda-shaped event checks the flag itself.
    from serving_fixtures import http_event

    from handlers import upload
    event = http_event("POST", "/records", "%%%not-base64%%%")
    event["isBase64Encoded"] = True
    assert upload.handler(event, None)["statusCode"] == 400


@pytest.mark.parametrize("target", ["/models?limit=%C2%B2", "/models?limit=1%0A", "/models/000001%0A/model.json"])
def test_hostile_query_or_path_is_4xx(stack: EmbeddedStack, target: str) -> None:
    assert 400 <= _send(stack, "GET", target)[0] < 500


def test_post_without_json_content_type_is_415(stack: EmbeddedStack) -> None:
    body = json.dumps(_records(1, "ctype-")).encode()
    assert _send(stack, "POST", "/records", body, sign=stack_credentials(), headers={"content-type": "text/plain"})[0] == 415


@pytest.mark.slow
def test_a_truncated_model_json_published_after_a_good_one_leaves_predict_answering_from_the_good_one(
        stack: EmbeddedStack) -> None:
    from serving_fixtures import export_model, publish

    from autotraining.artifacts import MODEL_JSON, model_key

    artifact = export_model(SCHEMA)
    good = publish(stack.aws, SCHEMA, artifact)
    rows = json.dumps([GOOD]).encode()
    status, answer = _send(stack, "POST", "/predict", rows)
    assert status == 200 and answer["version"] == good.version
    bad = publish(stack.aws, SCHEMA, artifact)
    whole = artifact.files[MODEL_JSON]
    stack.aws.s3.put_object(Bucket=stack.settings.bucket, Key=model_key(bad.version, MODEL_JSON),
                            Body=whole[: len(whole) // 3])
    import time
    time.sleep(stack.settings.model_cache_seconds + 0.5)
    for _ in range(3):
        status, answer = _send(stack, "POST", "/predict", rows)
        assert status == 200 and answer["version"] == good.version


def test_a_request_signed_by_curl_is_accepted_so_the_check_is_not_botocore_against_itself(
        stack: EmbeddedStack) -> None:
    import shutil
    import subprocess

    body = json.dumps(_records(2, "curl-signed-"))
    base = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", f"{stack.api_url}/records",
            "-H", "content-type: application/json", "-d", body, "--aws-sigv4", "aws:amz:us-east-1:execute-api"]
    assert shutil.which("curl")
    signed = subprocess.run([*base, "--user", "testing:testing"], capture_output=True, text=True, timeout=30)
    assert signed.stdout == "201" and _stored(stack, "curl-signed-00000001")
    wrong = subprocess.run([*base, "--user", "testing:other"], capture_output=True, text=True, timeout=30)
    assert wrong.stdout == "403"
