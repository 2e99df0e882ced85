"""The one place AWS clients are made: endpoint URL (real AWS or the emulator), region, retries.

Code that talks to AWS takes an ``Aws`` (or a boto3 client) as an argument, so the same code
runs against AWS, the embedded moto server and moto's in-process mock. The named clients are
typed (types-boto3, a dev-only stub package), so mypy checks every call's operation and arguments.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from autotraining.settings import Settings

if TYPE_CHECKING:  # the stubs are a dev dependency; nothing of them is needed at run time
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_ec2.client import EC2Client
    from types_boto3_s3.client import S3Client
    from types_boto3_sqs.client import SQSClient

_RETRY_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30)


@dataclass(frozen=True)
class Backoff:
    """A bound and an exponential backoff (seconds) for a call AWS may refuse for now (throttling,
    unprocessed items, an instance between states). Subclasses set their own defaults."""

    attempts: int
    initial: float
    maximum: float

    def retrying(self, on: type[BaseException]) -> Retrying:
        """Retry while ``on`` is raised, at most ``attempts`` times; then ``tenacity.RetryError``."""
        return Retrying(stop=stop_after_attempt(self.attempts),
                        wait=wait_exponential(multiplier=self.initial, max=self.maximum),
                        retry=retry_if_exception_type(on))


class Aws:
    """A cache of boto3 clients for one settings object (thread-safe creation)."""

    def __init__(self, settings: Settings, session: boto3.session.Session | None = None) -> None:
        self.settings = settings
        self._session = session or boto3.session.Session(region_name=settings.region)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        """The client for ``service`` (untyped: prefer the typed properties below)."""
        with self._lock:
            if service not in self._clients:
                kwargs: dict[str, Any] = {"config": _RETRY_CONFIG, "region_name": self.settings.region}
                if self.settings.endpoint_url:
                    kwargs["endpoint_url"] = self.settings.endpoint_url
                # a service name held in a str matches none of the stubs' Literal overloads
                self._clients[service] = cast(Any, self._session).client(service, **kwargs)
            return self._clients[service]

    @property
    def s3(self) -> S3Client:
        return cast("S3Client", self.client("s3"))

    @property
    def s3_presigner(self) -> S3Client:
        """An S3 client for presigned URLs, always SigV4 (boto3 still presigns SigV2 for us-east-1)."""
        with self._lock:
            if "s3:presign" not in self._clients:
                kwargs: dict[str, Any] = {"config": _RETRY_CONFIG.merge(Config(signature_version="s3v4")),
                                          "region_name": self.settings.region}
                if self.settings.endpoint_url:
                    kwargs["endpoint_url"] = self.settings.endpoint_url
                self._clients["s3:presign"] = self._session.client("s3", **kwargs)
            return cast("S3Client", self._clients["s3:presign"])

    @property
    def dynamodb(self) -> DynamoDBClient:
        return cast("DynamoDBClient", self.client("dynamodb"))

    @property
    def sqs(self) -> SQSClient:
        return cast("SQSClient", self.client("sqs"))

    @property
    def ec2(self) -> EC2Client:
        return cast("EC2Client", self.client("ec2"))


@functools.lru_cache(maxsize=8)
def shared(settings: Settings) -> Aws:
    """One ``Aws`` per settings value for the life of a process (a Lambda container reuses its clients)."""
    return Aws(settings)
