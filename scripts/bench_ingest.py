#!/usr/bin/env python
"""Benchmark: POST /records end to end vs raw BatchWriteItem into the same emulator, with the
same number of concurrent BatchWriteItem writers on both sides.

Starts one embedded stack (stream poller, scheduler and instance agent off, so both sides see
the same quiet emulator). For each writer count W in --writers (default 1 and 2) it writes
--records seeded records per side, in --rounds alternating rounds (raw, api, raw, api, ...)
after a small untimed warm-up:

* raw: ``BatchWriteItem`` calls of 25 items straight into the records table from W threads
  (the floor cost of storing the records in this emulator);
* api: ``POST /records`` requests of --chunk records from one client through the gateway and
  the upload handler (parse, validate all, look up known ids, BatchWriteItem in chunks of 25),
  the handler writing its chunks on W threads (``autotraining.ingest.WRITE_THREADS``, 2 as
  shipped): W BatchWriteItem calls in flight, as on the raw side.

Each side and each W writes its own ids. Prints the like-for-like ratio api/raw for every W
first (goal >= 0.8), then the rates. ``--api-clients N`` adds N-client API runs for reference.

    .venv/bin/python scripts/bench_ingest.py --records 10000
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("AUTOTRAINING_LOG_FORMAT", "json")

from load_ingest import post_chunks  # noqa: E402

from autotraining import logs  # noqa: E402
from autotraining.generator import generate  # noqa: E402
from autotraining.schema import load_schema  # noqa: E402

GOAL = 0.8


def raw_batch_write(aws: Any, table: str, items: list[dict[str, Any]], clients: int) -> float:
    """Write ``items`` with BatchWriteItem (25 per call) from ``clients`` threads; elapsed seconds."""
    work: queue.Queue[list[dict[str, Any]]] = queue.Queue()
    for i in range(0, len(items), 25):
        work.put(items[i:i + 25])
    ddb = aws.dynamodb

    def client() -> None:
        while True:
            try:
                chunk = work.get_nowait()
            except queue.Empty:
                return
            pending = [{"PutRequest": {"Item": item}} for item in chunk]
            while pending:
                out = ddb.batch_write_item(RequestItems={table: pending})
                pending = (out.get("UnprocessedItems") or {}).get(table, [])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def timed_sides(stack: Any, schema: Any, writers: int, records: int, chunk: int, rounds: int, seed: int,
                clients: int = 1) -> tuple[float, float]:
    """(raw seconds, api seconds) for ``records`` per side, ``writers`` BatchWriteItem calls in flight
    on each side (``clients`` API clients, each request written on ``writers`` threads)."""
    from autotraining import ingest

    tag = f"w{writers}c{clients}"
    raw_items = [r.to_item(schema) for r in generate(schema, records, seed=seed, id_prefix=f"raw-{tag}-")]
    api_records = generate(schema, records, seed=seed, id_prefix=f"api-{tag}-")
    chunks = [json.dumps([r.to_log_dict(schema) for r in api_records[i:i + chunk]]).encode()
              for i in range(0, records, chunk)]
    table = stack.settings.records_table
    shipped = ingest.WRITE_THREADS
    ingest.WRITE_THREADS = writers  # the gateway runs the upload handler in this process
    try:
        # Alternate raw and api rounds so drift in machine load hits both sides alike.
        raw_s = api_s = 0.0
        per_round = -(-len(chunks) // rounds)
        for rnd in range(rounds):
            part = chunks[rnd * per_round:(rnd + 1) * per_round]
            if not part:
                break
            lo, hi = rnd * per_round * chunk, min(records, (rnd + 1) * per_round * chunk)
            raw_s += raw_batch_write(stack.aws, table, raw_items[lo:hi], writers * clients)
            stats, elapsed = post_chunks(stack.api_url, part, clients, progress=False)
            api_s += elapsed
            if stats.errors or stats.accepted != hi - lo:
                raise SystemExit(f"POST errors: {stats.errors[:3]} (accepted {stats.accepted} of {hi - lo})")
    finally:
        ingest.WRITE_THREADS = shipped
    print(f"  {writers} writer(s) per side, {clients} API client(s): raw {records / raw_s:,.0f} records/s, "
          f"api {records / api_s:,.0f} records/s", flush=True)
    return raw_s, api_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000, help="records per side and setting (default 10000)")
    parser.add_argument("--chunk", type=int, default=1000, help="records per POST request (default 1000)")
    parser.add_argument("--writers", default="1,2",
                        help="concurrent BatchWriteItem writers per side, comma-separated (default 1,2)")
    parser.add_argument("--api-clients", type=int, default=0,
                        help="also run N API clients (N x 2 writers) against 2N raw writers (default: off)")
    parser.add_argument("--seed", type=int, default=11, help="generator seed (default 11)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating raw/api rounds the records are split into (default 5)")
    parser.add_argument("--verbose", action="store_true", help="show the stack's info logs on stderr")
    args = parser.parse_args(argv)
    try:
        writer_counts = [int(w) for w in args.writers.split(",") if w.strip()]
    except ValueError:
        parser.error(f"--writers {args.writers!r}: comma-separated whole numbers")
    if (args.records < 1 or args.rounds < 1 or not 1 <= args.chunk <= 1000 or not writer_counts
            or min(writer_counts) < 1 or args.api_clients < 0):
        parser.error("--records, --rounds and --writers must be >= 1, --chunk 1-1000, --api-clients >= 0")
    logs.configure("auto", level=logging.INFO if args.verbose else logging.WARNING)

    from autotraining import ingest
    from autotraining_tools.local.stack import EmbeddedStack

    schema = load_schema()
    shipped = ingest.WRITE_THREADS
    print("starting an embedded stack (poller, scheduler and agent off)...", flush=True)
    with EmbeddedStack(port=0, emulator_port=0, run_poller=False, run_scheduler=False, run_agent=False) as stack:
        table = stack.settings.records_table
        # Warm both paths (client creation, first imports) with records that are not timed.
        warm = generate(schema, 100, seed=args.seed + 1, id_prefix="warm-")
        raw_batch_write(stack.aws, table, [r.to_item(schema) for r in warm[:50]], 1)
        post_chunks(stack.api_url, [json.dumps([r.to_log_dict(schema) for r in warm[50:]]).encode()], 1,
                    progress=False)
        runs = {(w, 1): timed_sides(stack, schema, w, args.records, args.chunk, args.rounds, args.seed)
                for w in writer_counts}
        if args.api_clients:
            runs[(shipped, args.api_clients)] = timed_sides(stack, schema, shipped, args.records, args.chunk,
                                                            args.rounds, args.seed, clients=args.api_clients)
        pages = stack.aws.dynamodb.get_paginator("scan").paginate(TableName=table, Select="COUNT")
        stored = sum(p["Count"] for p in pages)
    expected = 100 + 2 * args.records * len(runs)
    print()
    print(f"like for like: POST /records vs raw BatchWriteItem with the same BatchWriteItem calls in flight "
          f"({args.records} records per side, {args.chunk} per request; the handler ships with {shipped} writers)")
    for (w, clients), (raw_s, api_s) in runs.items():
        raw_rate, api_rate = args.records / raw_s, args.records / api_s
        ratio = api_rate / raw_rate
        what = f"{w * clients} writer(s) each side" + (f" ({clients} API clients x {w})" if clients > 1 else "")
        shipped_note = " [as shipped]" if w == shipped and clients == 1 else ""
        print(f"  {what}{shipped_note}: ratio {ratio:.2f} (goal >= {GOAL}) {'MET' if ratio >= GOAL else 'NOT MET'}"
              f"  | raw {raw_rate:,.0f} records/s, POST /records {api_rate:,.0f} records/s")
    if any(raw_s / api_s < GOAL for raw_s, api_s in runs.values()):  # api/raw rate ratio
        print("  (below the goal: per request the API also parses and validates the body and looks up the ids "
              "it already holds, one BatchGetItem per 100 records, before writing; the emulator, the gateway and "
              "the clients share this one Python process)")
    if (shipped, 1) in runs and 1 in writer_counts:
        one_raw = args.records / runs[(1, 1)][0]
        as_shipped = args.records / runs[(shipped, 1)][1]
        print(f"  for reference only (not like for like): the shipped API ({shipped} writers) vs 1 raw writer: "
              f"ratio {as_shipped / one_raw:.2f}")
    print(f"table holds {stored} items (expected {expected})", flush=True)
    return 0 if stored == expected else 1


if __name__ == "__main__":
    sys.exit(main())
