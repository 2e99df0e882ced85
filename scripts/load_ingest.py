#!/usr/bin/env python
"""Load test of the ingest path: concurrent clients POST /records, then check nothing was lost or doubled.

Starts an embedded stack (or uses a running one with --api/--emulator), sends --records seeded
synthetic records in --chunk-record requests from --clients threads (each with its own
keep-alive connection), and prints throughput, p50/p99 request latency and errors. Then it
waits (bounded by --timeout) for the stream side to catch up and checks that the records
table, the S3 log (lines and distinct ids) and the number of records sent all agree, counting
only this run's ids. Exit status 0 when they agree, 1 otherwise.

    .venv/bin/python scripts/load_ingest.py --clients 4 --records 10000 --chunk 1000
"""
from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("AUTOTRAINING_LOG_FORMAT", "json")

from autotraining import logs  # noqa: E402
from autotraining.generator import generate  # noqa: E402
from autotraining.schema import load_schema  # noqa: E402
from autotraining_tools.signing import sign_headers, user_credentials, user_region  # noqa: E402


@dataclass
class ClientStats:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    accepted: int = 0


def post_chunks(api_url: str, chunks: list[bytes], clients: int, progress: bool = True) -> tuple[ClientStats, float]:
    """POST every chunk to api_url/records from ``clients`` threads; (merged stats, elapsed seconds)."""
    work: queue.Queue[bytes] = queue.Queue()
    for chunk in chunks:
        work.put(chunk)
    stats = [ClientStats() for _ in range(clients)]
    done = [0]
    lock = threading.Lock()
    split = urlsplit(api_url)
    records_url = f"{api_url.rstrip('/')}/records"
    creds, region = user_credentials(), user_region()

    def client(mine: ClientStats) -> None:
        conn = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port or 80, timeout=120)
        while True:
            try:
                body = work.get_nowait()
            except queue.Empty:
                break
            started = time.perf_counter()
            try:
                headers = {"content-type": "application/json"}
                if creds is not None:  # SigV4, as the stack's IAM authorizer requires (autotraining_tools.signing)
                    headers.update(sign_headers("POST", records_url, body, creds, region, headers))
                conn.request("POST", "/records", body=body, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                mine.latencies.append(time.perf_counter() - started)
                if resp.status == 201:
                    mine.accepted += int(json.loads(payload)["accepted"])
                else:
                    mine.errors.append(f"HTTP {resp.status}: {payload[:200]!r}")
            except (OSError, http.client.HTTPException) as exc:
                mine.latencies.append(time.perf_counter() - started)
                mine.errors.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port or 80, timeout=120)
            with lock:
                done[0] += 1
                if progress and (done[0] % max(1, len(chunks) // 10) == 0 or done[0] == len(chunks)):
                    print(f"  sent {done[0]}/{len(chunks)} requests", flush=True)
        conn.close()

    threads = [threading.Thread(target=client, args=(s,)) for s in stats]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    merged = ClientStats()
    for s in stats:
        merged.latencies += s.latencies
        merged.errors += s.errors
        merged.accepted += s.accepted
    return merged, elapsed


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def count_stored(aws: Any, table: str, bucket: str, id_prefix: str) -> tuple[int, int, int]:
    """(table items, log lines, distinct log ids) whose id starts with ``id_prefix``."""
    from autotraining.segments import LOG_PREFIX

    pages = aws.dynamodb.get_paginator("scan").paginate(
        TableName=table, Select="COUNT", FilterExpression="begins_with(#id, :p)",
        ExpressionAttributeNames={"#id": "id"}, ExpressionAttributeValues={":p": {"S": id_prefix}})
    items = sum(page["Count"] for page in pages)
    import gzip

    lines, ids = 0, set()
    for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=LOG_PREFIX):
        for obj in page.get("Contents", []):
            data = gzip.decompress(aws.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            for line in data.decode("utf-8").splitlines():
                rid = json.loads(line)["id"]
                if rid.startswith(id_prefix):
                    lines += 1
                    ids.add(rid)
    return items, lines, len(ids)


def discover(emulator_url: str, prefix: str) -> tuple[Any, str, str]:
    """An Aws for a running emulator and the names of its records table and data bucket.

    The names come from the emulator's CloudFormation stack ``prefix`` (how the embedded run
    provisions), else from the default names.
    """
    from autotraining.aws import Aws
    from autotraining.settings import Settings

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
    aws = Aws(Settings(endpoint_url=emulator_url))
    try:
        from autotraining_tools.deploy.template import settings_from_outputs

        stack = aws.client("cloudformation").describe_stacks(StackName=prefix)["Stacks"][0]
        named = settings_from_outputs({o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
                                      aws.settings)
        return Aws(named), named.records_table, named.bucket
    except Exception as exc:  # no stack: fall back to the default names
        print(f"  (no CloudFormation stack {prefix!r} in the emulator: {exc!r}; using default names)", flush=True)
    table = f"{prefix}-records"
    buckets = [b["Name"] for b in aws.s3.list_buckets()["Buckets"] if b["Name"].startswith(f"{prefix}-data")]
    if not buckets:
        raise SystemExit(f"no bucket named {prefix}-data* in the emulator at {emulator_url}")
    return aws, table, buckets[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads (default 4)")
    parser.add_argument("--records", type=int, default=10_000, help="records to send in total (default 10000)")
    parser.add_argument("--chunk", type=int, default=1000, help="records per request (default 1000, the limit)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument("--api", default="", help="API URL of a running `autotraining local` (default: start one)")
    parser.add_argument("--emulator", default="", help="emulator URL of that running stack (needed with --api)")
    parser.add_argument("--prefix", default="autotraining", help="resource name prefix of a running stack")
    parser.add_argument("--batch-size", type=int, default=500, help="stream batch size of the started stack")
    parser.add_argument("--batch-window", type=float, default=2.0, help="stream batch window of the started stack")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for the table and the log to catch up (default 120)")
    parser.add_argument("--verbose", action="store_true", help="show the stack's info logs on stderr")
    args = parser.parse_args(argv)
    logs.configure("auto", level=logging.INFO if args.verbose else logging.WARNING)
    if args.api and not args.emulator:
        parser.error("--api needs --emulator (to count the table and the log)")
    if args.clients < 1 or args.records < 1 or not 1 <= args.chunk <= 1000:
        parser.error("--clients and --records must be >= 1, --chunk 1-1000")

    schema = load_schema()
    id_prefix = f"load-{uuid.uuid4().hex[:8]}-"
    records = [r.to_log_dict(schema) for r in generate(schema, args.records, seed=args.seed, id_prefix=id_prefix)]
    chunks = [json.dumps(records[i:i + args.chunk]).encode() for i in range(0, len(records), args.chunk)]

    stack = None
    if args.api:
        api_url = args.api.rstrip("/")
        aws, table, bucket = discover(args.emulator, args.prefix)
    else:
        from autotraining_tools.local.stack import EmbeddedStack

        print("starting an embedded stack...", flush=True)
        stack = EmbeddedStack(port=0, emulator_port=0, batch_size=args.batch_size, batch_window=args.batch_window,
                              run_agent=False, schedule_seconds=3600.0).start()
        api_url, aws, table, bucket = stack.api_url, stack.aws, stack.settings.records_table, stack.settings.bucket
        print(f"  API {api_url}, emulator {stack.emulator_url}", flush=True)
    try:
        print(f"sending {args.records} records in {len(chunks)} requests of {args.chunk} from {args.clients} clients",
              flush=True)
        stats, elapsed = post_chunks(api_url, chunks, args.clients)
        lat_ms = [x * 1000 for x in stats.latencies]
        print(f"ingest: {stats.accepted} records accepted in {elapsed:.2f} s = {stats.accepted / elapsed:,.0f} records/s; "
              f"request latency p50 {percentile(lat_ms, 50):.0f} ms, p99 {percentile(lat_ms, 99):.0f} ms; "
              f"errors {len(stats.errors)}", flush=True)
        for err in stats.errors[:5]:
            print(f"  error: {err}", flush=True)

        print(f"waiting up to {args.timeout:.0f} s for the table and the log to catch up...", flush=True)
        deadline = time.monotonic() + args.timeout
        t0 = time.monotonic()
        while True:
            items, lines, distinct = count_stored(aws, table, bucket, id_prefix)
            print(f"  after {time.monotonic() - t0:5.1f} s: table {items}, log lines {lines}, distinct ids {distinct}",
                  flush=True)
            if (items >= stats.accepted and lines >= stats.accepted) or time.monotonic() > deadline:
                break
            time.sleep(2.0)
        caught_up = time.monotonic() - t0
        ok = items == lines == distinct == stats.accepted == args.records and not stats.errors
        print(f"check: sent {args.records}, accepted {stats.accepted}, table {items}, log lines {lines}, "
              f"distinct ids {distinct} -> {'OK' if ok else 'MISMATCH'} (log caught up {caught_up:.1f} s after "
              f"the last request)", flush=True)
        return 0 if ok else 1
    finally:
        if stack is not None:
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
