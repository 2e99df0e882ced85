"""``EmbeddedStack``: the whole stack on one machine, the thing ``autotraining local``, the e2e tests and
the scripts run.

It starts a moto server on 127.0.0.1 (the AWS stand-in), points this process and its children
at it (``AWS_ENDPOINT_URL``, dummy credentials, region, ``AWS_ACCOUNT_ID_ENDPOINT_MODE=disabled``
and the stack's settings as environment variables, which is how the handlers read them, as in
Lambda), creates the stack's resources with ``autotraining_tools.local.provision.provision``, and
starts the HTTP gateway (API Gateway), the stream poller (the stream's event source mapping),
the scheduler (EventBridge) and the instance agent (the EC2 instance and its systemd unit). It
registers the local invoker, so an asynchronous invoke of the starter function runs
``handlers.starter.handler`` in-process on one background thread (calls queue up and run one at
a time, like an Event invoke of a function with reserved concurrency 1).

The moto backends live in this process, so a stack resets them when it starts: one stack per
process at a time. ``stop()`` (or leaving the ``with`` block) shuts everything down in reverse
order, joins the threads, terminates the worker, stops the server and restores the environment.
"""
from __future__ import annotations

import concurrent.futures
import errno
import importlib
import logging
import os
import socket
import sys
import urllib.request
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from autotraining.aws import Aws
from autotraining.invoke import set_local_invoker
from autotraining.logs import get_logger
from autotraining.settings import Settings
from autotraining_tools.local.context import LambdaContext

log = get_logger(__name__)

HOST = "127.0.0.1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def stack_credentials() -> Any:
    """The embedded stack's AWS credentials as botocore ``Credentials``: what a client signs with locally."""
    from botocore.credentials import Credentials

    return Credentials(DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"], DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


class PortInUse(OSError):
    """A requested port is taken; the message names it."""


def check_port_free(port: int, what: str, host: str = HOST) -> None:
    """Raise ``PortInUse`` when ``port`` cannot be bound on ``host`` (0 always can)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # what the servers set too
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUse(f"{what} port {port} on {host} is already in use") from None
            raise


class EmbeddedStack:
    """Moto server + provisioned resources + gateway + poller + scheduler + instance agent."""

    def __init__(self, port: int = 0, emulator_port: int = 0, batch_size: int = 500, batch_window: float = 2.0,
                 idle_grace: float = 60.0, boot_delay: float = 5.0, schedule_seconds: float = 60.0,
                 generate: bool = False, generate_every: float = 10.0, start_threshold: int | None = None,
                 worker_command: Sequence[str] | None = None, run_agent: bool = True, run_scheduler: bool = True,
                 run_poller: bool = True, settings_overrides: dict[str, Any] | None = None,
                 auth: str = "iam", read_auth: str = "public") -> None:
        if auth not in ("iam", "jwt") or read_auth not in ("public", "authorized"):
            raise ValueError(f"auth must be iam or jwt and read_auth public or authorized, got {auth!r}, {read_auth!r}")
        self.auth = auth
        self.read_auth = read_auth
        self.issuer: Any = None  # the local JWT issuer when auth == "jwt" (stack.issuer.issue() makes a token)
        self.port = port
        self.emulator_port = emulator_port
        self.batch_size = batch_size
        self.batch_window = batch_window
        self.idle_grace = idle_grace
        self.boot_delay = boot_delay
        self.schedule_seconds = schedule_seconds
        self.generate = generate
        self.generate_every = generate_every
        self.start_threshold = start_threshold
        self.worker_command = list(worker_command) if worker_command is not None else None
        self.run_agent = run_agent
        self.run_scheduler = run_scheduler
        self.run_poller = run_poller
        self.settings_overrides = dict(settings_overrides or {})
        self.api_url = ""
        self.emulator_url = ""
        self.settings: Settings = Settings()
        self.aws: Aws = Aws(self.settings)
        self._server: Any = None
        self.gateway: Any = None
        self.poller: Any = None
        self.scheduler: Any = None
        self.agent: Any = None
        self._invoker_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._saved_env: dict[str, str | None] = {}
        self._started = False

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- start -----------------------------------------------------------------------------
    def start(self) -> EmbeddedStack:
        """Start everything; on any failure, stop what was started and re-raise."""
        check_port_free(self.emulator_port, "emulator")
        check_port_free(self.port, "API")
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from autotraining_tools.local.agent import InstanceAgent, worker_command
        from autotraining_tools.local.gateway import Gateway
        from autotraining_tools.local.poller import StreamPoller
        from autotraining_tools.local.provision import provision
        from autotraining_tools.local.scheduler import Scheduler

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log
        self._server = _EmulatorServer(ip_address=HOST, port=self.emulator_port, verbose=False)
        self._server.start()
        if self._server.error is not None:
            failed, self._server = self._server, None
            raise PortInUse(f"emulator port {self.emulator_port} on {HOST} cannot be used: {failed.error}")
        host, port = self._server.get_host_and_port()
        self.emulator_url = f"http://{host}:{port}"
        _reset_emulator(self.emulator_url)  # moto's state is per process: start from nothing

        self._set_env({**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL": self.emulator_url,
                       "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled"})
        overrides: dict[str, Any] = {"endpoint_url": self.emulator_url, "idle_grace": self.idle_grace}
        if self.start_threshold is not None:
            overrides["start_threshold"] = self.start_threshold
        overrides.update(self.settings_overrides)
        base = Settings.from_env(overrides)
        self._set_env({"AWS_DEFAULT_REGION": base.region, "AWS_REGION": base.region})
        provisioned = provision(Aws(base))

        try:
            self.gateway = Gateway(HOST, self.port, access=self._access_policy(base.region))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUse(f"API port {self.port} on {HOST} is already in use") from None
            raise
        self.api_url = self.gateway.url
        self.settings = provisioned.replace(upload_url=f"{self.api_url}/records")
        self.aws = Aws(self.settings)
        self._set_env(self.settings.to_env())  # handlers build their Settings from the environment

        self._invoker_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="invoke")
        set_local_invoker(self._invoke_local)
        self.gateway.start()
        if self.run_poller:
            self.poller = StreamPoller(self.aws, self.settings.records_table, batch_size=self.batch_size,
                                       batch_window=self.batch_window).start()
        if self.run_scheduler:
            self.scheduler = Scheduler(self.aws, schedule_seconds=self.schedule_seconds,
                                       generate=self.generate, generate_every=self.generate_every).start()
        if self.run_agent:
            env = {"TF_CPP_MIN_LOG_LEVEL": "2", **os.environ, **self.settings.to_env(), "TF_USE_LEGACY_KERAS": "1",
                   "PYTHONUNBUFFERED": "1"}
            self.agent = InstanceAgent(self.aws, self.settings.instance_id,
                                       self.worker_command or worker_command(self.idle_grace), env=env,
                                       boot_delay=self.boot_delay).start()
        log.info("stack.ready", api=self.api_url, emulator=self.emulator_url, instance=self.settings.instance_id)

    def _access_policy(self, region: str) -> Any:
        """The gateway's authorization, as the stack's WriteAuthorization/ReadAuthorization parameters set it."""
        from autotraining_tools.local.authorizers import AccessPolicy, LocalIssuer, SigV4Authorizer

        writes: Any
        if self.auth == "jwt":
            self.issuer = LocalIssuer()
            writes = self.issuer.authorizer()
        else:  # IAM: the embedded stack's own credentials are the only identity it knows
            writes = SigV4Authorizer({DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"]: DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]},
                                     region)
        return AccessPolicy(writes=writes, reads=writes if self.read_auth == "authorized" else None)

    # -- the local invoker (Lambda Event invokes) ------------------------------------------
    def _invoke_local(self, function_name: str, event: dict[str, Any]) -> None:
        if function_name != self.settings.starter_function:
            raise LookupError(f"no local function named {function_name!r} (only {self.settings.starter_function!r})")
        pool = self._invoker_pool
        if pool is None:
            raise RuntimeError("the embedded stack is not running")
        try:
            future = pool.submit(_run_starter, event)
        except RuntimeError:  # pool already shut down: the stack is stopping; drop like a throttled event
            log.warning("invoke.dropped_on_stop", function=function_name)
            return
        future.add_done_callback(_log_failure)

    # -- state and stop --------------------------------------------------------------------
    def instance_state(self) -> str:
        out = self.aws.ec2.describe_instances(InstanceIds=[self.settings.instance_id])
        return str(out["Reservations"][0]["Instances"][0]["State"]["Name"])

    def stop(self) -> None:
        """Stop everything that was started (safe to call twice)."""
        if not self._started:
            return
        self._started = False
        for part in ("scheduler", "poller", "agent"):
            component = getattr(self, part)
            if component is not None:
                try:
                    component.stop()
                except Exception:
                    log.exception("stack.stop_failed", part=part)
                setattr(self, part, None)
        if self._invoker_pool is not None:
            self._invoker_pool.shutdown(wait=True, cancel_futures=True)
            self._invoker_pool = None
        set_local_invoker(None)
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        if self._server is not None:
            try:
                self._server.stop()
            except Exception:
                log.exception("stack.stop_failed", part="emulator")
            self._server = None
        self._restore_env()
        log.info("stack.stopped")

    # -- environment -----------------------------------------------------------------------
    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            if key not in self._saved_env:
                self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}


def _emulator_server_class() -> Any:
    from moto.server import ThreadedMotoServer

    class EmulatorServer(ThreadedMotoServer):  # type: ignore[misc]
        """moto's threaded server, except that a failed bind is reported instead of hanging ``start()``.

        (``ThreadedMotoServer.start`` waits for a ready event its thread never sets when the bind
        fails; this relies on that private layout of the pinned moto 5.2.)
        """

        error: BaseException | None = None

        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except BaseException as exc:
                self.error = exc
                self._server_ready_event.set()

        def stop(self) -> None:
            if self.error is None:
                super().stop()

    return EmulatorServer


def _EmulatorServer(**kwargs: Any) -> Any:  # noqa: N802 (a class made lazily: moto is heavy to import)
    return _emulator_server_class()(**kwargs)


def _run_starter(event: dict[str, Any]) -> Any:
    handler = importlib.import_module("handlers.starter").handler
    return handler(event, LambdaContext("autotraining-starter"))


def _log_failure(future: concurrent.futures.Future[Any]) -> None:
    if future.cancelled():
        return
    exc = future.exception()
    if exc is not None:
        log.error("invoke.starter_failed", error=repr(exc), exc_info=exc)


def _reset_emulator(url: str) -> None:
    req = urllib.request.Request(f"{url}/moto-api/reset", method="POST", data=b"")
    # urlopen on the embedded emulator URL (http://127.0.0.1), never a user-chosen scheme
    with urllib.request.urlopen(req, timeout=10) as resp:  # nosec B310
        resp.read()


def main() -> None:  # pragma: no cover - a quick manual check: python -m autotraining_tools.local.stack
    with EmbeddedStack(port=0, emulator_port=0, run_agent=False) as stack:
        print(stack.api_url, stack.emulator_url, stack.instance_state(), file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    main()
