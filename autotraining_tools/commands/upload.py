"""`autotraining upload`: post labeled records from a file to the API's ``POST /records``, in chunks.

The file is CSV (a header line naming the fields), JSON Lines (one record per line) or JSON (an
array of records, or ``{"records": [...]}``); the format is taken from the file name
(.csv, .jsonl/.ndjson, .json) or else from the content. Every record is validated locally
first, with the same rules as the API; if any is invalid, each bad field is reported by its
LINE in the file and nothing is sent. Records without an ``id`` get one derived from the file's
content and the line, so re-running the same upload (or a retried request) stores nothing
twice. Connection failures, 429 and 5xx answers are retried with backoff; a progress bar shows
the records sent.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autotraining.errors import UsageError
from autotraining_tools.client import ApiError
from autotraining_tools.commands.options import (
    WORDED_DEFAULT,
    add_api_argument,
    api_client,
    api_url,
    read_input,
    schema_from,
)
from autotraining_tools.rowfiles import FORMATS, FileError, describe_errors, detect_format, read_rows

HELP = "post labeled records from a CSV, JSON Lines or JSON file to the API (POST /records)"
MAX_SHOWN_ERRORS = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the records: CSV with a header, JSON Lines or a JSON array "
                                                     "('-' reads standard input)")
    add_api_argument(parser)
    add_sending_arguments(parser)
    parser.add_argument("--format", choices=FORMATS, default="auto",
                        help="format of FILE; auto: from the extension (.csv, .jsonl, .ndjson, .json), else the content")
    parser.add_argument("--schema", default=None, metavar="FILE",
                        help="schema file to validate against (default: $AUTOTRAINING_SCHEMA_FILE, else the packaged "
                             "thermal-comfort schema); must match the API's" + WORDED_DEFAULT)


def add_sending_arguments(parser: argparse.ArgumentParser, note: str = "") -> None:
    """Options of the HTTP sending, shared with `autotraining generate --api` (``note`` ends each help)."""
    parser.add_argument("--chunk", type=int, default=1000, metavar="N",
                        help="records per request (the API accepts at most 1000)" + note)
    parser.add_argument("--retries", type=int, default=6, metavar="N",
                        help="attempts per request when the connection fails or the API answers 429 or 5xx" + note)
    parser.add_argument("--backoff", type=float, default=0.5, metavar="SECONDS",
                        help="first wait between attempts; doubles each time, at most 10 s" + note)
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="seconds to wait for each request" + note)
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary line" + note)


def fill_ids(rows: Sequence[Any], lines: Sequence[int], text: str) -> list[Any]:
    """Give rows without an ``id`` one from the file's content and the line: a re-run sends the same ids."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return [{**r, "id": f"up-{digest}-{line}"} if isinstance(r, dict) and "id" not in r else r
            for r, line in zip(rows, lines, strict=True)]


# -- sending ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SendResult:
    records: int
    requests: int
    attempts: int


def send_records(args: argparse.Namespace, rows: Sequence[dict[str, Any]], lines: Sequence[int] | None = None
                 ) -> SendResult:
    """Post ``rows`` in chunks of ``args.chunk`` with retries and a progress bar; UsageError on failure."""
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential
    from tqdm import tqdm

    if args.chunk < 1 or args.retries < 1 or args.backoff < 0 or args.timeout <= 0:
        raise UsageError("--chunk and --retries must be at least 1, --backoff >= 0 and --timeout > 0")
    client = api_client(args, args.timeout)
    sent = requests = attempts = 0
    with tqdm(total=len(rows), unit="rec", desc="upload", disable=True if args.quiet else None,
              file=sys.stderr) as bar:
        for start in range(0, len(rows), args.chunk):
            chunk = list(rows[start:start + args.chunk])
            try:
                for attempt in Retrying(stop=stop_after_attempt(args.retries), reraise=True,
                                        wait=wait_exponential(multiplier=args.backoff, max=10.0),
                                        retry=retry_if_exception(_transient)):
                    with attempt:
                        attempts += 1
                        answer = client.post_records(chunk)
            except ApiError as exc:
                if exc.transient:
                    raise UsageError(f"gave up after {args.retries} attempts ({exc}); {sent} of {len(rows)} records "
                                     "were sent; running the same upload again is safe") from None
                raise UsageError(_refusal(exc, lines, start, sent, len(rows))) from None
            if not isinstance(answer, dict) or answer.get("accepted") != len(chunk):
                raise UsageError(f"the API accepted {answer.get('accepted') if isinstance(answer, dict) else '?'} "
                                 f"of {len(chunk)} records in one request; is {client.base_url} the autotraining API?")
            sent += len(chunk)
            requests += 1
            bar.update(len(chunk))
    return SendResult(records=sent, requests=requests, attempts=attempts)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.transient


def _refusal(exc: ApiError, lines: Sequence[int] | None, offset: int, sent: int, total: int) -> str:
    errors = exc.body.get("errors") if isinstance(exc.body, dict) else None
    if errors:
        # The API's own message counts rows within the request; the details say the file lines instead.
        what = f"HTTP {exc.status}: " + describe_errors(errors, lines, offset)
    else:
        what = f"{exc}" + (" (try a smaller --chunk)" if exc.status == 413 else "")
    return f"the API refused a request: {what}; {sent} of {total} records were sent before it"


# -- the command -----------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    from autotraining.validation import InvalidInput, validate_records

    name, text = read_input(args.file)
    schema = schema_from(args)
    api_url(args)  # a missing URL is reported before any work
    fmt = detect_format(name, text) if args.format == "auto" else args.format
    try:
        data = read_rows(text, fmt, name)
    except FileError as exc:
        _print_problems(name, exc.problems)
        raise UsageError(f"{name} is not readable as {fmt}; nothing was sent") from None
    if not data.rows:
        raise UsageError(f"{name} holds no records; nothing was sent")
    rows = fill_ids(data.rows, data.lines, text)
    try:
        records = validate_records(rows, schema, max_rows=len(rows))
    except InvalidInput as exc:
        problems = [(data.lines[e.index] if e.index is not None else None,
                     (f"field {e.field!r}: " if e.field else "") + e.message) for e in exc.errors]
        _print_problems(name, problems)
        bad = len({e.index for e in exc.errors})
        raise UsageError(f"{bad} of {len(rows)} records in {name} are invalid; nothing was sent") from None
    first_line = {r["id"]: line for r, line in zip(reversed(rows), reversed(data.lines), strict=True)}
    payload = [r.to_log_dict(schema) for r in records]
    result = send_records(args, payload, [first_line[r.id] for r in records])
    if not args.quiet:
        dropped = len(rows) - len(records)
        print(f"sent {result.records} records from {name} in {result.requests} requests"
              + (f" ({dropped} rows repeated an earlier id and were not sent)" if dropped else ""))
    return 0


def _print_problems(name: str, problems: list[tuple[int | None, str]]) -> None:
    for line, message in problems[:MAX_SHOWN_ERRORS]:
        print(f"{name}:{line if line is not None else '-'}: {message}", file=sys.stderr)
    if len(problems) > MAX_SHOWN_ERRORS:
        print(f"{name}: ... and {len(problems) - MAX_SHOWN_ERRORS} more problems", file=sys.stderr)
