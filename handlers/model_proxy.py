"""``GET /models`` (history) and ``GET|OPTIONS /models/{version|latest}/{file}`` (302 to a presigned S3 URL).

Only files of a published version are served; every other path is answered 400/404 by
``autotraining.serving`` before any S3 call. CORS headers on every answer, OPTIONS preflight
answered 204, so TensorFlow.js in a browser can load ``/models/latest/model.json``.
"""
from __future__ import annotations

import functools
from typing import Any

from autotraining import api
from autotraining.aws import Aws
from autotraining.aws import shared as aws_for
from autotraining.registry import Registry
from autotraining.serving import LATEST, ModelProxy, history_page
from autotraining.settings import Settings


@api.answers_errors(cors=True)
def handle(event: dict[str, Any], aws: Aws, proxy: ModelProxy) -> dict[str, Any]:
    """The handler with its AWS clients and proxy rules passed in."""
    params = event.get("pathParameters") or {}
    if api.require_method(event, "GET", "OPTIONS") == "OPTIONS":
        return {"statusCode": 204, "headers": dict(api.CORS_HEADERS), "body": "", "isBase64Encoded": False}
    if "version" not in params and "file" not in params:
        registry = Registry(aws.dynamodb, aws.settings.models_table)
        return api.json_response(200, history_page(registry, event.get("queryStringParameters")),
                                 headers={"cache-control": "no-store"}, cors=True)
    where = proxy.locate(str(event.get("rawPath", "")), params.get("version"), params.get("file"))
    # `latest` moves, so its redirect must not be cached; a version's files never change.
    cache = "no-store" if params.get("version") == LATEST else f"max-age={max(0, int(proxy.presign_seconds) - 30)}"
    return api.json_response(302, {"location": where.url, "version": where.version},
                             headers={"location": where.url, "cache-control": cache}, cors=True)


@functools.lru_cache(maxsize=4)
def _container(settings: Settings) -> tuple[Aws, ModelProxy]:
    aws = aws_for(settings)
    return aws, ModelProxy.for_aws(aws)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    aws, proxy = _container(Settings.from_env())
    return handle(event, aws, proxy)
