"""`autotraining status`: the model history from the running API, as a table (or JSON), optionally plotted.

One line per committed round, newest first: version, published or REJECTED, the model
serving after it, when, records seen and new, prequential accuracy (the previous model on the
round's new records, before training), held-out accuracy, the gate's decision and the round's
duration. ``--plot FILE.png`` draws accuracy and records seen over versions (matplotlib).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from autotraining.errors import UsageError
from autotraining_tools.commands.options import add_stack_argument, add_token_argument

HELP = "show the model history (table, JSON or a plot)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default=argparse.SUPPRESS,
                        help="base URL of the API, e.g. http://127.0.0.1:8080; when not given, $AUTOTRAINING_API_URL")
    add_stack_argument(parser)
    add_token_argument(parser)
    parser.add_argument("--limit", type=int, default=20, help="newest rounds to show (0: all)")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    parser.add_argument("--plot", metavar="FILE.png", default=None,
                        help="also draw held-out/prequential accuracy and records seen over all versions")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each request")


def run(args: argparse.Namespace) -> int:
    from autotraining_tools.client import ApiError
    from autotraining_tools.commands.options import api_client

    if args.limit < 0:
        raise UsageError("--limit must be 0 (all) or more")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise UsageError("--plot writes a PNG: give a file name ending in .png")
    try:
        client = api_client(args, args.timeout)
        rounds = client.all_history(limit=None if args.limit == 0 or args.plot else args.limit)
    except ApiError as exc:
        raise UsageError(str(exc)) from None
    shown = rounds if args.limit == 0 else rounds[:args.limit]
    if args.format == "json":
        json.dump({"versions": shown}, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_table(shown))
        line = serving_schema_line(rounds)
        if line:
            sys.stdout.write(line + "\n")
    if args.plot:
        try:
            plot_history(rounds, args.plot)
        except OSError as exc:
            raise UsageError(f"cannot write {args.plot}: {exc.strerror}") from None
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0


def serving_schema_line(rounds: list[dict[str, Any]]) -> str:
    """Which schema (name@content hash) the serving model was trained on ('' when unknown)."""
    serving = next((r.get("model_version") for r in rounds if r.get("model_version")), "")
    trained = next((r for r in rounds if r.get("version") == serving), None)
    tag = ((trained or {}).get("metrics") or {}).get("schema")
    return f"serving model {serving} was trained on schema {tag}" if serving and tag else ""


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"


def format_table(rounds: list[dict[str, Any]]) -> str:
    if not rounds:
        return "no training round has been committed yet\n"
    header = ["version", "status", "serving", "created (UTC)", "records", "new", "prequential", "held-out",
              "gate", "secs"]
    rows = []
    for r in rounds:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(r.get("created", 0)) / 1000))
        rows.append([r["version"], "REJECTED" if r.get("rejected") or r.get("status") == "rejected" else "published",
                     r.get("model_version") or "-", created, str(r.get("records_seen", 0)),
                     str(r.get("new_records", 0)), _pct(r.get("prequential_accuracy")),
                     _pct(r.get("holdout_accuracy")), str(r.get("gate") or ""), f"{float(r.get('duration_s') or 0):.1f}"])
    widths = [max(len(h), *(len(row[j]) for row in rows)) for j, h in enumerate(header)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=False)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


def plot_history(rounds: list[dict[str, Any]], path: str) -> None:
    """Accuracy (held-out, prequential) and records seen over versions; rejected rounds marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = sorted(rounds, key=lambda r: r["version"])
    x = [int(r["version"]) for r in ordered]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for key, label, style in (("holdout_accuracy", "held-out accuracy", "o-"),
                              ("prequential_accuracy", "prequential accuracy", "s--")):
        pts = [(v, float(r[key])) for v, r in zip(x, ordered, strict=False) if r.get(key) is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
    rejected = [(v, float(r["holdout_accuracy"])) for v, r in zip(x, ordered, strict=False)
                if r.get("status") == "rejected" and r.get("holdout_accuracy") is not None]
    if rejected:
        ax.plot([p[0] for p in rejected], [p[1] for p in rejected], "rx", markersize=10, mew=2,
                label="rejected round (candidate)")
    ax.set_xlabel("version (training round)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    right = ax.twinx()
    right.plot(x, [int(r.get("records_seen", 0)) for r in ordered], color="gray", alpha=0.6, label="records seen")
    right.set_ylabel("records seen")
    handles, names = ax.get_legend_handles_labels()
    h2, n2 = right.get_legend_handles_labels()
    ax.legend(handles + h2, names + n2, loc="lower right", fontsize=8)
    ax.set_title("Model history" if ordered else "Model history (no rounds yet)")
    if x:
        ax.set_xticks(x if len(x) <= 20 else x[:: max(1, len(x) // 20)])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
