"""schemathesis against the embedded stack, from the OpenAPI description: no 5xx, every answer as described.

An outside tool generating requests from ``autotraining.openapi.document`` (valid and invalid
bodies, odd paths and queries) finds what our own tests did not think of. Requests are signed
like a producer's, so ``POST /records`` is exercised past the authorizer.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import unsupported_method

from autotraining import api
from autotraining.openapi import document
from autotraining.schema import load_schema
from autotraining_tools.local.stack import EmbeddedStack, stack_credentials
from autotraining_tools.signing import sign_headers

pytestmark = pytest.mark.e2e

DOC = document(load_schema())
SCHEMA = schemathesis.openapi.from_dict(DOC)


class SigV4(requests.auth.AuthBase):
    """Signs each prepared request as a producer with the embedded stack's credentials."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        data = body.encode() if isinstance(body, str) else body
        request.headers.update(sign_headers(str(request.method), str(request.url), bytes(data), stack_credentials(),
                                            "us-east-1"))
        return request


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(port=0, emulator_port=0, run_agent=False, run_scheduler=False, batch_window=0.5,
                       worker_command=[sys.executable, "-c", "pass"]) as running:
        from serving_fixtures import export_model, publish  # TensorFlow: only once a stack is wanted

        publish(running.aws, load_schema(), export_model(load_schema()))  # so /predict can answer 200
        yield running


def test_the_description_has_one_operation_per_route_and_is_served(stack: EmbeddedStack) -> None:
    described = {(method.upper(), path) for path, ops in DOC["paths"].items() for method in ops}
    assert described == {(m, p) for m, p, _ in api.ROUTES}
    served = requests.get(f"{stack.api_url}/openapi.json", timeout=10)
    assert served.status_code == 200 and served.json() == DOC


@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_description(case: Any, stack: EmbeddedStack) -> None:
    # API Gateway answers a method no route has with 404 Not Found (the embedded gateway too),
    # where schemathesis's unsupported_method check wants 405: that one check is left out.
    case.call_and_validate(base_url=stack.api_url, auth=SigV4(), timeout=30, excluded_checks=[unsupported_method])
