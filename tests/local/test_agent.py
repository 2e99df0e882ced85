"""The instance agent: runs the (injected) worker command while the emulated instance is running."""
from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from autotraining.aws import Aws
from autotraining_tools.local.agent import InstanceAgent, worker_command

SLEEPER = [sys.executable, "-c",
           "import os, time; print('up', os.environ.get('AUTOTRAINING_MARK'), flush=True); time.sleep(60)"]


def _wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def make_agent(aws: Aws) -> Iterator[Callable[..., InstanceAgent]]:
    agents: list[InstanceAgent] = []

    def make(command: list[str], **kw: Any) -> InstanceAgent:
        lines: list[str] = kw.pop("lines", [])
        kw.setdefault("boot_delay", 0.0)
        kw.setdefault("poll_interval", 0.05)
        kw.setdefault("restart_base", 0.05)
        kw.setdefault("restart_max", 0.2)
        kw.setdefault("stop_grace", 2.0)
        agent = InstanceAgent(aws, aws.settings.instance_id, command, output=lines.append, **kw)
        agents.append(agent)
        return agent.start()

    yield make
    for agent in agents:
        agent.stop()


def _start_instance(aws: Aws) -> None:
    aws.ec2.start_instances(InstanceIds=[aws.settings.instance_id])


def _stop_instance(aws: Aws) -> None:
    aws.ec2.stop_instances(InstanceIds=[aws.settings.instance_id])


def test_worker_starts_after_boot_delay_with_env_and_output_forwarded(aws: Aws, make_agent: Any) -> None:
    lines: list[str] = []
    agent = make_agent(SLEEPER, boot_delay=0.6, lines=lines, env={**os.environ, "AUTOTRAINING_MARK": "m42"})
    time.sleep(0.3)
    assert agent.starts == 0  # the instance is stopped: nothing runs
    started = time.monotonic()
    _start_instance(aws)
    _wait_for(lambda: agent.worker_running)
    assert time.monotonic() - started >= 0.55
    _wait_for(lambda: lines == ["up m42"])
    assert agent.starts == 1 and agent.boots == 1


def test_failing_worker_is_restarted_with_back_off(aws: Aws, make_agent: Any) -> None:
    agent = make_agent([sys.executable, "-c", "raise SystemExit(3)"])
    _start_instance(aws)
    _wait_for(lambda: agent.starts >= 3)
    assert set(agent.exits) == {3}
    assert agent.boots == 1


def test_worker_that_exits_cleanly_is_not_restarted(aws: Aws, make_agent: Any) -> None:
    agent = make_agent([sys.executable, "-c", "print('done')"])
    _start_instance(aws)
    _wait_for(lambda: agent.exits == [0])
    time.sleep(0.5)
    assert agent.starts == 1


def test_worker_is_terminated_when_instance_stops_and_rerun_on_next_start(aws: Aws, make_agent: Any) -> None:
    agent = make_agent(SLEEPER)
    _start_instance(aws)
    _wait_for(lambda: agent.worker_pid is not None)
    pid = agent.worker_pid
    assert pid is not None
    _stop_instance(aws)  # stopped by someone else
    _wait_for(lambda: not _alive(pid))
    assert agent.exits == [-signal.SIGTERM]
    _start_instance(aws)
    _wait_for(lambda: agent.worker_pid is not None and agent.worker_pid != pid)
    assert agent.starts == 2 and agent.boots == 2


def test_worker_ignoring_sigterm_is_killed_after_grace(aws: Aws, make_agent: Any) -> None:
    stubborn = [sys.executable, "-c",
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('r', flush=True); "
                "time.sleep(60)"]
    lines: list[str] = []
    agent = make_agent(stubborn, stop_grace=0.5, lines=lines)
    _start_instance(aws)
    _wait_for(lambda: lines == ["r"])
    pid = agent.worker_pid
    _stop_instance(aws)
    _wait_for(lambda: agent.exits == [-signal.SIGKILL])
    assert pid is not None and not _alive(pid)


def test_agent_stop_terminates_the_worker(aws: Aws, make_agent: Any) -> None:
    agent = make_agent(SLEEPER)
    _start_instance(aws)
    _wait_for(lambda: agent.worker_pid is not None)
    pid = agent.worker_pid
    agent.stop()
    assert pid is not None and not _alive(pid)
    assert not agent.worker_running


def test_command_that_cannot_start_is_retried_without_crashing(aws: Aws, make_agent: Any) -> None:
    agent = make_agent(["/nonexistent/worker-binary"])
    _start_instance(aws)
    _wait_for(lambda: len(agent.exits) >= 2)
    assert set(agent.exits) == {127} and agent.starts == 0
    assert agent._thread is not None and agent._thread.is_alive()


def test_default_worker_command_passes_idle_grace() -> None:
    assert worker_command(20.0)[1:] == ["-m", "worker", "--idle-grace", "20"]
    assert worker_command(20.0)[0] == sys.executable
