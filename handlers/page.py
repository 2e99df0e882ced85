"""``GET /``, ``GET /static/{file}`` and ``GET /openapi.json``: the dashboard page, its assets, the API's description.

Wiring only: the files live in ``handlers/static/`` (shipped in the Lambda bundle, ``tf.min.js``
copied there from npm by ``make install``), and ``autotraining.dashboard.StaticSite`` decides what
may be served and how (content types, caching, gzip, the generated ``schema.json``).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from autotraining import api
from autotraining.dashboard import INDEX_FILE, StaticSite
from autotraining.openapi import document
from autotraining.schema import load_schema
from autotraining.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static/"
OPENAPI_PATH = "/openapi.json"


@lru_cache(maxsize=4)
def site_for(schema_file: str) -> StaticSite:
    return StaticSite(STATIC_DIR, load_schema(schema_file))


def requested_file(event: dict[str, Any]) -> str:
    """The asset name: ``{file}`` of ``/static/{file}``, ``index.html`` for ``/``."""
    params = event.get("pathParameters") or {}
    if "file" in params:
        return str(params["file"])
    path = str(event.get("rawPath") or "/")
    if STATIC_PREFIX in path:
        return path.split(STATIC_PREFIX, 1)[1]
    return INDEX_FILE


@api.answers_errors
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    api.require_method(event, "GET", "HEAD")
    settings = Settings.from_env()
    if event.get("rawPath") == OPENAPI_PATH:
        return api.json_response(200, document(load_schema(settings.schema_file), settings.max_records_per_request),
                                 headers={"cache-control": "max-age=300"})
    site = site_for(settings.schema_file)
    return site.respond(requested_file(event), query=event.get("queryStringParameters"),
                        headers=event.get("headers"))
