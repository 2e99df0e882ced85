"""Rows from files people have: CSV (a header line), JSON Lines, or a JSON array — with line numbers.

The ``upload`` and ``predict`` commands read their input here, so both report a bad row by the
LINE of the file it came from, never by an index into a request: ``read_rows`` remembers the
line each row starts on, and ``describe_errors`` turns the API's (or local validation's)
``{"index", "field", "message"}`` errors back into ``line N, field 'x': message``.

>>> data = read_rows('temp,rh\\n70,40\\n\\n71,45\\n', name="rows.csv")
>>> data.rows, data.lines
(({'temp': 70, 'rh': 40}, {'temp': 71, 'rh': 45}), (2, 4))
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("auto", "csv", "jsonl", "json")
TEXT_COLUMNS = ("id", "label")  # CSV cells of these columns stay strings; the rest become numbers when they parse
CONTAINER_KEYS = ("records", "rows")  # a JSON file may wrap its array in {"records": [...]} or {"rows": [...]}


class FileError(ValueError):
    """The file cannot be read as rows; ``problems`` are (line, message) pairs."""

    def __init__(self, problems: list[tuple[int | None, str]]) -> None:
        line, message = problems[0]
        super().__init__(f"line {line}: {message}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        self.problems = problems


@dataclass(frozen=True)
class FileRows:
    """Rows as read from a file, with the file line each row starts on."""

    rows: tuple[Any, ...]
    lines: tuple[int, ...]


def detect_format(name: str, text: str) -> str:
    """From the file name (.csv, .jsonl/.ndjson, .json), else from the content."""
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


def read_rows(text: str, fmt: str = "auto", name: str = "") -> FileRows:
    """Rows of ``text`` in format ``fmt`` (``auto``: ``detect_format``); raises ``FileError``."""
    if fmt == "auto":
        fmt = detect_format(name, text)
    if fmt == "csv":
        return _read_csv(text)
    if fmt == "jsonl":
        return _read_jsonl(text)
    return _read_json(text)


def describe_errors(errors: Sequence[Mapping[str, Any]], lines: Sequence[int] | None, offset: int = 0,
                    most: int = 5) -> str:
    """``line N, field 'x': message; ...`` for errors whose ``index`` counts rows from ``offset``."""
    parts = []
    for e in list(errors)[:most]:
        index = e.get("index")
        if isinstance(index, int):
            where = f"line {lines[offset + index]}" if lines is not None else f"record {offset + index + 1}"
        else:
            where = "request"
        parts.append(where + (f", field {e.get('field')!r}" if e.get("field") else "") + f": {e.get('message')}")
    more = f" (and {len(errors) - most} more)" if len(errors) > most else ""
    return "; ".join(parts) + more


def _cell(text: str) -> Any:
    if text.lower() in ("true", "false"):  # a boolean feature's cell (an empty cell is a missing value)
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)  # 'nan' / 'inf' too: validation then says "must be a finite number"
        except ValueError:
            return text  # validation says "must be a number, got a string"


def _read_csv(text: str) -> FileRows:
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
        rows.append({h: (c.strip() if h in TEXT_COLUMNS else _cell(c.strip()))
                     for h, c in zip(header, cells, strict=False) if c.strip()})
        lines.append(line)
    if problems:
        raise FileError(problems)
    return FileRows(tuple(rows), tuple(lines))


def _read_jsonl(text: str) -> FileRows:
    rows: list[Any] = []
    lines: list[int] = []
    problems: list[tuple[int | None, str]] = []
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
    """A JSON array (or one wrapped as ``{"records"|"rows": [...]}``), each element's starting line kept."""
    decoder = json.JSONDecoder()
    try:
        doc = decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise FileError([(exc.lineno, f"not JSON: {exc.msg} (column {exc.colno})")]) from None
    pos = _skip(text, 0)
    if isinstance(doc, dict) and len(doc) == 1 and next(iter(doc)) in CONTAINER_KEYS \
            and isinstance(next(iter(doc.values())), list):
        _, pos = decoder.raw_decode(text, _skip(text, pos + 1))  # the key
        pos = _skip(text, _skip(text, pos) + 1)  # past ':'
    elif not isinstance(doc, list):
        raise FileError([(1, 'a JSON file must hold an array of rows, {"records": [...]} or {"rows": [...]}')])
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
