"""The page handler and ``autotraining.dashboard.StaticSite``: what is served, how, and what is refused."""
from __future__ import annotations

import base64
import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest
from serving_fixtures import http_event

from autotraining.dashboard import CACHE_IMMUTABLE, CACHE_REVALIDATE, CACHE_SHORT, StaticSite
from autotraining.schema import load_schema
from handlers import page

STATIC = page.STATIC_DIR


def get(path: str, query: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    params = {"file": path[len("/static/"):]} if path.startswith("/static/") else None
    event = http_event("GET", path, path_parameters=params, query=query)
    event["headers"] = dict(headers or {})
    return page.handler(event, None)


def body_bytes(resp: dict[str, Any]) -> bytes:
    raw = base64.b64decode(resp["body"]) if resp["isBase64Encoded"] else resp["body"].encode()
    return gzip.decompress(raw) if resp["headers"].get("content-encoding") == "gzip" else raw


def test_root_serves_the_page_with_content_hashed_asset_links() -> None:
    resp = get("/")
    assert resp["statusCode"] == 200
    assert resp["headers"]["content-type"] == "text/html; charset=utf-8"
    assert resp["headers"]["cache-control"] == CACHE_REVALIDATE
    assert "script-src 'self'" in resp["headers"]["content-security-policy"]
    html = resp["body"]
    refs = dict(re.findall(r'(?:src|href)="static/([\w.-]+)\?v=(\w+)"', html))
    assert {"app.js", "style.css", "tf.min.js"} <= set(refs)
    for name, version in refs.items():
        asset = get(f"/static/{name}")
        assert asset["statusCode"] == 200, name
        assert asset["headers"]["etag"].strip('"').startswith(version)
    assert "http://" not in html and "https://" not in html  # nothing from outside


@pytest.mark.parametrize("name, content_type", [
    ("app.js", "text/javascript; charset=utf-8"),
    ("style.css", "text/css; charset=utf-8"),
    ("favicon.svg", "image/svg+xml"),
    ("schema.json", "application/json; charset=utf-8"),
])
def test_static_files_are_served_with_their_content_type(name: str, content_type: str) -> None:
    resp = get(f"/static/{name}")
    assert resp["statusCode"] == 200
    assert resp["headers"]["content-type"] == content_type
    assert resp["headers"]["x-content-type-options"] == "nosniff"


def test_an_asset_fetched_by_its_hash_is_cached_for_a_year_otherwise_briefly() -> None:
    version = get("/static/app.js")["headers"]["etag"].strip('"')[:12]
    assert get("/static/app.js", query={"v": version})["headers"]["cache-control"] == CACHE_IMMUTABLE
    assert get("/static/app.js", query={"v": "stale"})["headers"]["cache-control"] == CACHE_SHORT
    assert get("/static/app.js")["headers"]["cache-control"] == CACHE_SHORT


def test_matching_etag_answers_304_without_a_body() -> None:
    etag = get("/static/style.css")["headers"]["etag"]
    resp = get("/static/style.css", headers={"If-None-Match": etag})
    assert resp["statusCode"] == 304 and resp["body"] == ""


def test_vendored_tensorflowjs_is_served_gzipped_when_the_client_accepts_it() -> None:
    plain = get("/static/tf.min.js")
    assert plain["statusCode"] == 200, "handlers/static/tf.min.js is missing: run `make install`"
    assert "content-encoding" not in plain["headers"] and not plain["isBase64Encoded"]
    zipped = get("/static/tf.min.js", headers={"accept-encoding": "gzip, deflate, br"})
    assert zipped["headers"]["content-encoding"] == "gzip" and zipped["isBase64Encoded"]
    assert body_bytes(zipped) == plain["body"].encode() == (STATIC / "tf.min.js").read_bytes()
    assert len(zipped["body"]) < len(plain["body"]) / 2
    npm_copy = Path(__file__).resolve().parents[2] / "node_modules/@tensorflow/tfjs/dist/tf.min.js"
    if npm_copy.exists():  # the vendored file is the npm package's, byte for byte
        assert body_bytes(plain) == npm_copy.read_bytes()


def test_schema_json_is_the_configured_schema(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert json.loads(get("/static/schema.json")["body"]) == load_schema().to_dict()
    custom = {"name": "pump", "features": [{"name": "pressure", "min": 0, "max": 10, "unit": "bar"},
                                          {"name": "offset", "typical": [-1, 1]}],
              "labels": ["fine", "failing"]}
    path = tmp_path / "pump.json"
    path.write_text(json.dumps(custom))
    monkeypatch.setenv("AUTOTRAINING_SCHEMA_FILE", str(path))
    served = json.loads(get("/static/schema.json")["body"])
    assert [f["name"] for f in served["features"]] == ["pressure", "offset"]
    assert served["labels"] == ["fine", "failing"]
    assert served["features"][1].get("min") is None and served["features"][1].get("max") is None  # unbounded: null, not Infinity


@pytest.mark.parametrize("name", [
    "../page.py", "..", "../../setup.cfg", "static/../page.py", "a/b.js", ".hidden.js", "app.js/..",
    "..\\page.py", "page.py", "__init__.py", "missing.js", "app.js%00.css", "",
])
def test_names_outside_the_static_folder_or_unknown_are_refused(name: str) -> None:
    resp = page.handler(http_event("GET", "/static/x", path_parameters={"file": name}), None)
    assert resp["statusCode"] == 404
    assert resp["headers"]["content-type"].startswith("text/plain")


def test_raw_path_is_used_when_the_event_has_no_path_parameters() -> None:
    assert page.handler(http_event("GET", "/static/style.css"), None)["headers"]["content-type"].startswith("text/css")
    assert page.handler(http_event("GET", "/static/../handlers/page.py"), None)["statusCode"] == 404
    assert page.handler(http_event("GET", "/"), None)["headers"]["content-type"].startswith("text/html")


def test_a_symlink_leading_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.js").write_text("secret")
    folder = tmp_path / "static"
    folder.mkdir()
    (folder / "link.js").symlink_to(tmp_path / "secret.js")
    site = StaticSite(folder, load_schema())
    assert site.respond("link.js")["statusCode"] == 404


def test_binary_files_are_base64_encoded_byte_for_byte(tmp_path: Path) -> None:
    png = bytes(range(256)) * 3
    (tmp_path / "logo.png").write_bytes(png)
    resp = StaticSite(tmp_path, load_schema()).respond("logo.png")
    assert resp["isBase64Encoded"] and resp["headers"]["content-type"] == "image/png"
    assert base64.b64decode(resp["body"]) == png


def test_every_file_in_the_static_folder_is_servable() -> None:
    site = page.site_for("")
    for p in STATIC.iterdir():
        assert p.name in site.names(), f"{p.name} has no content type the page handler knows"
