"""Self-stop: the worker stops its own instance once the queue has been idle for the grace period.

"Idle" means the queue reports no message waiting and none in flight
(``ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible == 0``) *and* the last
receive got nothing; any message resets the clock (``IdleClock``). The instance id comes from
``settings.instance_id`` (the embedded run sets it) or, when that is empty, from the instance
metadata service (IMDSv2: a PUT for a session token, then the ``instance-id`` document).
Work that arrives while the instance stops is picked up at the next start (the schedule or the
stream handler's threshold starts it again).
"""
from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from typing import Any

from tenacity import retry, stop_after_attempt, wait_exponential

from autotraining.logs import get_logger

log = get_logger("worker.selfstop")

IMDS_URL = "http://169.254.169.254"


class IdleClock:
    """Seconds since the queue was last seen busy; ``expired`` after ``grace`` idle seconds."""

    def __init__(self, grace: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace = grace
        self._clock = clock
        self._since = clock()

    def busy(self) -> None:
        self._since = self._clock()

    def idle_for(self) -> float:
        return self._clock() - self._since

    def expired(self) -> bool:
        return self.idle_for() >= self.grace


def instance_id_from_metadata(base_url: str = IMDS_URL, timeout: float = 2.0) -> str:
    """The instance id from IMDSv2 (token first, then the metadata document)."""
    token_req = urllib.request.Request(f"{base_url}/latest/api/token", method="PUT",
                                       headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    with urllib.request.urlopen(token_req, timeout=timeout) as resp:  # noqa: S310 - fixed link-local URL  # nosec B310
        token = resp.read().decode()
    id_req = urllib.request.Request(f"{base_url}/latest/meta-data/instance-id",
                                    headers={"X-aws-ec2-metadata-token": token})
    with urllib.request.urlopen(id_req, timeout=timeout) as resp:  # noqa: S310  # nosec B310
        return resp.read().decode().strip()


@retry(stop=stop_after_attempt(5), wait=wait_exponential(multiplier=0.5, max=8), reraise=True)
def stop_instance(ec2: Any, instance_id: str) -> str:
    """Stop the instance (retried: a transient error must not leave it running); returns the new state."""
    resp = ec2.stop_instances(InstanceIds=[instance_id])
    state = resp["StoppingInstances"][0]["CurrentState"]["Name"]
    log.info("worker.stopping_instance", instance_id=instance_id, state=state)
    return str(state)


def own_instance_id(configured: str, metadata: Callable[[], str] = instance_id_from_metadata) -> str:
    return configured or metadata()
