#!/usr/bin/env python
"""Benchmark: POST /records end to end vs raw BatchWriteItem into the same emulator.

Starts one embedded stack (stream poller, scheduler and instance agent off, so both sides see
the same quiet emulator), then writes --records seeded records twice, from --clients threads,
in --rounds alternating rounds (raw, api, raw, api, ...) after a small untimed warm-up:

* raw: ``BatchWriteItem`` calls of 25 items straight into the records table (the floor cost of
  storing the records in this emulator);
* api: ``POST /records`` requests of --chunk records through the gateway and the upload handler
  (parse, validate all, look up known ids, BatchWriteItem in chunks of 25).

Each side writes its own ids. Prints both rates in records/s and the ratio api/raw (goal >= 0.8).

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000, help="records per side (default 10000)")
    parser.add_argument("--chunk", type=int, default=1000, help="records per POST request (default 1000)")
    parser.add_argument("--clients", type=int, default=1, help="concurrent client threads per side (default 1)")
    parser.add_argument("--seed", type=int, default=11, help="generator seed (default 11)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating raw/api rounds the records are split into (default 5)")
    parser.add_argument("--verbose", action="store_true", help="show the stack's info logs on stderr")
    args = parser.parse_args(argv)
    if args.records < 1 or args.clients < 1 or args.rounds < 1 or not 1 <= args.chunk <= 1000:
        parser.error("--records, --clients and --rounds must be >= 1, --chunk 1-1000")
    logs.configure("auto", level=logging.INFO if args.verbose else logging.WARNING)

    from autotraining.local.stack import EmbeddedStack

    schema = load_schema()
    raw_records = generate(schema, args.records, seed=args.seed, id_prefix="raw-")
    api_records = generate(schema, args.records, seed=args.seed, id_prefix="api-")
    raw_items = [r.to_item(schema) for r in raw_records]
    chunks = [json.dumps([r.to_log_dict(schema) for r in api_records[i:i + args.chunk]]).encode()
              for i in range(0, args.records, args.chunk)]

    print("starting an embedded stack (poller, scheduler and agent off)...", flush=True)
    with EmbeddedStack(port=0, emulator_port=0, run_poller=False, run_scheduler=False, run_agent=False) as stack:
        table = stack.settings.records_table
        # Warm both paths (client creation, first imports) with records that are not timed.
        warm = generate(schema, 100, seed=args.seed + 1, id_prefix="warm-")
        raw_batch_write(stack.aws, table, [r.to_item(schema) for r in warm[:50]], 1)
        post_chunks(stack.api_url, [json.dumps([r.to_log_dict(schema) for r in warm[50:]]).encode()], 1,
                    progress=False)
        # Alternate raw and api rounds so drift in machine load hits both sides alike.
        raw_s = api_s = 0.0
        per_round = -(-len(chunks) // args.rounds)
        for rnd in range(args.rounds):
            part = chunks[rnd * per_round:(rnd + 1) * per_round]
            if not part:
                break
            lo, hi = rnd * per_round * args.chunk, min(args.records, (rnd + 1) * per_round * args.chunk)
            raw_s += raw_batch_write(stack.aws, table, raw_items[lo:hi], args.clients)
            stats, elapsed = post_chunks(stack.api_url, part, args.clients, progress=False)
            api_s += elapsed
            if stats.errors or stats.accepted != hi - lo:
                print(f"  POST errors: {stats.errors[:3]} (accepted {stats.accepted} of {hi - lo})", flush=True)
                return 1
            print(f"  round {rnd + 1}/{args.rounds}: {hi - lo} records each; raw {raw_s:.2f} s, api {api_s:.2f} s "
                  "so far", flush=True)
        raw_rate, api_rate = args.records / raw_s, args.records / api_s
        pages = stack.aws.dynamodb.get_paginator("scan").paginate(TableName=table, Select="COUNT")
        stored = sum(p["Count"] for p in pages)
    print(f"raw BatchWriteItem: {args.records} records, 25 per call, {args.clients} client(s): "
          f"{raw_s:.2f} s = {raw_rate:,.0f} records/s", flush=True)
    print(f"POST /records: {args.records} records, {args.chunk} per request, {args.clients} client(s): "
          f"{api_s:.2f} s = {api_rate:,.0f} records/s", flush=True)
    ratio = api_rate / raw_rate
    print(f"raw BatchWriteItem {raw_rate:,.0f} records/s | POST /records {api_rate:,.0f} records/s | "
          f"ratio {ratio:.2f} (goal >= {GOAL}) {'MET' if ratio >= GOAL else 'NOT MET'}; table holds {stored}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
