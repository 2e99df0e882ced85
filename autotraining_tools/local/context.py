"""The Lambda context object the embedded run passes to handlers (a leaf: it imports nothing of ours).

The gateway, the stream poller, the scheduler and the local invoker all call handlers with it,
so it lives apart from each of them and none has to import another lazily to get it.
"""
from __future__ import annotations

import time
import uuid


class LambdaContext:
    """The parts of the Lambda context object handlers may read."""

    def __init__(self, function_name: str, timeout_seconds: float = 30.0) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 256
        self.aws_request_id = uuid.uuid4().hex
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
