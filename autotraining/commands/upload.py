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
import csv
import hashlib
import http.client
import io
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HELP = "post labeled records from a CSV, JSON Lines or JSON file to the API (POST /records)"
FORMATS = ("auto", "csv", "jsonl", "json")
NUMERIC_EXTRA = ("created",)  # non-feature fields that CSV cells must turn into numbers
MAX_SHOWN_ERRORS = 50
# Ends a help text whose default is spelled out in words: renders as nothing, and stops the
# CLI's ArgumentDefaultsHelpFormatter from appending "(default: None)".
WORDED_DEFAULT = "%(default).0s"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the records: CSV with a header, JSON Lines or a JSON array "
                                                     "('-' reads standard input)")
    parser.add_argument("--api", default=None, metavar="URL", help=API_HELP)
    add_sending_arguments(parser)
    parser.add_argument("--format", choices=FORMATS, default="auto",
                        help="format of FILE; auto: from the extension (.csv, .jsonl, .ndjson, .json), else the content")
    parser.add_argument("--schema", default=None, metavar="FILE",
                        help="schema file to validate against (default: $AUTOTRAINING_SCHEMA_FILE, else the packaged "
                             "thermal-comfort schema); must match the API's" + WORDED_DEFAULT)


API_HELP = "base URL of the API, e.g. http://127.0.0.1:8080 (default: $AUTOTRAINING_API_URL)" + WORDED_DEFAULT


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


# -- reading ---------------------------------------------------------------------------------------

class FileError(ValueError):
    """The file cannot be read as records; ``problems`` are (line, message) pairs."""

    def __init__(self, problems: list[tuple[int | None, str]]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass(frozen=True)
class FileRows:
    """Rows as read from a file, with the file line each row starts on."""

    rows: tuple[Any, ...]
    lines: tuple[int, ...]


def detect_format(name: str, text: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    start = text.lstrip()[:1]
    if start == "[":
        return "json"
    if start == "{":
        try:
            json.loads(text)
            return "json"
        except ValueError:
            return "jsonl"
    return "csv"


def read_records(text: str, fmt: str, numeric: Sequence[str]) -> FileRows:
    """Rows of ``text`` in format ``fmt``; CSV cells of the ``numeric`` columns become numbers."""
    if fmt == "csv":
        return _read_csv(text, set(numeric))
    if fmt == "jsonl":
        return _read_jsonl(text)
    return _read_json(text)


def _cell(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)  # 'nan' / 'inf' too: validation then says "must be a finite number"
        except ValueError:
            return text  # validation says "must be a number, got a string"


def _read_csv(text: str, numeric: set[str]) -> FileRows:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    problems: list[tuple[int | None, str]] = []
    start = 1
    for cells in reader:
        line, start = start, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = [h.strip() for h in cells]
            continue
        if len(cells) > len(header):
            problems.append((line, f"{len(cells)} cells but the header names {len(header)} columns"))
            continue
        row = {h: (_cell(c.strip()) if h in numeric else c.strip()) for h, c in zip(header, cells, strict=False) if c.strip()}
        rows.append(row)
        lines.append(line)
    if problems:
        raise FileError(problems)
    return FileRows(tuple(rows), tuple(lines))


def _read_jsonl(text: str) -> FileRows:
    rows, lines, problems = [], [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
            lines.append(n)
        except ValueError as exc:
            problems.append((n, f"not JSON: {exc}"))
    if problems:
        raise FileError(problems)
    return FileRows(tuple(rows), tuple(lines))


def _read_json(text: str) -> FileRows:
    decoder = json.JSONDecoder()
    try:
        doc = decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise FileError([(exc.lineno, f"not JSON: {exc.msg} (column {exc.colno})")]) from None
    pos = _skip(text, 0)
    if isinstance(doc, dict) and set(doc) == {"records"} and isinstance(doc["records"], list):
        _, pos = decoder.raw_decode(text, _skip(text, pos + 1))  # the key
        pos = _skip(text, _skip(text, pos) + 1)  # past ':'
    elif not isinstance(doc, list):
        raise FileError([(1, 'a JSON file must hold an array of records or {"records": [...]}')])
    rows, lines = [], []
    line, counted = 1, 0
    pos = _skip(text, pos + 1)  # past '['
    while text[pos] != "]":
        value, end = decoder.raw_decode(text, pos)
        line += text.count("\n", counted, pos)
        counted = pos
        rows.append(value)
        lines.append(line)
        pos = _skip(text, end)
        if text[pos] == ",":
            pos = _skip(text, pos + 1)
    return FileRows(tuple(rows), tuple(lines))


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def fill_ids(rows: Sequence[Any], lines: Sequence[int], text: str) -> list[Any]:
    """Give rows without an ``id`` one from the file's content and the line: a re-run sends the same ids."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return [{**r, "id": f"up-{digest}-{line}"} if isinstance(r, dict) and "id" not in r else r
            for r, line in zip(rows, lines, strict=True)]


# -- sending ---------------------------------------------------------------------------------------

class Transient(Exception):
    """A request failed in a way worth retrying (no connection, timeout, 429, 5xx)."""


class Refused(Exception):
    """The API refused a request (4xx other than 429); ``body`` is its JSON answer when there is one."""

    def __init__(self, message: str, status: int, body: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def post_records(url: str, rows: list[dict[str, Any]], timeout: float) -> dict[str, Any]:
    """One ``POST /records``; raises ``Transient`` or ``Refused``."""
    request = urllib.request.Request(url, data=json.dumps(rows).encode("utf-8"), method="POST",
                                     headers={"content-type": "application/json", "accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        message = body.get("message") if isinstance(body, dict) else raw[:200].decode("utf-8", "replace")
        if exc.code == 429 or exc.code >= 500:
            raise Transient(f"HTTP {exc.code}: {message}") from None
        raise Refused(f"HTTP {exc.code}: {message}", exc.code, body) from None
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
        raise Transient(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None
    except ValueError:
        raise Refused(f"{url} did not answer JSON; is it the autotraining API?", 0, None) from None


@dataclass(frozen=True)
class SendResult:
    records: int
    requests: int
    attempts: int


def send_records(args: argparse.Namespace, rows: Sequence[dict[str, Any]], lines: Sequence[int] | None = None,
                 post: Callable[[str, list[dict[str, Any]], float], dict[str, Any]] = post_records) -> SendResult:
    """Post ``rows`` in chunks of ``args.chunk`` with retries and a progress bar; UsageError on failure."""
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential
    from tqdm import tqdm

    from autotraining.cli import UsageError

    if args.chunk < 1 or args.retries < 1 or args.backoff < 0 or args.timeout <= 0:
        raise UsageError("--chunk and --retries must be at least 1, --backoff >= 0 and --timeout > 0")
    url = api_url(args) + "/records"
    sent = requests = attempts = 0
    with tqdm(total=len(rows), unit="rec", desc="upload", disable=True if args.quiet else None,
              file=sys.stderr) as bar:
        for start in range(0, len(rows), args.chunk):
            chunk = list(rows[start:start + args.chunk])
            try:
                for attempt in Retrying(stop=stop_after_attempt(args.retries), reraise=True,
                                        wait=wait_exponential(multiplier=args.backoff, max=10.0),
                                        retry=retry_if_exception_type(Transient)):
                    with attempt:
                        attempts += 1
                        answer = post(url, chunk, args.timeout)
            except Transient as exc:
                raise UsageError(f"gave up after {args.retries} attempts ({exc}); {sent} of {len(rows)} records "
                                 "were sent; running the same upload again is safe") from None
            except Refused as exc:
                raise UsageError(_refusal(exc, lines, start, sent, len(rows))) from None
            if not isinstance(answer, dict) or answer.get("accepted") != len(chunk):
                raise UsageError(f"the API accepted {answer.get('accepted') if isinstance(answer, dict) else '?'} "
                                 f"of {len(chunk)} records in one request; is {url} the autotraining API?")
            sent += len(chunk)
            requests += 1
            bar.update(len(chunk))
    return SendResult(records=sent, requests=requests, attempts=attempts)


def _refusal(exc: Refused, lines: Sequence[int] | None, offset: int, sent: int, total: int) -> str:
    details = []
    errors = exc.body.get("errors") if isinstance(exc.body, dict) else None
    for e in (errors or [])[:5]:
        index = e.get("index")
        where = f"line {lines[offset + index]}" if lines is not None and isinstance(index, int) else (
            f"record {offset + index + 1}" if isinstance(index, int) else "request")
        details.append(f"{where}" + (f", field {e.get('field')!r}" if e.get("field") else "") + f": {e.get('message')}")
    hint = " (try a smaller --chunk)" if exc.status == 413 else ""
    # The API's own message counts rows within the request; the details say the file lines instead.
    more = f" (and {len(errors or []) - len(details)} more)" if len(errors or []) > len(details) else ""
    what = f"HTTP {exc.status}: " + "; ".join(details) + more if details else f"{exc}{hint}"
    return f"the API refused a request: {what}; {sent} of {total} records were sent before it"


def api_url(args: argparse.Namespace) -> str:
    from autotraining.cli import UsageError
    from autotraining.settings import Settings, SettingsError

    try:
        url = args.api or Settings.from_env().api_url
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    if not url:
        raise UsageError("give the API's base URL with --api URL (or set AUTOTRAINING_API_URL)")
    if not str(url).startswith(("http://", "https://")):
        raise UsageError(f"the API URL must start with http:// or https://, got {url!r}")
    return str(url).rstrip("/")


def schema_from(args: argparse.Namespace) -> Any:
    from autotraining.cli import UsageError
    from autotraining.schema import SchemaError, load_schema
    from autotraining.settings import Settings, SettingsError

    try:
        return load_schema(args.schema if args.schema is not None else Settings.from_env().schema_file)
    except (SchemaError, SettingsError) as exc:
        raise UsageError(str(exc)) from None


# -- the command -----------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    from autotraining.cli import UsageError
    from autotraining.validation import InvalidInput, validate_records

    name = "stdin" if args.file == "-" else args.file
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {name}: {getattr(exc, 'strerror', None) or exc}") from None
    schema = schema_from(args)
    api_url(args)  # a missing URL is reported before any work
    fmt = detect_format(name, text) if args.format == "auto" else args.format
    try:
        data = read_records(text, fmt, (*schema.feature_names, *NUMERIC_EXTRA))
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
