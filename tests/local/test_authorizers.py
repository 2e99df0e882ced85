"""The embedded gateway's authorizers check SigV4 and JWTs for real, with API Gateway's answers."""
from __future__ import annotations

import datetime as dt
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials

from autotraining_tools.local.authorizers import (
    BAD_SIGNATURE,
    BAD_TOKEN,
    FORBIDDEN,
    AccessPolicy,
    Denied,
    IncomingRequest,
    LocalIssuer,
    SigV4Authorizer,
)
from autotraining_tools.local.gateway import Gateway
from autotraining_tools.signing import sign_headers

HOST = "127.0.0.1:8080"
URL = f"http://{HOST}/records"
BODY = b'[{"temp": 70}]'
GOOD = Credentials("AKIDLOCAL", "local-secret")
SIGV4 = SigV4Authorizer({"AKIDLOCAL": "local-secret"}, "us-east-1")


def _incoming(headers: dict[str, str], body: bytes = BODY, target: str = "/records") -> IncomingRequest:
    return IncomingRequest("POST", target, {"host": HOST, "content-type": "application/json", **headers}, body)


def _signed(creds: Credentials = GOOD, region: str = "us-east-1", url: str = URL, body: bytes = BODY) -> dict[str, str]:
    return sign_headers("POST", url, body, creds, region, {"content-type": "application/json"})


def _denial(authorizer: Any, request: IncomingRequest) -> tuple[int, str]:
    with pytest.raises(Denied) as info:
        authorizer.authorize(request)
    return info.value.status, info.value.message


def test_sigv4_signed_request_is_allowed_with_its_identity() -> None:
    identity = SIGV4.authorize(_incoming(_signed()))
    assert identity["iam"]["accessKey"] == "AKIDLOCAL"


def test_sigv4_signed_request_with_query_string_is_allowed() -> None:
    headers = sign_headers("POST", URL + "?b=2&a=1", BODY, GOOD, "us-east-1", {"content-type": "application/json"})
    assert SIGV4.authorize(_incoming(headers, target="/records?b=2&a=1"))["iam"]["accessKey"] == "AKIDLOCAL"


def test_sigv4_unsigned_request_is_forbidden() -> None:
    assert _denial(SIGV4, _incoming({})) == (403, FORBIDDEN)


def test_sigv4_wrong_secret_answers_signature_mismatch() -> None:
    assert _denial(SIGV4, _incoming(_signed(Credentials("AKIDLOCAL", "guessed")))) == (403, BAD_SIGNATURE)


def test_sigv4_unknown_access_key_answers_invalid_token() -> None:
    assert _denial(SIGV4, _incoming(_signed(Credentials("AKIDOTHER", "local-secret")))) == (403, BAD_TOKEN)


def test_sigv4_body_swapped_after_signing_is_refused() -> None:
    headers = _signed()
    assert _denial(SIGV4, _incoming(headers, body=b'[{"temp": 99}]')) == (403, BAD_SIGNATURE)
    headers.pop("x-amz-content-sha256")  # without the hash header the signature itself must not match
    assert _denial(SIGV4, _incoming(headers, body=b'[{"temp": 99}]')) == (403, BAD_SIGNATURE)


def test_sigv4_other_region_or_path_is_refused() -> None:
    assert _denial(SIGV4, _incoming(_signed(region="eu-west-1")))[1] == BAD_SIGNATURE
    assert _denial(SIGV4, _incoming(_signed(), target="/predict"))[1] == BAD_SIGNATURE


def test_sigv4_expired_signature_says_so() -> None:
    later = SigV4Authorizer(SIGV4.credentials, "us-east-1",
                            now=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6))
    status, message = _denial(later, _incoming(_signed()))
    assert status == 403 and message.startswith("Signature expired: ") and "- 5 min." in message


def test_sigv4_malformed_authorization_is_forbidden() -> None:
    assert _denial(SIGV4, _incoming({"authorization": "AWS4-HMAC-SHA256 nonsense", "x-amz-date": "x"}))[0] == 403


def test_jwt_from_the_issuer_is_allowed_and_others_are_401() -> None:
    issuer = LocalIssuer()
    authorizer = issuer.authorizer()
    claims = authorizer.authorize(_incoming({"authorization": f"Bearer {issuer.issue('alice')}"}))
    assert claims["jwt"]["claims"]["sub"] == "alice"
    for bad in ("", "Bearer ", f"Bearer {issuer.issue(ttl_seconds=-60)}", f"Bearer {issuer.issue(audience='x')}",
                f"Bearer {LocalIssuer().issue()}", f"Basic {issuer.issue()}"):
        assert _denial(authorizer, _incoming({"authorization": bad} if bad else {})) == (401, "Unauthorized")


def test_access_policy_guards_writes_and_leaves_preflight_public() -> None:
    policy = AccessPolicy(writes=SIGV4)
    assert policy.authorizer_for("POST", "/records") is SIGV4
    assert policy.authorizer_for("POST", "/predict") is None
    authorized_reads = AccessPolicy(writes=SIGV4, reads=SIGV4)
    assert authorized_reads.authorizer_for("GET", "/models") is SIGV4
    assert authorized_reads.authorizer_for("OPTIONS", "/models/{version}/{file}") is None


@pytest.fixture
def guarded() -> Iterator[tuple[Gateway, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 201, "body": "{}"}

    gw = Gateway("127.0.0.1", 0, resolver=lambda module: handler,
                 access=AccessPolicy(writes=SigV4Authorizer({"AKIDLOCAL": "local-secret"}, "us-east-1"))).start()
    yield gw, seen
    gw.stop()


def _post(gw: Gateway, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    host, port = gw.server_address[:2]
    conn = http.client.HTTPConnection(str(host), port, timeout=10)
    try:
        conn.request("POST", path, body=BODY, headers={"content-type": "application/json", **headers})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def test_gateway_refuses_unsigned_write_before_the_handler_and_passes_signed_identity(
        guarded: tuple[Gateway, list[dict[str, Any]]]) -> None:
    gw, seen = guarded
    assert _post(gw, "/records", {}) == (403, {"message": FORBIDDEN})
    assert seen == []
    status, _ = _post(gw, "/records", sign_headers("POST", f"{gw.url}/records", BODY, GOOD, "us-east-1",
                                                   {"content-type": "application/json"}))
    assert status == 201
    assert seen[0]["requestContext"]["authorizer"]["iam"]["accessKey"] == "AKIDLOCAL"
    assert _post(gw, "/predict", {})[0] == 201  # reads stay public by default
