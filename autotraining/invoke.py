"""Asynchronous invocation of another function of the stack (the stream handler → the starter).

In the cloud this is ``lambda:InvokeFunction`` with ``InvocationType=Event``. The emulator
cannot run Lambda functions, so the embedded run registers an in-process invoker that calls
the same handler with the same event; nothing else changes.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from autotraining.aws import Aws

LocalInvoker = Callable[[str, dict[str, Any]], None]
_local_invoker: LocalInvoker | None = None


def set_local_invoker(invoker: LocalInvoker | None) -> None:
    """Route invocations to ``invoker(function_name, event)`` instead of AWS Lambda (embedded run)."""
    global _local_invoker
    _local_invoker = invoker


def invoke_async(aws: Aws, function_name: str, event: dict[str, Any]) -> None:
    if _local_invoker is not None:
        _local_invoker(function_name, event)
        return
    aws.client("lambda").invoke(FunctionName=function_name, InvocationType="Event",
                                Payload=json.dumps(event).encode("utf-8"))
