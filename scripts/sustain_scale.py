"""Sustained ingest on the embedded stack: N records at a steady rate, the worker keeping up.

Starts ``autotraining local`` (on free ports; the real gateway, stream poller, scheduler, worker
process and moto server), uploads ``--records`` records through ``POST /records`` in chunks of
``--chunk`` at ``--rate`` records per second (one client, paced by the clock), then waits until the
latest committed round has counted them all, and for the worker to stop its instance. Prints:

- the upload rate achieved and the rounds committed;
- **freshness** p50 / p99 per chunk: from the end of the chunk's upload to the commit (``created``)
  of the first round whose ``records_seen`` covers every record uploaded up to and including that
  chunk (count-based: rounds may take segments out of order, so this is the time until a model
  has counted *as many* records, the usual measure when records carry no round tag);
- **records seen** of the latest round, which must equal ``--records`` exactly;
- the instance state at the end (must be ``stopped``).

Exits 1 when a check fails. The 1,000,000-record run takes about ``records / rate`` seconds plus
the drain; verify first with a small run:

    .venv/bin/python scripts/sustain_scale.py --records 20000 --rate 500
    .venv/bin/python scripts/sustain_scale.py --records 1000000 --rate 500 --log /tmp/sustain.log
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accept_training import call, instance_stopped, local_stack, wait  # noqa: E402  (the embedded run's script helpers)
from load_ingest import percentile  # noqa: E402


def all_rounds(api: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    before = None
    while True:
        page = call(f"{api}/models?limit=100" + (f"&before={before}" if before else ""), timeout=30)
        out.extend(page["versions"])
        before = page.get("next")
        if not before:
            return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records to upload in all")
    parser.add_argument("--rate", type=float, default=500.0, help="records per second (steady)")
    parser.add_argument("--chunk", type=int, default=500, help="records per POST /records")
    parser.add_argument("--batch-size", type=int, default=500, help="stream batch size (records per segment)")
    parser.add_argument("--idle-grace", type=float, default=20.0, help="worker idle grace before it stops (s)")
    parser.add_argument("--schedule", type=float, default=30.0, help="seconds between scheduled starter calls")
    parser.add_argument("--drain-timeout", type=float, default=1800.0, help="seconds to wait for the count after upload")
    parser.add_argument("--log", default="", help="file for the embedded run's output (default: a temp file)")
    args = parser.parse_args()
    if args.records < 1 or args.rate <= 0 or args.chunk < 1:
        parser.error("--records, --rate and --chunk must be positive")
    t0 = time.monotonic()
    from autotraining.generator import generate
    from autotraining.schema import load_schema

    schema = load_schema()
    options = ["--batch-size", str(args.batch_size), "--batch-window", "2", "--idle-grace", str(args.idle_grace),
               "--schedule", str(args.schedule)]
    ok = True
    with local_stack(options, args.log or f"/tmp/sustain_scale_{os.getpid()}.log", 180) as (api, emulator):
        print(f"stack up after {time.monotonic() - t0:.1f} s", flush=True)
        uploaded_at: list[tuple[int, float]] = []  # (records uploaded so far, wall time the chunk finished)
        start = time.time()
        sent = 0
        while sent < args.records:
            n = min(args.chunk, args.records - sent)
            body = [r.to_log_dict(schema) for r in generate(schema, n, seed=sent, id_prefix=f"s{sent}-")]
            for row in body:
                row.pop("created", None)  # the upload stamps it
            due = start + sent / args.rate
            if due > time.time():
                time.sleep(due - time.time())
            answer = call(f"{api}/records", "POST", body)
            assert answer["accepted"] == n, answer
            sent += n
            uploaded_at.append((sent, time.time()))
            if len(uploaded_at) % max(1, int(60 * args.rate / args.chunk)) == 0:
                print(f"  {sent:,} uploaded at {time.time() - start:.0f} s", flush=True)
        upload_s = time.time() - start
        print(f"uploaded {sent:,} records in {upload_s:.1f} s ({sent / upload_s:,.0f} records/s, goal "
              f"{args.rate:,.0f})", flush=True)

        def seen() -> int:
            versions = call(f"{api}/models?limit=1", timeout=30)["versions"]
            return int(versions[0]["records_seen"]) if versions else 0

        wait(f"records_seen == {args.records:,}", lambda: seen() >= args.records, args.drain_timeout, 2.0)
        rounds = sorted(all_rounds(api), key=lambda v: v["version"])
        final = rounds[-1]["records_seen"]
        fresh = []
        i = 0
        for count, at in uploaded_at:
            while i < len(rounds) and rounds[i]["records_seen"] < count:
                i += 1
            if i < len(rounds):
                fresh.append(rounds[i]["created"] / 1000 - at)
        print(f"rounds committed: {len(rounds)} (largest {max(v['new_records'] for v in rounds):,} new records; "
              f"median round {percentile([v['duration_s'] for v in rounds], 50):.2f} s)")
        print(f"freshness (upload → first round counting it): p50 {percentile(fresh, 50):.1f} s, "
              f"p99 {percentile(fresh, 99):.1f} s, max {max(fresh):.1f} s")
        exact = final == args.records
        print(f"records seen: {final:,} (must be exactly {args.records:,}): {'OK' if exact else 'WRONG'}")
        ok &= exact
        try:
            after = wait("the instance to stop", instance_stopped(emulator), args.idle_grace + 120, 0.5)
            print(f"instance stopped {after:.1f} s after the count was complete: OK")
        except TimeoutError:
            print("instance still running two minutes after the idle grace: WRONG")
            ok = False
        print(f"total {time.monotonic() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
