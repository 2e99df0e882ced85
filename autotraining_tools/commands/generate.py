"""`autotraining generate`: synthetic labeled records of the schema, to a file, standard output or the API.

The same ``-n`` and ``--seed`` always give the same records, ids included (see
``autotraining.generator`` for the documented thermal-comfort rule, and for the seeded linear
rule used for any other schema). Formats: JSON Lines (one record per line), CSV (a header line,
then one record per line) or a JSON array (one record per line), each readable by
`autotraining upload`. With ``--api`` the records are posted to ``POST /records`` in chunks,
with the same retries and progress bar as `autotraining upload`.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from autotraining.errors import UsageError

HELP = "generate synthetic labeled records (seeded) to a file, stdout or the API"
FORMATS = ("jsonl", "csv", "json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from autotraining_tools.commands.options import WORDED_DEFAULT, add_token_argument
    from autotraining_tools.commands.upload import add_sending_arguments

    parser.add_argument("-n", "--count", type=int, default=1000, metavar="N", help="how many records to generate")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="random seed; the same N and seed give the same records, ids included")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", default=None, metavar="FILE",
                       help="write the records to FILE (default: standard output, unless --api is given)" + WORDED_DEFAULT)
    where.add_argument("--api", default=None, metavar="URL",
                       help="post the records to POST /records of this API (its base URL) instead of writing them" + WORDED_DEFAULT)
    where.add_argument("--stack", default=None, metavar="NAME",
                       help="like --api, with the API of this CloudFormation stack (its ApiUrl output)" + WORDED_DEFAULT)
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="file format; default: from the --out extension (.csv, .json), else jsonl" + WORDED_DEFAULT)
    parser.add_argument("--id-prefix", default=None, metavar="TEXT",
                        help="prefix of the generated ids (default: 'gen-<seed>-'); ids are the prefix and a counter" + WORDED_DEFAULT)
    parser.add_argument("--schema", default=None, metavar="FILE",
                        help="schema file (default: $AUTOTRAINING_SCHEMA_FILE, else the packaged thermal-comfort schema)" + WORDED_DEFAULT)
    add_sending_arguments(parser, note=" (with --api or --stack)")
    add_token_argument(parser, note=" (with --api or --stack)")


def write_records(rows: Sequence[dict[str, Any]], fields: Sequence[str], fmt: str, out: TextIO) -> None:
    """``rows`` (log dicts: id, features, label, created) in ``fmt``, one record per line in every format."""
    import json

    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n")
        writer.writeheader()
        # booleans as JSON spells them, a missing optional value as an empty cell (rowfiles reads both back)
        writer.writerows({k: ("true" if v is True else "false" if v is False else v) for k, v in r.items()}
                         for r in rows)
    elif fmt == "json":
        out.write("[\n" + ",\n".join(json.dumps(r, separators=(",", ":")) for r in rows) + "\n]\n")
    else:
        out.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)


def run(args: argparse.Namespace) -> int:
    from autotraining.generator import generate
    from autotraining.schema import CREATED_FIELD, ID_FIELD, LABEL_FIELD
    from autotraining_tools.commands.options import schema_from
    from autotraining_tools.commands.upload import send_records

    if args.count < 1:
        raise UsageError("-n must be at least 1")
    schema = schema_from(args)
    fmt = args.format or _format_of(args.out)
    records = generate(schema, args.count, seed=args.seed, id_prefix=args.id_prefix)
    rows = [r.to_log_dict(schema) for r in records]
    if args.api or args.stack:
        result = send_records(args, rows)
        if not args.quiet:
            print(f"sent {result.records} generated records in {result.requests} requests")
        return 0
    fields = (ID_FIELD, *schema.feature_names, LABEL_FIELD, CREATED_FIELD)
    if args.out is None:
        write_records(rows, fields, fmt, sys.stdout)
        return 0
    buf = io.StringIO()
    write_records(rows, fields, fmt, buf)
    try:
        Path(args.out).write_text(buf.getvalue(), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror}") from None
    return 0


def _format_of(path: str | None) -> str:
    suffix = Path(path).suffix.lower() if path else ""
    return {".csv": "csv", ".json": "json"}.get(suffix, "jsonl")
