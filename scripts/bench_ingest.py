#!/usr/bin/env python
"""Benchmark: POST /records end to end vs raw BatchWriteItem into the same emulator.

Starts one embedded stack (stream poller, scheduler and instance agent off, so both sides see
the same quiet emulator), then writes --records seeded records twice, from --clients threads:

* raw: ``BatchWriteItem`` calls of 25 items straight into the records table (the floor cost of
  storing the records in this emulator);
* api: ``POST /records`` requests of --chunk records through the gateway and the upload handler
  (parse, validate all, look up known ids, BatchWriteItem in chunks of 25).

Each side writes its own ids. Prints both rates in records/s and the ratio api/raw (goal >= 0.8).

    .venv/bin/python scripts/bench_ingest.py --records 10000
"""
from __future__ import annotations

import argparse
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

from autotraining import logs  # noqa: E402
from autotraining.generator import generate  # noqa: E402
from autotraining.schema import load_schema  # noqa: E402
from load_ingest import post_chunks  # noqa: E402

GOAL = 0.8


def raw_batch_write(aws: Any, table: str, items: list[dict[str, Any]], clients: int) -> float:
    """Write ``items`` with BatchWriteItem (25 per call) from ``clients`` threads; elapsed seconds."""
    work: queue.Queue[list[dict[str, Any]]] = queue.Queue()
    for i in range(0, len(items), 25):
        work.put(items[i:i + 25])
    ddb = aws.dynamodb
    errors: list[str] = []

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
    if errors:
        raise RuntimeError(errors[0])
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000, help="records per side (default 10000)")
    parser.add_argument("--chunk", type=int, default=1000, help="records per POST request (default 1000)")
    parser.add_argument("--clients", type=int, default=1, help="concurrent client threads per side (default 1)")
    parser.add_argument("--seed", type=int, default=11, help="generator seed (default 11)")
    parser.add_argument("--verbose", action="store_true", help="show the stack's info logs on stderr")
    args = parser.parse_args(argv)
    if args.records < 1 or args.clients < 1 or not 1 <= args.chunk <= 1000:
        parser.error("--records and --clients must be >= 1, --chunk 1-1000")
    logs.configure("auto", level=logging.INFO if args.verbose else logging.WARNING)

    from autotraining.local.stack import EmbeddedStack

    schema = load_schema()
    raw_records = generate(schema, args.records, seed=args.seed, id_prefix="raw-")
    api_records = generate(schema, args.records, seed=args.seed, id_prefix="api-")
    raw_items = [r.to_item(schema) for r in raw_records]
    import json

    chunks = [json.dumps([r.to_log_dict(schema) for r in api_records[i:i + args.chunk]]).encode()
              for i in range(0, args.records, args.chunk)]

    print("starting an embedded stack (poller, scheduler and agent off)...", flush=True)
    with EmbeddedStack(port=0, emulator_port=0, run_poller=False, run_scheduler=False, run_agent=False) as stack:
        table = stack.settings.records_table
        print(f"raw BatchWriteItem: {args.records} records, 25 per call, {args.clients} client(s)...", flush=True)
        raw_s = raw_batch_write(stack.aws, table, raw_items, args.clients)
        raw_rate = args.records / raw_s
        print(f"  {raw_s:.2f} s = {raw_rate:,.0f} records/s", flush=True)
        print(f"POST /records: {args.records} records, {args.chunk} per request, {args.clients} client(s)...",
              flush=True)
        stats, api_s = post_chunks(stack.api_url, chunks, args.clients, progress=False)
        if stats.errors or stats.accepted != args.records:
            print(f"  errors: {stats.errors[:3]} (accepted {stats.accepted})", flush=True)
            return 1
        api_rate = args.records / api_s
        print(f"  {api_s:.2f} s = {api_rate:,.0f} records/s", flush=True)
        pages = stack.aws.dynamodb.get_paginator("scan").paginate(TableName=table, Select="COUNT")
        stored = sum(p["Count"] for p in pages)
    ratio = api_rate / raw_rate
    print(f"raw BatchWriteItem {raw_rate:,.0f} records/s | POST /records {api_rate:,.0f} records/s | "
          f"ratio {ratio:.2f} (goal >= {GOAL}) {'MET' if ratio >= GOAL else 'NOT MET'}; table holds {stored}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
