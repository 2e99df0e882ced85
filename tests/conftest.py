"""Shared fixtures: moto's in-process mock for unit tests, a real moto server for e2e tests.

Unit tests: ``aws`` gives an ``Aws`` bound to moto's in-process mock with the stack's resources
provisioned (``aws.settings`` names them). E2E tests: ``moto_server_url`` is a real moto
server over HTTP on a free loopback port (one per test session).
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

# Before boto3 is used anywhere: dummy credentials, a region, and the setting that keeps
# DynamoDB Streams calls on moto's hosts (see shared NOTES.md).
from autotraining_tools.local.environment import use_emulator_environment

use_emulator_environment()

from autotraining.aws import Aws  # noqa: E402
from autotraining.schema import Schema, load_schema  # noqa: E402
from autotraining.settings import Settings  # noqa: E402
from autotraining_tools.local.provision import provision  # noqa: E402


@pytest.fixture
def schema() -> Schema:
    return load_schema()


@pytest.fixture
def aws() -> Iterator[Aws]:
    """An ``Aws`` on moto's in-process mock, with the stack's resources created."""
    from moto import mock_aws

    with mock_aws():
        base = Aws(Settings(region="us-east-1"))
        settings = provision(base)
        yield Aws(settings)


@pytest.fixture(scope="session")
def moto_server_url() -> Iterator[str]:
    """A real moto server over HTTP on a free loopback port, for the whole test session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
