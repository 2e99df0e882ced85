"""The embedded gateway's authorizers: the stand-ins for API Gateway's IAM and JWT authorization.

Both check for real, so the local tests exercise the same rules as the cloud:

* ``SigV4Authorizer`` recomputes the request's SigV4 signature with botocore's ``SigV4Auth`` from
  the secret of the access key it names (the embedded stack's credentials) and compares it in
  constant time. Missing, malformed, wrong, for another service/region, or dated more than five
  minutes away from now → 403 with API Gateway's own message. The body is hashed here, so a body
  swapped after signing fails even when the client sent ``x-amz-content-sha256``.
* ``JwtAuthorizer`` verifies ``Authorization: Bearer <jwt>`` with PyJWT against a public key
  (``LocalIssuer`` makes an RSA key pair and issues tokens for tests and the CLI), checking
  signature, ``iss``, ``aud`` and ``exp`` → 401 ``Unauthorized`` otherwise, as API Gateway does.

``AccessPolicy`` says which authorizer guards which route: writes (``api.WRITE_ROUTES``) always
have one; reads are public unless ``reads`` is set; CORS preflights (``OPTIONS``) never do,
because browsers send them without credentials. An allowed request's identity goes into the
event's ``requestContext.authorizer`` in API Gateway's payload 2.0 shape.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from autotraining import api
from autotraining_tools.signing import SERVICE

SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
MAX_SKEW = dt.timedelta(minutes=5)  # API Gateway's (and every AWS service's) allowed clock skew

# API Gateway's answers, word for word.
FORBIDDEN = "Forbidden"
BAD_SIGNATURE = ("The request signature we calculated does not match the signature you provided. "
                 "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
BAD_TOKEN = "The security token included in the request is invalid."
UNAUTHORIZED = "Unauthorized"

_AUTH_HEADER = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<credential>[^,\s]+),\s*"
                          r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})")


class Denied(Exception):
    """The request is not authorized; ``status`` and ``message`` are what API Gateway answers."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class IncomingRequest:
    """What an authorizer sees: the request exactly as it arrived."""

    method: str
    target: str  # raw path and query, as sent
    headers: Mapping[str, str]  # lower-case names
    body: bytes


class Authorizer(Protocol):
    def authorize(self, request: IncomingRequest) -> dict[str, Any]:
        """The ``requestContext.authorizer`` value for an allowed request; raise ``Denied`` otherwise."""


@dataclass(frozen=True)
class SigV4Authorizer:
    """IAM authorization: a SigV4 signature by one of ``credentials`` (access key → secret)."""

    credentials: Mapping[str, str]
    region: str
    account_id: str = "123456789012"
    now: Any = field(default=None, compare=False)  # a clock for tests: () -> aware datetime

    def authorize(self, request: IncomingRequest) -> dict[str, Any]:
        header = request.headers.get("authorization", "")
        if not header:
            raise Denied(403, FORBIDDEN)
        found = _AUTH_HEADER.fullmatch(header.strip())
        if found is None:
            raise Denied(403, FORBIDDEN)
        parts = found["credential"].split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise Denied(403, FORBIDDEN)
        access_key, day, region, service, _ = parts
        secret = self.credentials.get(access_key)
        if secret is None:
            raise Denied(403, BAD_TOKEN)
        stamp = request.headers.get("x-amz-date", "")
        try:
            signed_at = dt.datetime.strptime(stamp, SIGV4_TIMESTAMP).replace(tzinfo=dt.UTC)
        except ValueError:
            raise Denied(403, FORBIDDEN) from None
        now = self.now() if self.now is not None else dt.datetime.now(dt.UTC)
        if signed_at < now - MAX_SKEW:
            raise Denied(403, f"Signature expired: {stamp} is now earlier than "
                              f"{(now - MAX_SKEW).strftime(SIGV4_TIMESTAMP)} ({now.strftime(SIGV4_TIMESTAMP)} - 5 min.)")
        if signed_at > now + MAX_SKEW:
            raise Denied(403, f"Signature not yet current: {stamp} is still later than "
                              f"{(now + MAX_SKEW).strftime(SIGV4_TIMESTAMP)} ({now.strftime(SIGV4_TIMESTAMP)} + 5 min.)")
        if day != stamp[:8] or region != self.region or service != SERVICE:
            raise Denied(403, BAD_SIGNATURE)
        signed = found["signed"].split(";")
        if "host" not in signed or any(name not in request.headers for name in signed):
            raise Denied(403, BAD_SIGNATURE)
        body_hash = hashlib.sha256(request.body).hexdigest()
        if request.headers.get("x-amz-content-sha256", body_hash) != body_hash:
            raise Denied(403, BAD_SIGNATURE)
        expected = self._signature(request, signed, secret, access_key, stamp)
        if not hmac.compare_digest(expected, found["signature"]):
            raise Denied(403, BAD_SIGNATURE)
        return {"iam": {"accessKey": access_key, "accountId": self.account_id,
                        "userArn": f"arn:aws:iam::{self.account_id}:user/{access_key}",
                        "principalOrgId": None, "cognitoIdentity": None}}

    def _signature(self, request: IncomingRequest, signed: list[str], secret: str, access_key: str,
                   stamp: str) -> str:
        # Rebuild the request with only the headers the client signed, and let botocore compute
        # the canonical request and signature exactly as the client's signer did.
        headers = {name: request.headers[name] for name in signed}
        url = f"http://{request.headers['host']}{request.target}"
        rebuilt = AWSRequest(method=request.method.upper(), url=url, data=request.body, headers=headers)
        rebuilt.context["timestamp"] = stamp
        signer = SigV4Auth(Credentials(access_key, secret), SERVICE, self.region)
        canonical = signer.canonical_request(rebuilt)
        return str(signer.signature(signer.string_to_sign(rebuilt, canonical), rebuilt))


@dataclass(frozen=True)
class JwtAuthorizer:
    """JWT authorization: an RS256 bearer token from ``issuer`` for ``audience``, verified with ``public_key``."""

    public_key: Any
    issuer: str
    audience: str

    def authorize(self, request: IncomingRequest) -> dict[str, Any]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Denied(401, UNAUTHORIZED, {"www-authenticate": "Bearer"})
        try:
            claims = jwt.decode(token.strip(), self.public_key, algorithms=["RS256"], issuer=self.issuer,
                                audience=self.audience, options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.PyJWTError as exc:
            raise Denied(401, UNAUTHORIZED,
                         {"www-authenticate": f'Bearer error="invalid_token" error_description="{exc}"'}) from None
        return {"jwt": {"claims": {k: str(v) for k, v in claims.items()}, "scopes": None}}


class LocalIssuer:
    """An RSA key pair that issues RS256 tokens: the embedded run's stand-in for Cognito or an OIDC provider."""

    def __init__(self, issuer: str = "https://issuer.autotraining_tools.local", audience: str = "autotraining") -> None:
        self.issuer = issuer
        self.audience = audience
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def public_key(self) -> Any:
        return self._key.public_key()

    def public_pem(self) -> str:
        return self.public_key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")

    def issue(self, subject: str = "producer", ttl_seconds: float = 3600.0, audience: str | None = None) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": audience or self.audience, "sub": subject, "iat": now,
                  "exp": now + int(ttl_seconds)}
        return jwt.encode(claims, self._key, algorithm="RS256")

    def authorizer(self) -> JwtAuthorizer:
        return JwtAuthorizer(self.public_key, self.issuer, self.audience)


@dataclass(frozen=True)
class AccessPolicy:
    """Which authorizer guards which route (None: public)."""

    writes: Authorizer | None = None
    reads: Authorizer | None = None

    def authorizer_for(self, method: str, route_key: str) -> Authorizer | None:
        if method.upper() == "OPTIONS":
            return None
        return self.writes if (method.upper(), route_key) in api.WRITE_ROUTES else self.reads


OPEN = AccessPolicy()
