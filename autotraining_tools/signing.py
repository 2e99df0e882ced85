"""Signing requests to the HTTP API the way its IAM authorizer checks them (SigV4, service ``execute-api``).

One helper for every client that writes (the CLI's ``ApiClient``, the scripts, the tests):
``sign_headers`` returns the headers (``authorization``, ``x-amz-date``, ``x-amz-content-sha256``,
``x-amz-security-token`` when the credentials carry one) to add to a request built with any HTTP
library, computed by botocore's own ``SigV4Auth`` so a client here signs exactly as the AWS SDKs
do. ``user_credentials`` resolves the caller's ordinary AWS credential chain (environment, shared
profile, SSO, instance role); ``None`` when there are none, so a caller can send the request
unsigned and let the API answer 403 where a signature is required.

>>> from botocore.credentials import Credentials
>>> h = sign_headers("POST", "http://127.0.0.1:8080/records", b"[]", Credentials("AKID", "secret"), "us-east-1")
>>> sorted(h)
['authorization', 'x-amz-content-sha256', 'x-amz-date']
>>> h["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")
True
"""
from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Mapping

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials

SERVICE = "execute-api"  # the service name API Gateway's IAM authorization expects in the scope


def user_credentials(profile: str | None = None) -> Credentials | None:
    """The caller's AWS credentials from botocore's default chain, or None when none are configured."""
    session = botocore.session.Session(profile=profile)
    return session.get_credentials()  # type: ignore[no-any-return]


def user_region(default: str = "us-east-1", profile: str | None = None) -> str:
    """The region the caller's configuration names (AWS_REGION, AWS_DEFAULT_REGION, profile), else ``default``."""
    session = botocore.session.Session(profile=profile)
    return str(session.get_config_variable("region") or default)


def sign_headers(method: str, url: str, body: bytes, credentials: Credentials | ReadOnlyCredentials,
                 region: str, headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """SigV4 headers for ``method url`` with ``body`` (and ``headers``, which are signed too).

    Send the request to exactly ``url`` with exactly ``body``: the signature covers the host,
    path, query string and a SHA-256 of the body.
    """
    frozen = credentials.get_frozen_credentials() if isinstance(credentials, Credentials) else credentials
    request = AWSRequest(method=method.upper(), url=url, data=body, headers=dict(headers or {}))
    # The body hash travels as a header, as the SDKs send it for execute-api, so the server can
    # refuse a body that was swapped after signing before it compares signatures.
    request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
    SigV4Auth(Credentials(str(frozen.access_key), str(frozen.secret_key), frozen.token), SERVICE,
              region).add_auth(request)
    wanted = {"authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"}
    return {name.lower(): str(value) for name, value in request.headers.items() if name.lower() in wanted}


def signed_request(url: str, data: bytes | None = None, method: str | None = None,
                   headers: Mapping[str, str] | None = None, credentials: Credentials | None = None,
                   region: str | None = None) -> urllib.request.Request:
    """A ``urllib`` request signed with ``credentials`` (default: the user's chain; unsigned when there are none)."""
    method = method or ("POST" if data is not None else "GET")
    all_headers = dict(headers or {})
    creds = credentials if credentials is not None else user_credentials()
    if creds is not None:
        all_headers.update(sign_headers(method, url, data or b"", creds, region or user_region(), all_headers))
    return urllib.request.Request(url, data=data, method=method, headers=all_headers)
