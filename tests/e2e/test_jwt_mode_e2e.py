"""The embedded stack in JWT mode with authorized reads: tokens from its issuer are the only way in."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

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
