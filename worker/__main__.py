"""``python -m worker``: the instance's entry point (systemd unit, embedded instance agent).

Same options as ``autotraining worker`` (see ``--help``); settings come from the environment
(``AUTOTRAINING_*``, ``AWS_*``). Any crash prints exactly one JSON line with ``"level": "error"``
(event ``worker.crashed``, the traceback as a field) and exits 1, whatever the log format, so the
stack's WorkerErrors metric filter counts it; systemd's Restart=on-failure then restarts it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import traceback

import worker  # noqa: F401  (sets TF_USE_LEGACY_KERAS before anything imports TensorFlow)
from autotraining.errors import UsageError
from autotraining_tools.commands import worker as command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description=command.__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    command.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return command.run(args)
    except UsageError as exc:
        print(f"worker: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one countable line, then exit 1
        print(crash_line(exc), file=sys.stderr, flush=True)
        return 1


def crash_line(exc: BaseException) -> str:
    """One JSON log line for a crash (no newline inside: the traceback is a field)."""
    return json.dumps({"event": "worker.crashed", "level": "error", "error": f"{type(exc).__name__}: {exc}"[:2000],
                       "exception": "".join(traceback.format_exception(exc))[-20000:],
                       "timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")})


if __name__ == "__main__":
    sys.exit(main())
