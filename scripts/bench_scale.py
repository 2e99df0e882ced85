"""Benchmark: does a round, its state and the history read stay flat as history grows to 100M records?

**Rounds** — for each history size (default 10k, 1M, 10M, 100M records) a fresh moto server (its
own process, so the worker's memory is the worker's alone) gets the stack from the template and
a committed history of that size, *made fast by this script* instead of by training 100M
records: the state of the latest round (a full reservoir whose Algorithm R count is the history,
exact ``records_seen``, the consumed-interval bookkeeping of a shard with one gap still open on a
pending segment), one consumed-segment mark per 500-record segment of the history (200,000 at
100M) in the marks table, one round item per 25,000 records in the models table, and a published
model. Then the real worker (``worker.loop.Worker``, in its own process, TensorFlow warmed up
first) runs ``--repeat`` rounds of ``--new`` fresh records each; printed: the median round time,
the size of the state object the round wrote, and the worker process's peak RSS.

Wall time on a shared 2-core machine swings with other jobs, so the worker process's CPU time
and its count of AWS calls per round are printed too: neither depends on other load, and the
emulator's own per-request costs (moto scans a table for a GSI query and deep-copies it for a
transaction, unlike DynamoDB) are not the design's.

**History reads** — ``GET /models`` (the model proxy handler, as Lambda runs it, against the moto
server) p50 over ``--requests`` calls with 10, 10,000 and 200,000 segments consumed (same 200
rounds in the history each time; the segment count is what changes), the three servers queried
in turn so that load from other jobs on the machine falls on all three alike. Rounds are
interleaved across sizes the same way (each in a fresh worker process; peak RSS is the largest).

Goals: round at 100M ÷ round at 10k ≤ 1.1; state size and peak RSS at 100M within 10 % of 10k;
GET /models at 200k segments ÷ at 10 ≤ 1.2.

    .venv/bin/python scripts/bench_scale.py                            # all sizes (several minutes)
    .venv/bin/python scripts/bench_scale.py --sizes 10000,1000000 --segments 10,10000   # quick
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARD = "shardId-bench"
SEGMENT = 500  # records per segment (the StreamBatchSize default)
PER_ROUND = 25_000  # records per historical round (50 segments)
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_REGION": "us-east-1", "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
       "AUTOTRAINING_LOG_FORMAT": "json"}


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server in its own process on a free port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def stack(url: str, reservoir: int) -> Any:
    os.environ.update(ENV)
    os.environ["AWS_ENDPOINT_URL"] = url
    from autotraining.aws import Aws
    from autotraining.settings import Settings
    from autotraining_tools.local.provision import provision

    return Aws(provision(Aws(Settings(region="us-east-1", endpoint_url=url))).replace(reservoir_size=reservoir))


def write_marks(aws: Any, count: int, first_round: int = 1) -> None:
    """``count`` consumed-segment marks (as commits write them), 25 per BatchWriteItem."""
    from autotraining.registry import EXPIRES_ATTRIBUTE, SEGMENT_PREFIX, version_name
    from autotraining.segments import segment_key

    expires = {"N": str(int(time.time()) + 15 * 86400)}
    table = aws.settings.consumed_table
    batch: list[dict[str, Any]] = []
    for i in range(count):
        key = segment_key(SHARD, str(1 + i * SEGMENT), str((i + 1) * SEGMENT))
        version = version_name(first_round + i * SEGMENT // PER_ROUND)
        batch.append({"PutRequest": {"Item": {"pk": {"S": SEGMENT_PREFIX + key}, "version": {"S": version},
                                              EXPIRES_ATTRIBUTE: expires}}})
        if len(batch) == 25 or i == count - 1:
            aws.dynamodb.batch_write_item(RequestItems={table: batch})
            batch = []


def write_rounds(aws: Any, n: int, records_per_round: int) -> None:
    """``n`` committed round items (published), newest last; ``latest`` points at the last one."""
    from autotraining.registry import LATEST_PK, ModelVersion, version_name

    for i in range(1, n + 1):
        v = ModelVersion(version=version_name(i), parent=version_name(i - 1) if i > 1 else "", created=i * 1000,
                         status="published", model_version=version_name(i), records_seen=i * records_per_round,
                         new_records=records_per_round, prequential_accuracy=0.97, holdout_accuracy=0.98,
                         parent_holdout_accuracy=0.98, gate="passed", duration_s=1.0,
                         metrics={"train_rows": 6000, "holdout_rows": 600, "timings": {"train_s": 0.8}})
        aws.dynamodb.put_item(TableName=aws.settings.models_table, Item=v.to_item())
    aws.dynamodb.put_item(TableName=aws.settings.models_table, Item={
        "pk": {"S": LATEST_PK}, "round_version": {"S": version_name(n)}, "model_version": {"S": version_name(n)},
        "records_seen": {"N": str(n * records_per_round)}})


def build_history(aws: Any, size: int, reservoir: int) -> dict[str, Any]:
    """The committed state of a ``size``-record history (see the module docstring)."""
    import numpy as np

    from autotraining.generator import generate, generate_features, label_rows
    from autotraining.registry import Registry, version_name
    from autotraining.schema import load_schema
    from autotraining.segments import encode_segment, segment_key
    from worker import publish, trainer
    from worker.drain import id_hashes
    from worker.state import TrainingState, state_key

    t = time.perf_counter()
    schema = load_schema()
    s3, bucket = aws.s3, aws.settings.bucket
    rounds = max(1, size // PER_ROUND)
    write_rounds(aws, rounds, size // rounds)
    write_marks(aws, size // SEGMENT)
    x = generate_features(schema, reservoir, 1)
    y = np.array([schema.label_index(lab) for lab in label_rows(schema, x)], dtype=np.int64)
    state = TrainingState.empty(len(schema.features), reservoir).advanced(
        x, y, id_hashes([f"h-{i}" for i in range(reservoir)]), schema.labels)
    state.reservoir.seen = size  # Algorithm R's t: the reservoir of a size-record stream
    state.seen_count = size
    state.label_counts = {lab: size // len(schema.labels) for lab in schema.labels}
    # One gap still open near the end: a segment logged but not yet consumed (its message pending).
    pending = (size - 2 * SEGMENT + 1, size - SEGMENT)
    state.consumed = {SHARD: [(1, pending[0] - 1), (pending[1] + 1, size)]}
    s3.put_object(Bucket=bucket, Key=segment_key(SHARD, str(pending[0]), str(pending[1])),
                  Body=encode_segment(generate(schema, SEGMENT, seed=7, id_prefix="pending-"), schema))
    latest = version_name(rounds)
    keep = ~trainer.is_holdout(state.reservoir.ids)
    model = trainer.train(None, state.reservoir.x[keep], state.reservoir.y[keep], len(schema.labels),
                          trainer.TrainConfig(epochs=2))
    files = publish.files_for(model, trainer.fold(model), x[:16])
    registry = Registry.for_settings(aws.dynamodb, aws.settings)
    item = registry.get(latest)
    assert item is not None
    key = state_key(latest, "bench")
    staged = publish.stage(s3, bucket, latest, "bench", files, state.to_bytes(), key)
    publish.promote(s3, bucket, latest, staged.staging, list(staged.files))
    aws.dynamodb.update_item(TableName=aws.settings.models_table, Key={"pk": {"S": f"version#{latest}"}},
                             UpdateExpression="SET state_key = :k",
                             ExpressionAttributeValues={":k": {"S": key}})
    return {"build_s": round(time.perf_counter() - t, 1), "rounds": rounds, "marks": size // SEGMENT}


def case_rounds(url: str, size: int, new: int, reservoir: int, done: int) -> dict[str, Any]:
    """In its own process: one worker round against the prepared server (``done`` rounds ran before)."""
    os.environ.update(ENV)
    os.environ["AWS_ENDPOINT_URL"] = url
    import numpy as np

    import worker  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
    from autotraining.aws import Aws
    from autotraining.generator import generate
    from autotraining.records import Record
    from autotraining.registry import Registry
    from autotraining.schema import load_schema
    from autotraining.segments import SegmentRef, encode_segment, segment_key
    from autotraining.settings import Settings
    from worker import trainer
    from worker.loop import Worker, WorkerOptions
    from worker.state import TrainingState

    aws = Aws(Settings.from_env())
    schema = load_schema()
    rng = np.random.default_rng(0)
    trainer.train(None, rng.normal(size=(256, len(schema.features))), rng.integers(0, 3, 256), 3,
                  trainer.TrainConfig(epochs=1))  # TensorFlow's one-off warm-up
    w = Worker(aws, WorkerOptions(once=True, poll_seconds=0, config=trainer.TrainConfig()))
    first = size + 1 + done * new
    recs = [Record(id=rec.id, features=rec.features, label=rec.label, created=rec.created, seq=str(first + i))
            for i, rec in enumerate(generate(schema, new, seed=100 + done, id_prefix=f"new{done}-"))]
    ref = SegmentRef(key=segment_key(SHARD, str(first), str(first + new - 1)), count=new, shard=SHARD,
                     first_sequence=str(first), last_sequence=str(first + new - 1))
    aws.s3.put_object(Bucket=aws.settings.bucket, Key=ref.key, Body=encode_segment(recs, schema))
    aws.sqs.send_message(QueueUrl=aws.settings.queue_url, MessageBody=ref.to_message())
    calls: dict[str, int] = {}

    def count(event_name: str, **_: Any) -> None:
        name = ".".join(event_name.split(".")[1:3])
        calls[name] = calls.get(name, 0) + 1

    for service in ("s3", "sqs", "dynamodb", "ec2"):
        aws.client(service).meta.events.register("before-call.*.*", count)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    w.run()
    seconds = time.perf_counter() - t
    worker_calls = dict(calls)  # the worker's calls only: the reads below measure the round
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    committed = w.rounds[-1].committed
    assert committed is not None, w.rounds[-1]
    assert committed.records_seen == size + new * (done + 1), (committed.records_seen, size + new * (done + 1))
    registry = Registry.for_settings(aws.dynamodb, aws.settings)
    body = aws.s3.get_object(Bucket=aws.settings.bucket, Key=committed.state_key)["Body"].read()
    state = TrainingState.from_bytes(body)
    states = kept_states(aws)
    assert registry.latest() is not None
    return {"size": size, "seconds": seconds, "cpu_s": cpu_s, "calls": sum(worker_calls.values()), "by_call": worker_calls,
            "state_bytes": len(body), "intervals": state.interval_count,
            "state_objects": states, "records_seen": committed.records_seen,
            "timings": committed.metrics.get("timings", {}),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def kept_states(aws: Any) -> int:
    """State objects not marked superseded (the emulator does not run the lifecycle rule that expires
    marked ones)."""
    from worker.state import SUPERSEDED_TAG

    s3, bucket = aws.s3, aws.settings.bucket
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="state/").get("Contents", [])]
    return sum(SUPERSEDED_TAG not in s3.get_object_tagging(Bucket=bucket, Key=k)["TagSet"] for k in keys)


def prepare_history_reads(url: str, segments: int, rounds: int) -> Any:
    from autotraining.serving import ModelProxy

    aws = stack(url, 5000)
    write_rounds(aws, rounds, 1000)
    write_marks(aws, segments)
    return aws, ModelProxy.for_aws(aws)


def get_models(aws: Any, proxy: Any) -> float:
    """One ``GET /models`` through the model proxy handler; seconds."""
    from handlers import model_proxy

    event = {"version": "2.0", "routeKey": "GET /models", "rawPath": "/models", "rawQueryString": "",
             "headers": {}, "requestContext": {"http": {"method": "GET", "path": "/models"}, "stage": "$default"},
             "isBase64Encoded": False}
    t = time.perf_counter()
    response = model_proxy.handle(event, aws, proxy)
    seconds = time.perf_counter() - t
    assert response["statusCode"] == 200 and json.loads(response["body"])["versions"], response
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,1000000,10000000,100000000", help="history sizes (records)")
    parser.add_argument("--segments", default="10,10000,200000", help="consumed segments for GET /models")
    parser.add_argument("--new", type=int, default=2000, help="records per round")
    parser.add_argument("--reservoir", type=int, default=5000, help="reservoir capacity")
    parser.add_argument("--repeat", type=int, default=5, help="rounds per size (median reported)")
    parser.add_argument("--requests", type=int, default=50, help="GET /models calls per segment count")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--done", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case == "rounds":
        print(json.dumps(case_rounds(args.url, int(args.sizes), args.new, args.reservoir, args.done)))
        return 0
    sizes = [int(float(s)) for s in args.sizes.split(",") if s]
    print(f"rounds of {args.new:,} new records, reservoir {args.reservoir:,}, {os.cpu_count()} cores; "
          f"sizes interleaved round by round so that load from other jobs falls on all of them alike")
    rows = []
    with ExitStack() as servers:
        prepared = []
        for size in sizes:
            url = servers.enter_context(moto_server())
            aws = stack(url, args.reservoir)
            prepared.append((size, url, aws, build_history(aws, size, args.reservoir)))
            print(f"  {size:>11,d} history built in {prepared[-1][3]['build_s']} s: {prepared[-1][3]['rounds']:,} "
                  f"rounds, {prepared[-1][3]['marks']:,} segment marks", flush=True)
        results: dict[int, list[dict[str, Any]]] = {size: [] for size in sizes}
        for done in range(args.repeat):
            for size, url, aws, _ in prepared:
                proc = subprocess.run([sys.executable, __file__, "--case", "rounds", "--url", url, "--sizes", str(size),
                                       "--new", str(args.new), "--reservoir", str(args.reservoir), "--done", str(done)],
                                      capture_output=True, text=True, env={**os.environ, **ENV, **aws.settings.to_env()})
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{"size"')]
                if not lines:
                    raise SystemExit(f"round case {size} failed:\n{proc.stderr[-3000:]}")
                results[size].append(json.loads(lines[-1]))
        for size, _, _, built in prepared:
            runs = results[size]
            r = {**runs[-1], **built, "seconds": statistics.median(x["seconds"] for x in runs),
                 "cpu_s": statistics.median(x["cpu_s"] for x in runs),
                 "samples": [round(x["seconds"], 2) for x in runs], "peak_mb": max(x["peak_mb"] for x in runs)}
            rows.append(r)
            print(f"  {size:>11,d} history: round {r['seconds']:.2f} s (samples {r['samples']}, last {r['timings']}), "
                  f"state {r['state_bytes']:,} B ({r['intervals']} intervals, {r['state_objects']} state objects "
                  f"kept), peak RSS {r['peak_mb']:.0f} MB, records seen {r['records_seen']:,}; worker CPU "
                  f"{r['cpu_s']:.2f} s, {r['calls']} AWS calls {r['by_call']}", flush=True)
    reads = []
    with ExitStack() as servers:
        counts = [int(float(s)) for s in args.segments.split(",") if s]
        targets = [prepare_history_reads(servers.enter_context(moto_server()), n, 200) for n in counts]
        times: list[list[float]] = [[] for _ in counts]
        for _ in range(args.requests):
            for i, (aws, proxy) in enumerate(targets):
                times[i].append(get_models(aws, proxy))
        for n, t in zip(counts, times, strict=True):
            reads.append({"segments": n, "p50_ms": statistics.median(t) * 1000})
            print(f"  GET /models with {n:>7,d} segments consumed (200 rounds): p50 {reads[-1]['p50_ms']:.2f} ms",
                  flush=True)
    print()
    print("| history | round, wall (s) | round, worker CPU (s) | AWS calls per round | state object (bytes) "
          "| peak RSS (MB) | records seen |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['size']:,d} | {r['seconds']:.2f} | {r['cpu_s']:.2f} | {r['calls']} | {r['state_bytes']:,} "
              f"| {r['peak_mb']:.0f} | {r['records_seen']:,} |")
    print()
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        print(f"round {b['size']:,} ÷ {a['size']:,}: wall {b['seconds'] / a['seconds']:.2f}, worker CPU "
              f"{b['cpu_s'] / a['cpu_s']:.2f}, AWS calls {b['calls']} vs {a['calls']} (goal ≤ 1.1)")
        print(f"state size {b['size']:,} ÷ {a['size']:,}: {b['state_bytes'] / a['state_bytes']:.3f} (goal within 10 %)")
        print(f"peak RSS {b['size']:,} ÷ {a['size']:,}: {b['peak_mb'] / a['peak_mb']:.3f} (goal within 10 %)")
    if len(reads) > 1:
        print(f"GET /models p50 {reads[-1]['segments']:,} ÷ {reads[0]['segments']:,} segments: "
              f"{reads[-1]['p50_ms'] / reads[0]['p50_ms']:.2f} (goal ≤ 1.2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
