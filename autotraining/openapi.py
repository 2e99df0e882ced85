"""The HTTP API described as OpenAPI 3.1, generated from ``api.ROUTES``, the schema and the error vocabulary.

``document(schema)`` is what ``GET /openapi.json`` answers (the page function serves it) and
what the schemathesis tests run against the embedded stack. Every route of ``api.ROUTES`` has
exactly one operation here (a test checks it), request bodies carry the schema's features with
their ranges, and every status a route can answer is listed with its body (``autotraining.errors``
for the errors, API Gateway's own 401/403/404/413/429 included), so a response the description
does not allow is a bug in one or the other.
"""
from __future__ import annotations

import math
from typing import Any

from autotraining import __version__, api
from autotraining.errors import MAX_LISTED_ERRORS
from autotraining.schema import CREATED_FIELD, ID_FIELD, LABEL_FIELD, Feature, Schema
from autotraining.serving import MAX_HISTORY_LIMIT, MAX_PREDICT_ROWS
from autotraining.validation import MAX_CREATED_MS, MIN_MAGNITUDE

REF = "#/components/schemas/"
JSON = "application/json"
ID_REGEX = "^[A-Za-z0-9._:\\-]{1,128}$"
VERSION_REGEX = "^[0-9]{6}$"


def _json(schema_name: str, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {JSON: {"schema": {"$ref": REF + schema_name}}}}
    if headers:
        out["headers"] = headers
    return out


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "Invalid request (nothing written)", 401: "No valid JWT (JWT authorization)",
            403: "No valid SigV4 signature (IAM authorization)", 404: "Not found", 405: "Method not allowed",
            413: "Request too large", 415: "Body is not JSON", 429: "Throttled by the stage",
            503: "Not available now; retry after retry-after seconds"}
    return {str(s): _json("Error", text[s]) for s in statuses}


def _feature_schema(feature: Feature, stored: bool) -> dict[str, Any]:
    """The JSON Schema of one feature's value, by its type; an optional feature also takes null."""
    out: dict[str, Any]
    if feature.type == "boolean":
        out = {"type": "boolean"}
    elif feature.type == "category":
        # With an "other" bucket any string is accepted (an unseen one maps to "other").
        out = {"type": "string"} if feature.other else {"type": "string", "enum": list(feature.values)}
    else:
        out = {"type": "integer" if feature.type == "integer" else "number"}
        if stored and feature.type != "integer":  # uploads refuse magnitudes DynamoDB cannot store
            out["not"] = {"anyOf": [{"exclusiveMinimum": 0, "exclusiveMaximum": MIN_MAGNITUDE},
                                    {"exclusiveMinimum": -MIN_MAGNITUDE, "exclusiveMaximum": 0}]}
        if math.isfinite(feature.min):
            out["minimum"] = feature.min
        if math.isfinite(feature.max):
            out["maximum"] = feature.max
    if feature.optional:
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def _array_or_wrapped(key: str, item: str) -> dict[str, Any]:
    """A non-empty JSON array of ``item``, or an object with only ``key`` holding one (as validation takes it).

    No maxItems: more rows than the limit is answered 413 (a size, not a shape, problem).
    """
    array = {"type": "array", "minItems": 1, "items": {"$ref": REF + item}}
    return {"oneOf": [array, {"type": "object", "additionalProperties": False, "required": [key],
                              "properties": {key: array}}]}


def _components(schema: Schema) -> dict[str, Any]:
    required = [f.name for f in schema.features if not f.optional]

    def features(stored: bool) -> dict[str, Any]:
        return {f.name: _feature_schema(f, stored) for f in schema.features}

    record = {"type": "object", "additionalProperties": False, "required": [*required, LABEL_FIELD],
              "properties": {**features(True), LABEL_FIELD: {"type": "string", "enum": list(schema.labels)},
                             ID_FIELD: {"type": "string", "pattern": ID_REGEX},
                             CREATED_FIELD: {"type": "integer", "minimum": 0, "maximum": MAX_CREATED_MS}}}
    row = {"type": "object", "additionalProperties": False, "required": required,
           "properties": {**features(False), ID_FIELD: {}, LABEL_FIELD: {}}}
    probabilities = {"type": "object", "properties": {label: {"type": "number"} for label in schema.labels}}
    return {
        # Every error answer; invalid bodies (400/413) add the field errors and their total count.
        "Error": {"type": "object", "required": ["message"], "properties": {
            "message": {"type": "string"},
            "errors": {"type": "array", "maxItems": MAX_LISTED_ERRORS, "items": {"$ref": REF + "FieldError"}},
            "error_count": {"type": "integer", "minimum": 1}}},
        "FieldError": {"type": "object", "required": ["index", "field", "message"], "properties": {
            "index": {"type": ["integer", "null"]}, "field": {"type": ["string", "null"]},
            "message": {"type": "string"}}},
        "Record": record,
        "Records": _array_or_wrapped("records", "Record"),
        "Accepted": {"type": "object", "required": ["accepted", "ids"], "properties": {
            "accepted": {"type": "integer"}, "ids": {"type": "array", "items": {"type": "string"}}}},
        "Row": row,
        "Rows": _array_or_wrapped("rows", "Row"),
        "Predictions": {"type": "object", "required": ["version", "predictions"], "properties": {
            "version": {"type": "string"},
            "predictions": {"type": "array", "items": {"type": "object", "required": ["label", "probabilities"],
                                                        "properties": {"label": {"enum": list(schema.labels)},
                                                                       "probabilities": probabilities}}}}},
        "History": {"type": "object", "required": ["versions", "next"], "properties": {
            "versions": {"type": "array", "items": {"type": "object"}},
            "next": {"type": ["string", "null"]}}},
        "Redirect": {"type": "object", "required": ["location", "version"], "properties": {
            "location": {"type": "string"}, "version": {"type": "string"}}},
    }


def document(schema: Schema, max_records: int = 1000, server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the HTTP API for ``schema`` (``max_records`` per POST /records)."""
    write: list[dict[str, list[str]]] = [{"sigv4": []}, {"jwt": []}]  # one of them, as the stack's WriteAuthorization chooses
    retry = {"retry-after": {"schema": {"type": "string"}}}
    file_params = [{"name": "version", "in": "path", "required": True,
                    "schema": {"type": "string", "pattern": "^(latest|[0-9]{6})$"},
                    "description": "a published version (000042) or latest"},
                   {"name": "file", "in": "path", "required": True,
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$"},
                    "description": "model.json, a weight shard, or metadata.json"}]
    operations: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/records"): {
            "summary": "Send labeled records (all-or-nothing)", "security": write,
            "requestBody": {"required": True, "content": {JSON: {"schema": {"$ref": REF + "Records"}}},
                            "description": f"at most {max_records} records (413 beyond)"},
            "responses": {"201": _json("Accepted", "Stored (or already stored) records"),
                          **_errors(400, 401, 403, 413, 415, 429),
                          "503": _json("Error", "The table stayed busy: re-send the same request", retry)}},
        ("POST", "/predict"): {
            "summary": "Predict labels and probabilities for feature rows",
            "requestBody": {"required": True, "content": {JSON: {"schema": {"$ref": REF + "Rows"}}},
                            "description": f"at most {MAX_PREDICT_ROWS} rows (413 beyond)"},
            "responses": {"200": _json("Predictions", "One prediction per row"),
                          **_errors(400, 401, 403, 413, 415, 429),
                          "503": _json("Error", "No model can serve yet", retry)}},
        ("GET", "/models"): {
            "summary": "Model history, newest first",
            "parameters": [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                            "maximum": MAX_HISTORY_LIMIT}},
                {"name": "before", "in": "query", "schema": {"type": "string", "pattern": VERSION_REGEX}}],
            "responses": {"200": _json("History", "A page of rounds"), **_errors(400, 401, 403, 429)}},
        ("GET", "/models/{version}/{file}"): {
            "summary": "Redirect to a short-lived URL of a published model file", "parameters": file_params,
            "responses": {"302": _json("Redirect", "To a presigned URL",
                                       {"location": {"schema": {"type": "string"}, "required": True}}),
                          **_errors(400, 401, 403, 404, 429)}},
        ("OPTIONS", "/models/{version}/{file}"): {
            "summary": "CORS preflight (answered for any path)", "security": [],
            "parameters": [{**p, "schema": {"type": "string"}} for p in file_params],
            "responses": {"204": {"description": "CORS headers"}}},
        ("GET", "/"): {"summary": "The dashboard page",
                       "responses": {"200": {"description": "HTML", "content": {"text/html": {}}},
                                     "304": {"description": "Not modified"}, **_errors(401, 403, 429)}},
        ("GET", "/static/{file}"): {
            "summary": "The dashboard's assets",
            "parameters": [{"name": "file", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "An asset"}, "304": {"description": "Not modified"},
                          "404": {"description": "No such asset", "content": {"text/plain": {}}},
                          **_errors(401, 403, 429)}},
        ("GET", "/openapi.json"): {"summary": "This description",
                                   "responses": {"200": {"description": "OpenAPI 3.1", "content": {JSON: {}}},
                                                 **_errors(401, 403, 429)}},
    }
    paths: dict[str, dict[str, Any]] = {}
    for method, route, _module in api.ROUTES:
        op = dict(operations[(method, route)])
        op.setdefault("operationId", f"{method.lower()}{route.replace('/', '_').replace('{', '').replace('}', '')}"
                      or "root")
        op.setdefault("security", [{}, *write])  # public unless ReadAuthorization is SAME
        paths.setdefault(route, {})[method.lower()] = op
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": f"autotraining: {schema.name}", "version": __version__,
                 "description": "Labeled records in, a continuously retrained model out. POST /records needs "
                                "IAM (SigV4, service execute-api) or a JWT; reads are public unless the "
                                "stack makes them authorized."},
        "paths": paths,
        "components": {"schemas": _components(schema), "securitySchemes": {
            "sigv4": {"type": "apiKey", "in": "header", "name": "Authorization",
                      "description": "AWS Signature Version 4 (service execute-api)",
                      "x-amazon-apigateway-authtype": "awsSigv4"},
            "jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
