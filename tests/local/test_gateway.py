"""The embedded gateway: API Gateway v2 event shape, routing on the raw path, and HTTP errors."""
from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from autotraining_tools.local.gateway import Gateway, build_event, import_handler, match_route

Captured = list[dict[str, Any]]


def _request(gw: Gateway, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    host, port = gw.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.fixture
def captured() -> Captured:
    return []


@pytest.fixture
def gateway(captured: Captured) -> Iterator[Gateway]:
    def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
        captured.append(event)
        return {"statusCode": 200, "headers": {"content-type": "application/json"},
                "body": json.dumps({"route": event["routeKey"]}), "isBase64Encoded": False}

    def redirect(event: dict[str, Any], context: Any) -> dict[str, Any]:
        captured.append(event)
        return {"statusCode": 302, "headers": {"location": "http://example.test/x"}, "body": ""}

    def boom(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("handler bug")

    def binary(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(b"\x00\xff\x10").decode(), "isBase64Encoded": True}

    def resolve(module: str) -> Any:
        table = {"upload": echo, "model_proxy": redirect, "infer": boom, "page": binary}
        if module not in table:
            raise LookupError(f"handlers.{module}")
        return table[module]

    gw = Gateway("127.0.0.1", 0, resolver=resolve, max_body_bytes=1024).start()
    yield gw
    gw.stop()


def test_post_becomes_api_gateway_v2_event(gateway: Gateway, captured: Captured) -> None:
    status, _, body = _request(gateway, "POST", "/records?a=1&a=2&b=", body=b'[{"x": 1}]',
                               headers={"Content-Type": "application/json", "X-Custom": "Yes"})
    assert status == 200 and json.loads(body) == {"route": "POST /records"}
    event = captured[0]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /records"
    assert event["rawPath"] == "/records"
    assert event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["headers"]["content-type"] == "application/json"
    assert event["headers"]["x-custom"] == "Yes"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["path"] == "/records"
    assert event["body"] == '[{"x": 1}]' and event["isBase64Encoded"] is False
    assert "pathParameters" not in event


def test_binary_body_is_base64_encoded(gateway: Gateway, captured: Captured) -> None:
    _request(gateway, "POST", "/records", body=b"\xff\xfe\x00")
    assert captured[0]["isBase64Encoded"] is True
    assert base64.b64decode(captured[0]["body"]) == b"\xff\xfe\x00"


def test_path_parameters_come_from_the_route(gateway: Gateway, captured: Captured) -> None:
    status, headers, _ = _request(gateway, "GET", "/models/000003/model.json")
    assert status == 302 and headers["location"] == "http://example.test/x"
    assert captured[0]["routeKey"] == "GET /models/{version}/{file}"
    assert captured[0]["pathParameters"] == {"version": "000003", "file": "model.json"}


def test_encoded_dot_segments_are_not_resolved_before_routing(gateway: Gateway, captured: Captured) -> None:
    # Four raw segments: no route has four, so the handler is never reached.
    status, _, body = _request(gateway, "GET", "/models/latest/%2e%2e/x")
    assert status == 404 and json.loads(body) == {"message": "Not Found"}
    assert captured == []
    # An encoded slash stays inside one segment: the handler sees the decoded name and the raw path.
    status, _, _ = _request(gateway, "GET", "/models/latest/%2e%2e%2fmetadata.json")
    assert status == 302
    assert captured[0]["rawPath"] == "/models/latest/%2e%2e%2fmetadata.json"
    assert captured[0]["pathParameters"] == {"version": "latest", "file": "../metadata.json"}


def test_literal_dot_dot_segment_reaches_handler_unnormalised(gateway: Gateway, captured: Captured) -> None:
    status, _, _ = _request(gateway, "GET", "/models/latest/..")
    assert status == 302
    assert captured[0]["pathParameters"] == {"version": "latest", "file": ".."}


def test_unknown_route_and_wrong_method_answer_404_json(gateway: Gateway, captured: Captured) -> None:
    for method, path in (("GET", "/nope"), ("GET", "/records"), ("POST", "/records/"), ("DELETE", "/models")):
        status, headers, body = _request(gateway, method, path)
        assert status == 404, (method, path)
        assert headers["content-type"] == "application/json"
        assert json.loads(body) == {"message": "Not Found"}
    assert captured == []


def test_handler_exception_answers_500_json(gateway: Gateway) -> None:
    status, _, body = _request(gateway, "POST", "/predict", body=b"[]")
    assert status == 500 and json.loads(body) == {"message": "Internal Server Error"}


def test_base64_response_is_decoded(gateway: Gateway) -> None:
    status, headers, body = _request(gateway, "GET", "/static/app.js")
    assert status == 200 and body == b"\x00\xff\x10"
    assert headers["content-type"] == "application/octet-stream"


def test_import_handler_finds_the_handler_function() -> None:
    assert callable(import_handler("upload"))


def test_body_over_the_limit_answers_413_without_calling_handler(gateway: Gateway, captured: Captured) -> None:
    status, _, body = _request(gateway, "POST", "/records", body=b"x" * 1025)
    assert status == 413 and "larger than 1024" in json.loads(body)["message"]
    assert captured == []
    status, _, _ = _request(gateway, "POST", "/records", body=b"x" * 1024)
    assert status == 200 and len(captured[0]["body"]) == 1024


def test_chunked_body_is_read_and_limited(gateway: Gateway, captured: Captured) -> None:
    host, port = gateway.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("POST", "/records", body=iter([b'[{"a":', b" 1}]"]), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    assert conn.getresponse().status == 200
    conn.close()
    assert captured[0]["body"] == '[{"a": 1}]'
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("POST", "/records", body=iter([b"y" * 800, b"y" * 800]), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    assert conn.getresponse().status == 413
    conn.close()


def test_keep_alive_connection_serves_several_requests(gateway: Gateway, captured: Captured) -> None:
    host, port = gateway.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    for i in range(3):
        conn.request("POST", "/records", body=json.dumps([i]).encode())
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
    conn.close()
    assert [e["body"] for e in captured] == ["[0]", "[1]", "[2]"]


def test_match_route_prefers_literal_routes_and_decodes_parameters() -> None:
    route, params = match_route("GET", "/models") or (None, None)
    assert route is not None and route.route_key == "GET /models" and params == {}
    route, params = match_route("OPTIONS", "/models/latest/model%20x.json") or (None, None)
    assert route is not None and params == {"version": "latest", "file": "model x.json"}
    assert match_route("GET", "/models/latest") is None
    assert match_route("GET", "/models//model.json") is None  # an empty segment is no parameter
    route, _ = match_route("GET", "/") or (None, None)
    assert route is not None and route.module == "page"


def test_build_event_joins_repeated_headers_and_collects_cookies() -> None:
    event = build_event("GET", "/", [("Accept", "a"), ("accept", "b"), ("Cookie", "x=1; y=2")], b"", None, None)
    assert event["headers"]["accept"] == "a,b"
    assert event["cookies"] == ["x=1", "y=2"]
    assert event["routeKey"] == "$default" and "body" not in event
