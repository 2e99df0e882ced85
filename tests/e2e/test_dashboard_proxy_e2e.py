"""`autotraining dashboard`'s proxy against the real embedded stack with authorized reads (IAM mode).

The stack's gateway verifies SigV4 for real, so every 200 here is a request the proxy signed
correctly and every 403 one the stack refused. One stack for the module, one published model
(``serving_fixtures``), one proxy signing with the stack's credentials.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.credentials import Credentials
from e2e_fixtures import call_status, running_cli

from autotraining.schema import load_schema
from autotraining_tools.client import ApiClient
from autotraining_tools.dashboard_proxy import DashboardProxy
from autotraining_tools.local.authorizers import BAD_SIGNATURE, BAD_TOKEN
from autotraining_tools.local.stack import EmbeddedStack, stack_credentials

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def request(url: str, method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One plain (unsigned) HTTP request, redirects not followed: status, lower-cased headers, body."""
    split = urlsplit(url)
    conn = http.client.HTTPConnection(split.netloc, timeout=30)
    try:
        target = split.path + (f"?{split.query}" if split.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


class CountingGateway:
    """Counts the requests that reach the stack's gateway (the real one, called through)."""

    def __init__(self, gateway: Any) -> None:
        self.paths: list[str] = []
        self._inner = gateway.dispatch

        def dispatch(method: str, target: str, *args: Any, **kwargs: Any) -> Any:
            self.paths.append(f"{method} {target}")
            return self._inner(method, target, *args, **kwargs)

        gateway.dispatch = dispatch


@pytest.fixture(scope="module")
def stack() -> Iterator[Any]:
    from serving_fixtures import export_model, publish

    with EmbeddedStack(port=0, emulator_port=0, run_agent=False, run_scheduler=False, run_poller=False,
                       read_auth="authorized") as s:
        schema = load_schema(s.settings.schema_file)
        s.artifact = export_model(schema)
        s.model = publish(s.aws, schema, s.artifact, records_seen=1200, new_records=1200)
        s.counter = CountingGateway(s.gateway)
        yield s


def start_proxy(api_url: str, credentials: Any = None, token: str | None = None) -> DashboardProxy:
    return DashboardProxy(ApiClient(api_url, credentials=credentials, token=token, region="us-east-1"),
                          port=0, timeout=10).start()


@pytest.fixture(scope="module")
def proxy(stack: Any) -> Iterator[DashboardProxy]:
    p = start_proxy(stack.api_url, credentials=stack_credentials())
    yield p
    p.stop()


def test_an_unsigned_read_is_refused_by_the_stack_and_answered_through_the_proxy(stack: Any,
                                                                                 proxy: DashboardProxy) -> None:
    status, _, body = request(f"{stack.api_url}/models")
    assert status == 403 and json.loads(body) == {"message": "Forbidden"}
    status, _, body = request(f"{proxy.url}/models?limit=5")
    assert status == 200, body
    versions = json.loads(body)["versions"]
    assert [v["version"] for v in versions] == [stack.model.version]
    assert versions[0]["records_seen"] == 1200
    # the page and its assets too (the browser's first navigation)
    status, headers, page = request(f"{proxy.url}/")
    assert status == 200 and headers["content-type"].startswith("text/html") and b"static/app.js" in page
    status, headers, _ = request(f"{proxy.url}/static/app.js", headers={"accept-encoding": "gzip"})
    assert status == 200 and "javascript" in headers["content-type"] and headers.get("content-encoding") == "gzip"


def test_predict_through_the_proxy_answers_as_a_signed_request_does(stack: Any, proxy: DashboardProxy) -> None:
    schema = load_schema(stack.settings.schema_file)
    rows = [{f.name: (f.typical or (f.min, f.max))[0] for f in schema.features}]
    body = json.dumps(rows).encode()
    assert request(f"{stack.api_url}/predict", "POST", body, {"content-type": "application/json"})[0] == 403
    status, _, through = request(f"{proxy.url}/predict", "POST", body, {"content-type": "application/json"})
    assert status == 200, through
    direct_status, direct = call_status(f"{stack.api_url}/predict", "POST", rows)
    assert direct_status == 200
    assert json.loads(through) == direct
    assert json.loads(through)["version"] == stack.model.version
    # the stack's own 4xx come back as they are (here: no JSON content-type)
    status, _, refused = request(f"{proxy.url}/predict", "POST", body, {"content-type": "text/plain"})
    assert status == 415 and "content-type" in json.loads(refused)["message"]


def test_a_model_file_is_a_redirect_to_a_presigned_url_that_downloads(stack: Any, proxy: DashboardProxy) -> None:
    status, headers, _ = request(f"{proxy.url}/models/latest/model.json")
    assert status == 302, headers
    location = headers["location"]
    assert urlsplit(location).netloc == urlsplit(stack.emulator_url).netloc  # S3, not the proxy
    assert "Signature" in location or "X-Amz-Signature" in location
    status, _, data = request(location)  # unsigned: the presigned URL is the authorization
    assert status == 200 and data == stack.artifact.files["model.json"]
    assert "modelTopology" in json.loads(data)


def test_a_path_that_is_not_a_read_route_is_answered_locally_and_never_forwarded(stack: Any,
                                                                                proxy: DashboardProxy) -> None:
    before = len(stack.counter.paths)
    for method, path, want in (("GET", "/nope", 404), ("GET", "/models/latest/model.json/x", 404),
                               ("GET", "/records", 404), ("DELETE", "/models", 404), ("GET", "/static/", 404),
                               ("POST", "/records", 403)):
        status, _, body = request(f"{proxy.url}{path}", method, b"[]" if method == "POST" else None,
                                  {"content-type": "application/json"})
        assert status == want, (method, path, status, body)
        assert "message" in json.loads(body)
    assert stack.counter.paths[before:] == []
    request(f"{proxy.url}/models")
    assert stack.counter.paths[before:] == ["GET /models"]  # the counter does see forwarded requests


def test_another_site_cannot_borrow_the_proxy(stack: Any, proxy: DashboardProxy) -> None:
    port = urlsplit(proxy.url).port
    assert request(f"{proxy.url}/models", headers={"host": f"evil.example:{port}"})[0] == 403  # DNS rebinding
    assert request(f"{proxy.url}/models", headers={"origin": "http://evil.example"})[0] == 403
    status, headers, _ = request(f"{proxy.url}/models", headers={"origin": proxy.url})
    assert status == 200
    # the stack allows any origin on /models; through the proxy no CORS header is passed on
    assert call_status(f"{stack.api_url}/models")[0] == 200
    assert not any(name.startswith("access-control-") for name in headers)


@pytest.mark.parametrize("credentials, message", [(Credentials("testing", "wrong"), BAD_SIGNATURE),
                                                  (Credentials("AKIDUNKNOWN", "testing"), BAD_TOKEN)])
def test_the_stacks_403_for_wrong_credentials_reaches_the_browser(stack: Any, credentials: Credentials,
                                                                   message: str) -> None:
    proxy = start_proxy(stack.api_url, credentials=credentials)
    try:
        status, headers, body = request(f"{proxy.url}/models")
        assert status == 403 and json.loads(body) == {"message": message}
        assert headers["content-type"] == "application/json"
    finally:
        proxy.stop()


def test_credentials_that_can_no_longer_be_refreshed_get_the_stacks_403(stack: Any) -> None:
    from botocore.credentials import RefreshableCredentials
    from botocore.exceptions import TokenRetrievalError

    def refresh() -> Any:
        raise TokenRetrievalError(provider="sso", error_msg="the SSO session has expired")

    expired = RefreshableCredentials.create_from_metadata(
        {"access_key": "testing", "secret_key": "testing", "token": "session", "expiry_time": "2000-01-01T00:00:00Z"},
        refresh_using=refresh, method="sso")
    proxy = start_proxy(stack.api_url, credentials=expired)
    try:
        status, _, body = request(f"{proxy.url}/models")
        assert status == 403 and json.loads(body) == {"message": "Forbidden"}  # sent unsigned; the stack refuses
    finally:
        proxy.stop()


def test_an_unreachable_stack_is_a_502_naming_it() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    proxy = start_proxy(closed, credentials=stack_credentials())
    try:
        status, _, body = request(f"{proxy.url}/models")
        assert status == 502 and closed in json.loads(body)["message"]
    finally:
        proxy.stop()


def test_the_dashboard_command_prints_its_url_opens_it_forwards_signed_and_stops_on_sigterm(stack: Any,
                                                                                           tmp_path: Path) -> None:
    # The stack's credentials are in this process's environment (EmbeddedStack sets them): the
    # command finds them through the ordinary AWS credential chain, as it would a user's.
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"  # what $BROWSER names is what `webbrowser` runs with the URL
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > {opened}\n')
    browser.chmod(0o755)
    env = {**os.environ, "AUTOTRAINING_LOG_FORMAT": "json", "BROWSER": str(browser)}
    with running_cli(["dashboard", "--api", stack.api_url, "--port", "0", "--open"], env) as (proc, stderr):
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        name, _, url = line.partition(": ")
        assert name == "Dashboard" and url.startswith("http://127.0.0.1:"), (line, stderr)
        status, _, body = request(f"{url}models")
        assert status == 200 and json.loads(body)["versions"][0]["version"] == stack.model.version
        deadline = time.monotonic() + 10
        while not (opened.exists() and opened.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert opened.read_text() == url
