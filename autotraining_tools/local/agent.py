"""The embedded run's instance agent: the stand-in for the EC2 instance's boot and its systemd unit.

moto changes instance states instantly and runs nothing, so the agent plays the machine: it
polls the emulated instance's state; when the instance becomes ``running`` it waits a boot
delay (a real start takes tens of seconds), then runs the worker process
(``python -m worker --idle-grace G``) with the stack's settings in its environment. Like
``Restart=on-failure`` it restarts a worker that exits non-zero, after an exponential
back-off; a worker that exits 0 (it stopped its own instance) is not restarted. When the
instance stops (the worker stopped it, or someone else did) the agent sends the worker
SIGTERM, then SIGKILL after a grace period, like an OS shutdown. The worker's output is
forwarded line by line with a ``[worker]`` prefix. The command is injectable so tests can run
a dummy process.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from autotraining.aws import Aws
from autotraining.logs import get_logger
from autotraining_tools.local.background import BackgroundLoop

log = get_logger(__name__)

Output = Callable[[str], None]


def worker_command(idle_grace: float) -> list[str]:
    """The instance's worker command (what the systemd unit runs)."""
    return [sys.executable, "-m", "worker", "--idle-grace", f"{idle_grace:g}"]


def _stderr_output(line: str) -> None:
    sys.stderr.write(f"[worker] {line}\n")
    sys.stderr.flush()


class InstanceAgent(BackgroundLoop):
    """Runs ``command`` while the emulated instance is running; ``start()``/``stop()`` a thread."""

    def __init__(self, aws: Aws, instance_id: str, command: Sequence[str], env: Mapping[str, str] | None = None,
                 boot_delay: float = 5.0, poll_interval: float = 0.5, restart_base: float = 1.0,
                 restart_max: float = 30.0, stop_grace: float = 10.0, output: Output = _stderr_output,
                 cwd: str | None = None) -> None:
        super().__init__(name="instance-agent", stop_timeout=30.0)
        self.aws = aws
        self.instance_id = instance_id
        self.command = list(command)
        self.env = dict(os.environ if env is None else env)
        self.boot_delay = boot_delay
        self.poll_interval = poll_interval
        self.restart_base = restart_base
        self.restart_max = restart_max
        self.stop_grace = stop_grace
        self.output = output
        self.cwd = cwd
        self._proc: subprocess.Popen[str] | None = None
        self._pumps: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.starts = 0  # worker processes started (for tests and status)
        self.exits: list[int] = []  # their exit codes, in order
        self.boots = 0  # times the instance was seen to start

    # -- lifecycle -------------------------------------------------------------------------
    def stop(self, timeout: float | None = None) -> None:
        super().stop(timeout)
        self._terminate("agent stopping")

    @property
    def worker_running(self) -> bool:
        with self._lock:
            return self._proc is not None and self._proc.poll() is None

    @property
    def worker_pid(self) -> int | None:
        with self._lock:
            return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def instance_state(self) -> str:
        out = self.aws.ec2.describe_instances(InstanceIds=[self.instance_id])
        return str(out["Reservations"][0]["Instances"][0]["State"]["Name"])

    # -- the loop --------------------------------------------------------------------------
    def _run(self) -> None:
        log.info("agent.started", instance=self.instance_id, boot_delay=self.boot_delay)
        booted_at: float | None = None  # monotonic time the current boot completes; None while not running
        next_start = 0.0
        failures = 0
        started_at = 0.0
        while not self._stop.is_set():
            try:
                state = self.instance_state()
            except Exception as exc:  # the emulator going away during shutdown, a blip: try again
                log.warning("agent.describe_failed", error=repr(exc))
                self._stop.wait(self.poll_interval)
                continue
            now = time.monotonic()
            if state != "running":
                if booted_at is not None:
                    log.info("agent.instance_stopped", instance=self.instance_id, state=state)
                booted_at, failures, next_start = None, 0, 0.0
                self._terminate(f"instance {state}")
            else:
                if booted_at is None:
                    booted_at = now + self.boot_delay
                    self.boots += 1
                    log.info("agent.instance_booting", instance=self.instance_id, boot_delay=self.boot_delay)
                code = self._reap()
                if code is not None:
                    if code == 0:
                        # Restart=on-failure: a clean exit is final for this boot.
                        log.info("agent.worker_exited", code=0)
                        next_start = float("inf")
                    else:
                        ran = now - started_at
                        failures = 1 if ran > self.restart_max else failures + 1
                        delay = min(self.restart_max, self.restart_base * 2 ** (failures - 1))
                        next_start = now + delay
                        log.warning("agent.worker_failed", code=code, restart_in=round(delay, 2), failures=failures)
                if self._proc is None and now >= booted_at and now >= next_start:
                    if self._spawn():
                        started_at = time.monotonic()
                    else:
                        failures += 1
                        next_start = now + min(self.restart_max, self.restart_base * 2 ** (failures - 1))
            self._stop.wait(self.poll_interval)
        log.info("agent.stopped", starts=self.starts)

    def _spawn(self) -> bool:
        try:
            proc = subprocess.Popen(self.command, env=self.env, cwd=self.cwd, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, bufsize=1,
                                    start_new_session=True)  # Ctrl-C in the terminal reaches us, not it
        except OSError as exc:
            log.error("agent.spawn_failed", command=self.command[:3], error=repr(exc))
            with self._lock:
                self.exits.append(127)
            return False
        with self._lock:
            self._proc = proc
            self.starts += 1
        pump = threading.Thread(target=self._pump, args=(proc,), name="worker-output", daemon=True)
        pump.start()
        self._pumps = [t for t in self._pumps if t.is_alive()] + [pump]
        log.info("agent.worker_started", pid=proc.pid, command=" ".join(self.command[1:]))
        return True

    def _pump(self, proc: subprocess.Popen[Any]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                self.output(line.rstrip("\n"))
            except Exception:  # a broken sink must not block the worker's pipe  # nosec B110
                pass
        proc.stdout.close()

    def _reap(self) -> int | None:
        """The exit code of a worker that has ended since the last look (and forget it), else None."""
        with self._lock:
            if self._proc is None:
                return None
            code = self._proc.poll()
            if code is None:
                return None
            self._proc = None
            self.exits.append(code)
            return code

    def _terminate(self, reason: str) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            log.info("agent.worker_terminating", pid=proc.pid, reason=reason)
            _signal(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_grace)
            except subprocess.TimeoutExpired:
                log.warning("agent.worker_killed", pid=proc.pid)
                _signal(proc, signal.SIGKILL)
                proc.wait()
        with self._lock:
            self.exits.append(proc.returncode)
        for pump in self._pumps:
            pump.join(timeout=2)


def _signal(proc: subprocess.Popen[Any], sig: int) -> None:
    """Signal the worker's process group (it runs in its own session), falling back to the process."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
