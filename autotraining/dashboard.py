"""The dashboard's static site: which files the page handler may serve, and how.

``StaticSite`` owns one folder of assets (``handlers/static/``: ``index.html``, ``app.js``,
``style.css``, the vendored ``tf.min.js``) plus one generated file, ``schema.json``
(``Schema.to_dict()`` of the configured schema, so the page builds its inputs from the schema,
never from hard-coded features). Only plain file names that exist in that folder (or
``schema.json``) are served: no sub-folders, no ``..``, no hidden files, no extension without a
known content type. ``index.html`` references its assets as ``static/<name>?v=<hash>``; an asset
fetched with its current hash is cached for a year (``immutable``), anything else revalidates
(ETag → 304). Text is sent as text, binary files base64 (``isBase64Encoded``), and large
responses gzip-compressed when the client accepts it (Lambda's 6 MB response limit and the
browser's download both like that: ``tf.min.js`` shrinks from 1.4 MB to 0.37 MB).

>>> from pathlib import Path
>>> from autotraining.schema import load_schema
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "index.html").write_text('<script src="static/app.js"></script>')
>>> _ = (folder / "app.js").write_text("console.log(1)")
>>> site = StaticSite(folder, load_schema())
>>> site.asset("index.html").body.decode().startswith('<script src="static/app.js?v=')
True
>>> site.respond("app.js")["headers"]["content-type"]
'text/javascript; charset=utf-8'
>>> site.respond("../settings.py")["statusCode"]
404
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotraining.schema import Schema

INDEX_FILE = "index.html"
SCHEMA_FILE = "schema.json"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
TEXT_SUFFIXES = {".html", ".js", ".css", ".json", ".svg"}
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# index.html names its assets as src="static/NAME" / href="static/NAME"; those get ?v=<hash>.
ASSET_REFERENCE = re.compile(r'((?:src|href)=")static/([A-Za-z0-9][A-Za-z0-9_.-]*)(")')
GZIP_MIN_BYTES = 1024
CACHE_IMMUTABLE = "public, max-age=31536000, immutable"
CACHE_SHORT = "public, max-age=300"
CACHE_REVALIDATE = "no-cache"
# The page may only run scripts and styles the project serves itself; fetches may go to the
# presigned S3 URLs the model proxy redirects to (another origin), hence the wider connect-src.
# tf.min.js finds its global object with Function("return this"), hence 'unsafe-eval'.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; "
                           "font-src 'self'; connect-src *; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class AssetNotFound(LookupError):
    """No servable asset has that name (the message says why)."""


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    content_type: str
    etag: str  # quoted, as sent in the ETag header
    version: str  # the short content hash index.html puts in ?v=

    @property
    def is_text(self) -> bool:
        return Path(self.name).suffix in TEXT_SUFFIXES


def _make_asset(name: str, body: bytes) -> Asset:
    digest = hashlib.sha256(body).hexdigest()
    return Asset(name=name, body=body, content_type=CONTENT_TYPES[Path(name).suffix],
                 etag=f'"{digest[:32]}"', version=digest[:12])


def check_name(name: str) -> None:
    """Refuse anything but a plain file name with a known content type (no path, no ``..``)."""
    if not FILE_NAME.match(name) or ".." in name:
        raise AssetNotFound(f"{name!r} is not a plain file name")
    if Path(name).suffix not in CONTENT_TYPES:
        raise AssetNotFound(f"{name!r} has no known content type")


def _finite(value: Any) -> Any:
    """JSON has no infinity: an unbounded feature range is sent as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class StaticSite:
    """The assets of one folder plus the generated schema; file contents are read once."""

    def __init__(self, directory: Path, schema: Schema) -> None:
        self.directory = Path(directory)
        self.schema = schema
        self._cache: dict[str, Asset] = {}
        self._gzipped: dict[str, bytes] = {}

    def names(self) -> list[str]:
        """Every servable name: the folder's files with a known content type, and the schema."""
        found = {SCHEMA_FILE}
        for p in self.directory.iterdir():
            try:
                check_name(p.name)
            except AssetNotFound:
                continue
            if p.is_file():
                found.add(p.name)
        return sorted(found)

    def asset(self, name: str) -> Asset:
        """The asset called ``name``; ``AssetNotFound`` for anything not servable."""
        check_name(name)
        if name in self._cache:
            return self._cache[name]
        if name == SCHEMA_FILE:
            asset = _make_asset(name, json.dumps(_finite(self.schema.to_dict()), indent=1).encode())
        else:
            path = self.directory / name
            # The name has no separator, so this only guards against symlinks leading out.
            if not path.is_file() or path.resolve().parent != self.directory.resolve():
                raise AssetNotFound(f"no asset {name!r}")
            body = path.read_bytes()
            if name == INDEX_FILE:
                body = self._versioned_references(body.decode("utf-8")).encode("utf-8")
            asset = _make_asset(name, body)
        self._cache[name] = asset
        return asset

    def _versioned_references(self, html: str) -> str:
        def stamp(m: re.Match[str]) -> str:
            try:
                ref = self.asset(m.group(2))
            except AssetNotFound:
                return m.group(0)  # left as written; the request will 404 and a test will say so
            return f"{m.group(1)}static/{ref.name}?v={ref.version}{m.group(3)}"

        return ASSET_REFERENCE.sub(stamp, html)

    def respond(self, name: str, query: Mapping[str, str] | None = None,
                headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The API Gateway v2 response for ``GET /static/<name>`` (or ``/`` with ``index.html``)."""
        try:
            asset = self.asset(name)
        except AssetNotFound as exc:
            return {"statusCode": 404, "headers": {"content-type": "text/plain; charset=utf-8",
                                                   "cache-control": CACHE_REVALIDATE},
                    "body": f"not found: {exc}", "isBase64Encoded": False}
        req = {k.lower(): v for k, v in (headers or {}).items()}
        if asset.name in (INDEX_FILE, SCHEMA_FILE):
            cache = CACHE_REVALIDATE
        elif (query or {}).get("v") == asset.version:
            cache = CACHE_IMMUTABLE
        else:
            cache = CACHE_SHORT
        out_headers = {"content-type": asset.content_type, "cache-control": cache, "etag": asset.etag,
                       "x-content-type-options": "nosniff"}
        if asset.name == INDEX_FILE:
            out_headers["content-security-policy"] = CONTENT_SECURITY_POLICY
        if asset.etag in [t.strip() for t in req.get("if-none-match", "").split(",")]:
            return {"statusCode": 304, "headers": out_headers, "body": "", "isBase64Encoded": False}
        body = asset.body
        if len(body) >= GZIP_MIN_BYTES:
            out_headers["vary"] = "accept-encoding"
        if len(body) >= GZIP_MIN_BYTES and "gzip" in req.get("accept-encoding", ""):
            if asset.name not in self._gzipped:
                self._gzipped[asset.name] = gzip.compress(body, compresslevel=9, mtime=0)
            out_headers["content-encoding"] = "gzip"
            return {"statusCode": 200, "headers": out_headers,
                    "body": base64.b64encode(self._gzipped[asset.name]).decode("ascii"), "isBase64Encoded": True}
        if asset.is_text:
            return {"statusCode": 200, "headers": out_headers, "body": body.decode("utf-8"), "isBase64Encoded": False}
        return {"statusCode": 200, "headers": out_headers, "body": base64.b64encode(body).decode("ascii"),
                "isBase64Encoded": True}
