"""`autotraining predict`: predictions from the running API for rows in a file or on stdin.

Rows are CSV (a header line naming the features), JSON Lines, or a JSON array (or
``{"rows": [...]}``) of feature objects; they are sent to ``POST /predict`` in chunks. Output
is a table (features, predicted label, every label's probability) or the API's JSON.
Invalid rows are reported by their line in the input.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from autotraining.errors import UsageError
from autotraining_tools.commands.options import add_api_argument, api_client, read_input

HELP = "predict labels for rows from a file or stdin through the API"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", default="-", metavar="FILE",
                        help="rows to predict: CSV with a header, JSON Lines or a JSON array; '-' reads stdin")
    add_api_argument(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="table: one line per row; json: the API's answer")
    parser.add_argument("--chunk", type=int, default=1000, help="rows per request")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each request")


def run(args: argparse.Namespace) -> int:
    from autotraining.schema import RESERVED_FIELDS
    from autotraining_tools.client import ApiError
    from autotraining_tools.rowfiles import FileError, read_rows

    if args.chunk < 1:
        raise UsageError("--chunk must be at least 1")
    client = api_client(args, args.timeout)
    name, text = read_input(args.file)
    try:
        data = read_rows(text, "auto", name)
    except FileError as exc:
        raise UsageError(f"{name} {exc}") from None
    if not data.rows:
        raise UsageError(f"{name} holds no rows")
    # id, label and created are not features: keep them here (a given label is compared with the
    # prediction in the table), send the rest, so `autotraining generate | autotraining predict` works.
    sendable = [{k: v for k, v in row.items() if k not in RESERVED_FIELDS} if isinstance(row, dict) else row
                for row in data.rows]
    versions: list[str] = []
    predictions: list[dict[str, Any]] = []
    for start in range(0, len(sendable), args.chunk):
        try:
            answer = client.predict(sendable[start:start + args.chunk])
        except ApiError as exc:
            raise UsageError(_describe(exc, name, data.lines, start)) from None
        versions.append(answer["version"])
        predictions.extend(answer["predictions"])
    if len(set(versions)) > 1:  # the model moved while we were sending: say which row got which
        chunk_version = [v for v in versions for _ in range(args.chunk)]
        for i, p in enumerate(predictions):
            p["version"] = chunk_version[i]
    if args.format == "json":
        json.dump({"version": versions[-1] if versions else None, "predictions": predictions}, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_table(list(data.rows), predictions, versions))
    return 0


def _describe(exc: Any, name: str, lines: tuple[int, ...], offset: int) -> str:
    from autotraining_tools.rowfiles import describe_errors

    errors = exc.body.get("errors") if isinstance(exc.body, dict) else None
    if exc.status in (400, 413) and errors:
        return f"{name}: " + describe_errors(errors, lines, offset)
    return str(exc)


def format_table(rows: list[dict[str, Any]], predictions: list[dict[str, Any]], versions: list[str]) -> str:
    if not predictions:
        return "no rows\n"
    labels = list(predictions[0]["probabilities"])
    features = [k for k in rows[0] if k not in ("id", "label", "created")]
    given = any("label" in row for row in rows)
    header = ["#", *features, *(["given"] if given else []), "label", *[f"p({lb})" for lb in labels]]
    body = []
    for i, (row, p) in enumerate(zip(rows, predictions, strict=False), start=1):
        body.append([str(i), *[_cell(row.get(f)) for f in features], *([str(row.get("label", ""))] if given else []),
                     p["label"], *[f"{p['probabilities'][lb]:.4f}" for lb in labels]])
    widths = [max(len(h), *(len(r[j]) for r in body)) for j, h in enumerate(header)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(header, widths, strict=False))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=False)) for r in body]
    model = ", ".join(dict.fromkeys(versions))
    summary = f"model version {model}, {len(predictions)} rows"
    labeled = [(row["label"], p["label"]) for row, p in zip(rows, predictions, strict=False) if "label" in row]
    if labeled:
        right = sum(a == b for a, b in labeled)
        summary += f", {right}/{len(labeled)} given labels predicted ({100 * right / len(labeled):.1f}%)"
    return "\n".join(lines) + f"\n{summary}\n"


def _cell(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
