"""The queue side: gathering by distinct segment, keeping a round's messages invisible, reading segments."""
from __future__ import annotations

import time

from autotraining.generator import generate
from worker.drain import PendingQueue, read_records


def test_gather_stops_at_max_distinct_segments_and_keeps_duplicates_together(waws, log_segment, schema):
    for i in range(4):
        log_segment(generate(schema, 5, seed=i), 100 * (i + 1), copies=2 if i == 0 else 1)
    q = PendingQueue(waws.sqs, waws.settings.queue_url)
    got = q.gather(max_segments=2, wait_seconds=0)
    assert len({d.ref.key for d in got}) == 2
    rest = q.gather(max_segments=10, wait_seconds=0)
    assert len({d.ref.key for d in got} | {d.ref.key for d in rest}) == 4
    assert len(got) + len(rest) == 5


def test_heartbeat_keeps_a_long_rounds_messages_invisible(waws, log_segment, schema, queue_counts):
    log_segment(generate(schema, 5, seed=1), 100)
    q = PendingQueue(waws.sqs, waws.settings.queue_url, visibility_seconds=2)
    got = q.gather(max_segments=5, wait_seconds=0)
    with q.keep_invisible(got):
        time.sleep(3.5)  # longer than the 2 s visibility timeout
        assert waws.sqs.receive_message(QueueUrl=waws.settings.queue_url).get("Messages", []) == []
    q.delete(got)
    assert queue_counts() == (0, 0)


def test_read_records_dedupes_by_id_and_lists_unreadable_segments(waws, log_segment, schema):
    recs = generate(schema, 30, seed=1)
    a = log_segment(recs[:20], 100)
    b = log_segment(recs[10:], 200)
    bad = log_segment(recs[:5], 300)
    waws.s3.put_object(Bucket=waws.settings.bucket, Key=bad.key, Body=b"\x1f\x8bnot really gzip")
    batch = read_records(waws.s3, waws.settings.bucket, [a.key, b.key, bad.key], schema)
    assert batch.size == 30 and len(set(batch.ids.tolist())) == 30
    assert batch.segments == (a.key, b.key) and batch.poison == (bad.key,)
    assert [schema.labels[i] for i in batch.y[:3]] == [r.label for r in recs[:3]]
