"""GET /models/{version|latest}/{file}: 302 to a presigned URL, every refused path refused before S3; CORS; history."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from serving_fixtures import commit_rejected, export_model, http_event, publish

from autotraining.api import CORS_HEADERS
from autotraining.aws import Aws
from autotraining.serving import ModelProxy
from autotraining.settings import Settings
from autotraining_tools.local.gateway import Gateway
from handlers import model_proxy

# The six bad paths, plus a few more of the same families.
BAD_PATHS = [
    "/models/latest/../../state",
    "/models/latest/%2e%2e/%2e%2e/records",
    "/models/latest/..%2f..%2fx",
    "/models/does-not-exist/model.json",
    "/models/latest/not-a-model-file.txt",
    "/models/latest/%2Fetc%2Fpasswd",
    "/models/latest/model.h5",  # the Keras file is never served
    "/models/latest/%2e%2e",
    "/models/latest/%252e%252e",  # double encoding
    "/models/latest/..\\..\\x",
    "/models/..%2fstate/model.json",
    "/models/000001/..",
    "/models/999999/model.json",  # a well-formed version that was never committed
    "/models/000002/model.json",  # a rejected round has no model
    "/models/latest/group1-shard1of1.bin/extra",
]


class S3Calls:
    """Records every operation (API call or presigning) made through these S3 clients."""

    def __init__(self, *clients: Any) -> None:
        self.operations: list[str] = []
        for s3 in clients:
            s3.meta.events.register("before-parameter-build.s3", self._record)

    def _record(self, model: Any, params: Any, **kwargs: Any) -> None:
        self.operations.append(model.name)


def _gateway(aws: Aws) -> Gateway:
    """The embedded run's real gateway (routing on the raw path), wired to this test's AWS."""
    proxy = ModelProxy.for_aws(aws)

    def resolve(module: str):
        assert module == "model_proxy"
        return lambda event, context: model_proxy.handle(event, aws, proxy)

    return Gateway(port=0, resolver=resolve)


def _get(gw: Gateway, target: str, method: str = "GET"):
    return gw.dispatch(method, target, [("host", "127.0.0.1")], b"", "127.0.0.1")


@pytest.fixture
def published(aws, schema):
    """Version 000001 published, round 000002 rejected (000001 keeps serving)."""
    publish(aws, schema, export_model(schema))
    commit_rejected(aws, schema, records_seen=2000)
    return aws


def test_every_refused_path_answers_4xx_and_never_reaches_s3(published):
    s3 = S3Calls(published.s3, published.s3_presigner)
    gw = _gateway(published)
    try:
        for path in BAD_PATHS:
            response = _get(gw, path)
            assert 400 <= response.status < 500, (path, response.status)
            assert "location" not in dict(response.headers), path
        assert s3.operations == []
        ok = _get(gw, "/models/latest/model.json")  # the spy does see a good request
        assert ok.status == 302
        assert s3.operations == ["GetObject"]
    finally:
        gw.server_close()


@pytest.mark.parametrize("raw_path, params, status", [
    ("/models/latest/../../state", {"version": "latest", "file": "../../state"}, 400),
    ("/models/latest/..%2f..%2fx", {"version": "latest", "file": "../../x"}, 400),
    ("/models/latest/%2Fetc%2Fpasswd", {"version": "latest", "file": "/etc/passwd"}, 400),
    ("/models/latest/%2e%2e", {"version": "latest", "file": ".."}, 400),
    ("/models/..%2fstate/model.json", {"version": "../state", "file": "model.json"}, 400),
    ("/models/does-not-exist/model.json", {"version": "does-not-exist", "file": "model.json"}, 404),
    ("/models/latest/not-a-model-file.txt", {"version": "latest", "file": "not-a-model-file.txt"}, 404),
    ("/models/latest/model.h5", {"version": "latest", "file": "model.h5"}, 404),
    ("", {"version": "latest", "file": "../x"}, 400),  # even without a rawPath
])
def test_handler_refuses_decoded_traversal_without_any_aws_call(raw_path, params, status):
    """Whatever the gateway decodes, the handler itself refuses it on the text alone (no client is touched)."""

    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"AWS was called ({name}) for a path that should be refused")

    proxy = ModelProxy(Untouchable(), Untouchable(), "bucket", 300)  # type: ignore[arg-type]
    event = http_event("GET", raw_path, path_parameters=params)
    response = model_proxy.handle(event, Untouchable(), proxy)  # type: ignore[arg-type]
    assert response["statusCode"] == status
    assert json.loads(response["body"])["message"]


def test_good_paths_redirect_to_a_presigned_url_of_the_resolved_version(published):
    gw = _gateway(published)
    try:
        for target, key in [("/models/latest/model.json", "models/000001/model.json"),
                            ("/models/latest/group1-shard1of1.bin", "models/000001/group1-shard1of1.bin"),
                            ("/models/000001/metadata.json", "models/000001/metadata.json")]:
            response = _get(gw, target)
            assert response.status == 302, target
            headers = dict(response.headers)
            url = urlsplit(headers["location"])
            assert url.path.endswith(f"/{key}")
            query = parse_qs(url.query)
            assert query["X-Amz-Expires"] == [str(int(published.settings.presign_seconds))]
            assert headers["access-control-allow-origin"] == "*"
        assert dict(_get(gw, "/models/latest/model.json").headers)["cache-control"] == "no-store"
    finally:
        gw.server_close()


def test_latest_before_any_publish_is_404(aws):
    gw = _gateway(aws)
    try:
        assert _get(gw, "/models/latest/model.json").status == 404
    finally:
        gw.server_close()


def test_options_preflight_answers_cors_headers(aws):
    gw = _gateway(aws)
    try:
        response = _get(gw, "/models/latest/model.json", method="OPTIONS")
    finally:
        gw.server_close()
    assert response.status == 204
    headers = dict(response.headers)
    for name, value in CORS_HEADERS.items():
        assert headers[name] == value
    assert "GET" in headers["access-control-allow-methods"]


def test_history_is_newest_first_with_metrics_and_rejected_rounds_marked(published, schema):
    publish(published, schema, export_model(schema, seed=1), records_seen=3000, prequential_accuracy=0.8)
    body = json.loads(model_proxy.handle(http_event("GET", "/models"), published, ModelProxy.for_aws(published))["body"])
    versions = body["versions"]
    assert [v["version"] for v in versions] == ["000003", "000002", "000001"]
    assert [v["rejected"] for v in versions] == [False, True, False]
    assert versions[1]["status"] == "rejected" and versions[1]["model_version"] == "000001"
    assert versions[1]["gate"] == "worse by 0.400"
    newest = versions[0]
    for field in ("version", "parent", "created", "records_seen", "new_records", "prequential_accuracy",
                  "holdout_accuracy", "gate", "duration_s"):
        assert field in newest
    assert newest["records_seen"] == 3000 and newest["prequential_accuracy"] == 0.8 and newest["parent"] == "000002"
    assert body["next"] is None


def test_history_pages_with_limit_and_before(published, schema):
    for i in range(3):
        commit_rejected(published, schema, records_seen=3000 + i)
    proxy = ModelProxy.for_aws(published)

    def page(query: dict[str, str]) -> dict:
        response = model_proxy.handle(http_event("GET", "/models", query=query), published, proxy)
        assert response["statusCode"] == 200
        return json.loads(response["body"])

    seen: list[str] = []
    query = {"limit": "2"}
    while True:
        body = page(query)
        assert len(body["versions"]) <= 2
        seen.extend(v["version"] for v in body["versions"])
        if body["next"] is None:
            break
        query = {"limit": "2", "before": body["next"]}
    assert seen == ["000005", "000004", "000003", "000002", "000001"]
    assert page({"limit": "5"})["next"] is None


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "abc"}, {"limit": "1000"}, {"before": "../x"},
                                   {"page": "2"}])
def test_history_refuses_bad_query_parameters(query):
    offline = Aws(Settings())  # refused before any call is made through it
    response = model_proxy.handle(http_event("GET", "/models", query=query), offline, ModelProxy.for_aws(offline))
    assert response["statusCode"] == 400
