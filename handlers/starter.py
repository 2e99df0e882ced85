"""Start the persistent worker instance when there is work (core: ``autotraining.instance``).

Invoked asynchronously by the stream handler (``{"source": "stream"}``) and by a schedule
(an EventBridge event, or the embedded run's scheduler). The stream handler asks only when the
pending queue has reached the start threshold, so it starts at once; a schedule tick starts only
when the queue holds a message (waiting or in flight). A terminated or missing instance raises,
so the failure shows in the function's errors instead of passing unnoticed.
"""
from __future__ import annotations

from typing import Any

from autotraining.aws import Aws
from autotraining.aws import shared as aws_for
from autotraining.instance import StartPolicy, ensure_started, start_if_pending
from autotraining.settings import Settings


def handle(event: dict[str, Any], aws: Aws, policy: StartPolicy | None = None) -> dict[str, Any]:
    """The handler with its AWS clients (and the settings they carry) passed in."""
    instance_id = aws.settings.instance_id
    source = event.get("source", "unknown") if isinstance(event, dict) else "unknown"
    if source == "stream":
        action = ensure_started(aws.ec2, instance_id, policy or StartPolicy())
    else:
        action = start_if_pending(aws.ec2, aws.sqs, aws.settings.queue_url, instance_id, policy or StartPolicy())
    return {"instance_id": instance_id, "action": action, "source": source}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, aws_for(Settings.from_env()))
