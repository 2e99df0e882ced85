"""The embedded stack in JWT mode with authorized reads: tokens from its issuer are the only way in."""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from e2e_fixtures import running_cli

from autotraining.generator import generate
from autotraining.schema import load_schema
from autotraining_tools.local.stack import EmbeddedStack

pytestmark = pytest.mark.e2e


def _call(url: str, method: str, body: Any = None, token: str | None = None) -> int:
    headers = {"content-type": "application/json", **({"authorization": f"Bearer {token}"} if token else {})}
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=headers),
                                    timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_jwt_mode_with_authorized_reads_needs_a_token_from_the_issuer_except_for_preflight() -> None:
    schema = load_schema()
    rows = [r.to_log_dict(schema) for r in generate(schema, 2, seed=9, id_prefix="jwt-")]
    with EmbeddedStack(auth="jwt", read_auth="authorized", run_agent=False, run_poller=False,
                       run_scheduler=False) as stack:
        token = stack.issuer.issue("producer-1")
        api = stack.api_url
        assert _call(f"{api}/records", "POST", rows) == 401
        assert _call(f"{api}/records", "POST", rows, token=stack.issuer.issue(ttl_seconds=-120)) == 401
        assert _call(f"{api}/records", "POST", rows, token=token) == 201
        assert _call(f"{api}/models", "GET") == 401
        assert _call(f"{api}/models", "GET", token=token) == 200
        assert _call(f"{api}/models/latest/model.json", "OPTIONS") == 204


@pytest.mark.slow
def test_local_in_jwt_mode_writes_a_token_the_client_commands_and_the_dashboard_proxy_use(tmp_path: Path) -> None:
    from autotraining_tools.cli import main
    from autotraining_tools.client import ApiClient
    from autotraining_tools.dashboard_proxy import DashboardProxy

    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOTRAINING_") and k != "AWS_ENDPOINT_URL"}
    with running_cli(["local", "--port", "0", "--emulator-port", "0", "--boot-delay", "60", "--write-auth", "jwt",
                      "--read-auth", "same"], env) as (proc, stderr):
        printed: dict[str, str] = {}
        assert proc.stdout is not None
        while "Token" not in printed:
            line = proc.stdout.readline()
            assert line, f"local exited early: {''.join(stderr)}"
            name, _, value = line.strip().partition(": ")
            printed[name] = value
        api, token_file = printed["API"], Path(printed["Token"])
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        assert _call(f"{api}/models", "GET") == 401
        assert _call(f"{api}/models", "GET", token=token_file.read_text().strip()) == 200
        # the client commands read the same file
        assert main(["status", "--api", api, "--token-file", str(token_file), "--format", "json"]) == 0
        # and so does the dashboard's proxy: the page and the history through it, no token in the browser
        proxy = DashboardProxy(ApiClient(api, token=token_file.read_text().strip(), credentials=None), port=0).start()
        try:
            assert _call(f"{proxy.url}/models", "GET") == 200
            assert _call(f"{proxy.url}/", "GET") == 200
            assert _call(f"{proxy.url}/predict", "POST", [{}]) == 400  # the stack's own answer, passed through
        finally:
            proxy.stop()
        refused = DashboardProxy(ApiClient(api, token="not.a.jwt", credentials=None), port=0).start()
        try:
            assert _call(f"{refused.url}/models", "GET") == 401  # the stack's refusal reaches the browser
        finally:
            refused.stop()
        assert any(f"--token-file {token_file}" in line and "autotraining dashboard" in line for line in stderr)
    assert not token_file.exists()  # the temporary token folder goes with the stack
