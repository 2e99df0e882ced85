"""Starting the one persistent worker instance, whatever state it is in (the starter's core).

The instance is reused, never relaunched. ``ensure_started`` starts it when ``stopped``, does
nothing when ``pending`` or ``running``, and when it is ``stopping`` (the worker has just
stopped itself) waits, bounded, until it is ``stopped`` and then starts it. EC2 answers
``IncorrectInstanceState`` when the state changes between our look and our start: that is
retried the same way. A terminated, terminating or missing instance cannot be started:
``InstanceUnavailable`` says so (the stack needs fixing, not a retry).

``start_if_pending`` is the scheduled start: it starts the instance only when the pending queue
holds a message (waiting or in flight), so a schedule tick on an idle system leaves the stopped
instance stopped instead of booting it for nothing; one ``GetQueueAttributes`` call, no EC2 call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from tenacity import RetryError

from autotraining.aws import Backoff
from autotraining.logs import get_logger
from autotraining.segments import queue_counts

log = get_logger(__name__)

STARTED = "started"
ALREADY_RUNNING = "already running"
ALREADY_PENDING = "already pending"
QUEUE_EMPTY = "queue empty"


class InstanceUnavailable(RuntimeError):
    """The instance cannot be started: it is terminated, missing, or did not settle within the bound."""


@dataclass(frozen=True)
class StartPolicy(Backoff):
    """Bound and backoff (seconds) for waiting on a stopping instance / retrying IncorrectInstanceState."""

    attempts: int = 12
    initial: float = 1.0
    maximum: float = 10.0


class _NotYet(Exception):
    """The instance is between states; look again."""


def ensure_started(ec2: Any, instance_id: str, policy: StartPolicy = StartPolicy()) -> str:
    """Make sure ``instance_id`` is running or on its way; return what was done (``STARTED``, ...)."""
    if not instance_id:
        raise InstanceUnavailable("no instance id is configured (AUTOTRAINING_INSTANCE_ID)")
    try:
        for attempt in policy.retrying(_NotYet):
            with attempt:
                return _step(ec2, instance_id)
    except RetryError:
        raise InstanceUnavailable(f"instance {instance_id} did not reach a startable state after "
                                  f"{policy.attempts} attempts; the next schedule tick tries again") from None
    raise AssertionError("unreachable")  # pragma: no cover  (Retrying either returns or raises)


def instance_state(ec2: Any, instance_id: str) -> str:
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code", "").startswith("InvalidInstanceID"):
            raise InstanceUnavailable(f"instance {instance_id} does not exist") from None
        raise
    instances = [i for r in reservations for i in r.get("Instances", [])]
    if not instances:
        raise InstanceUnavailable(f"instance {instance_id} does not exist")
    return str(instances[0]["State"]["Name"])


def _step(ec2: Any, instance_id: str) -> str:
    state = instance_state(ec2, instance_id)
    if state == "running":
        log.info("instance.already_running", instance_id=instance_id)
        return ALREADY_RUNNING
    if state == "pending":
        log.info("instance.already_pending", instance_id=instance_id)
        return ALREADY_PENDING
    if state == "stopping":
        log.info("instance.waiting_for_stop", instance_id=instance_id)
        raise _NotYet()
    if state != "stopped":  # shutting-down, terminated
        raise InstanceUnavailable(f"instance {instance_id} is {state} and cannot be started; "
                                  "the stack must provide a new one")
    try:
        resp = ec2.start_instances(InstanceIds=[instance_id])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "IncorrectInstanceState":
            log.info("instance.incorrect_state_retry", instance_id=instance_id)
            raise _NotYet() from None
        raise
    now = resp["StartingInstances"][0]["CurrentState"]["Name"] if resp.get("StartingInstances") else "?"
    log.info("instance.started", instance_id=instance_id, previous=state, current=now)
    return STARTED


def start_if_pending(ec2: Any, sqs: Any, queue_url: str, instance_id: str, policy: StartPolicy = StartPolicy()) -> str:
    """Start the instance when the pending queue has messages (visible or in flight), else ``QUEUE_EMPTY``."""
    waiting, in_flight = queue_counts(sqs, queue_url)
    if waiting + in_flight == 0:
        log.info("instance.start_skipped", instance_id=instance_id, reason="queue empty")
        return QUEUE_EMPTY
    return ensure_started(ec2, instance_id, policy)
