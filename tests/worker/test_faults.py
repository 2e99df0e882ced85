"""Every fault the worker claims to survive, injected; after each, records seen == distinct records logged."""
from __future__ import annotations

import time

import pytest
import structlog

from autotraining.generator import generate
from worker.loop import Worker, WorkerOptions

# Long enough that the round's visibility heartbeat (every second) keeps the messages hidden while a
# round trains on a loaded machine; a 1 s timeout raced the heartbeat and made these tests flaky.
VISIBILITY = 3


class Killed(BaseException):
    """Stands in for SIGKILL at a hook point: nothing after it runs (not even ``except Exception``)."""


def kill_at(step: str):
    def hook(name: str) -> None:
        if name == step:
            raise Killed(step)

    return hook


def test_worker_killed_before_commit_replays_the_round(waws, log_segment, make_worker, registry, schema,
                                                       queue_counts):
    log_segment(generate(schema, 300, seed=1), 100)
    log_segment(generate(schema, 200, seed=2), 1000)
    with pytest.raises(Killed):
        make_worker(hook=kill_at("before_commit"), visibility_seconds=VISIBILITY).run()
    assert registry.latest() is None
    assert queue_counts() == (0, 2)  # invisible until the dead worker's visibility timeout
    time.sleep(VISIBILITY + 0.2)
    make_worker().run()
    assert [v.version for v in registry.history()] == ["000001"]
    assert registry.latest().records_seen == 500
    assert queue_counts() == (0, 0)


def test_worker_killed_between_commit_and_delete_skips_redelivered_messages(waws, log_segment, make_worker,
                                                                            registry, schema, queue_counts):
    log_segment(generate(schema, 300, seed=1), 100)
    with pytest.raises(Killed):
        make_worker(hook=kill_at("after_commit"), visibility_seconds=VISIBILITY).run()
    assert registry.latest().records_seen == 300
    time.sleep(VISIBILITY + 0.2)
    w = make_worker()
    w.run()
    assert [v.version for v in registry.history()] == ["000001"]  # no second round for the same segment
    assert w.rounds[0].skipped_segments and w.rounds[0].committed is None
    assert registry.latest().records_seen == 300
    assert queue_counts() == (0, 0)


def test_killed_after_commit_before_promote_is_repaired_at_next_start(waws, log_segment, make_worker, registry,
                                                                      schema, monkeypatch):
    from autotraining.artifacts import MODEL_JSON, model_key
    from worker import publish

    def dies(*args, **kwargs):
        raise Killed("promote")

    log_segment(generate(schema, 300, seed=1), 100)
    with monkeypatch.context() as m:
        m.setattr(publish, "promote", dies)
        with pytest.raises(Killed):
            make_worker(visibility_seconds=1).run()
    assert registry.latest().model_version == "000001"
    assert not publish.exists(waws.s3, waws.settings.bucket, model_key("000001", MODEL_JSON))
    make_worker().run()
    assert publish.exists(waws.s3, waws.settings.bucket, model_key("000001", MODEL_JSON))
    assert registry.latest().records_seen == 300


def test_duplicate_stream_batch_two_messages_same_key_counts_once(waws, log_segment, make_worker, registry,
                                                                  schema, queue_counts):
    log_segment(generate(schema, 250, seed=1), 100, copies=2)
    w = make_worker()
    w.run()
    assert registry.latest().records_seen == 250
    assert len(registry.history()) == 1 and w.rounds[0].deleted == 2
    assert queue_counts() == (0, 0)


def test_redelivered_message_after_commit_is_skipped(waws, log_segment, make_worker, registry, schema,
                                                     queue_counts):
    recs = generate(schema, 250, seed=1)
    ref = log_segment(recs, 100)
    w = make_worker()
    w.run()
    waws.sqs.send_message(QueueUrl=waws.settings.queue_url, MessageBody=ref.to_message())  # delivered again
    log_segment(recs, 100)  # and the stream handler retried the batch: same key, same bytes
    w.run()
    assert len(registry.history()) == 1 and registry.latest().records_seen == 250
    assert queue_counts() == (0, 0)


def test_poison_segments_go_to_dlq_without_blocking_others(waws, log_segment, make_worker, registry, schema,
                                                           queue_counts):
    s = waws.settings
    waws.sqs.send_message(QueueUrl=s.queue_url, MessageBody="not a segment reference")
    bad = log_segment(generate(schema, 10, seed=5), 500)
    waws.s3.put_object(Bucket=s.bucket, Key=bad.key, Body=b"not gzip")
    missing = log_segment(generate(schema, 10, seed=6), 700)
    waws.s3.delete_object(Bucket=s.bucket, Key=missing.key)
    log_segment(generate(schema, 200, seed=1), 1000)
    log_segment(generate(schema, 100, seed=2), 2000)
    with structlog.testing.capture_logs() as logs:
        make_worker().run()
    assert registry.latest().records_seen == 300
    assert sum(v.new_records for v in registry.history()) == 300
    assert queue_counts() == (0, 0)
    dead = waws.sqs.receive_message(QueueUrl=s.dlq_url, MaxNumberOfMessages=10)["Messages"]
    bodies = sorted(m["Body"] for m in dead)
    assert len(bodies) == 3 and "not a segment reference" in bodies
    assert any(bad.key in b for b in bodies) and any(missing.key in b for b in bodies)
    poison_keys = {e.get("key") for e in logs if e["event"] == "segment.poison"}
    assert {bad.key, missing.key} <= poison_keys


def test_two_workers_racing_commit_each_round_once(waws, log_segment, make_worker, registry, schema, queue_counts):
    log_segment(generate(schema, 200, seed=1), 100)
    log_segment(generate(schema, 150, seed=2), 1000)
    rival = make_worker(max_segments=1)
    raced = []

    def race(step: str) -> None:
        if step == "before_commit" and not raced:
            raced.append(step)
            rival.run()  # takes the other segment and commits round 000001 first

    first = make_worker(max_segments=1, hook=race)
    first.run()
    history = registry.history()
    assert [v.version for v in history] == ["000002", "000001"]
    assert first.rounds[0].conflicts == 1 and first.rounds[0].committed.version == "000002"
    assert set(history[0].segments).isdisjoint(history[1].segments)
    assert registry.latest().records_seen == 350
    assert queue_counts() == (0, 0)


def test_two_workers_with_the_same_segment_count_it_once(waws, log_segment, make_worker, registry, schema,
                                                         queue_counts):
    log_segment(generate(schema, 200, seed=1), 100, copies=2)
    rival = make_worker(max_segments=1)
    raced = []

    def race(step: str) -> None:
        if step == "before_commit" and not raced:
            raced.append(step)
            rival.run()  # got the second copy of the message; commits the segment first

    first = make_worker(max_segments=1, hook=race)
    first.ctx.queue.gather = _one_message_at_a_time(first.ctx.queue.gather)
    first.run()
    assert [v.version for v in registry.history()] == ["000001"]
    assert registry.latest().records_seen == 200
    assert first.rounds[0].committed is None and first.rounds[0].skipped_segments
    assert queue_counts() == (0, 0)


def _one_message_at_a_time(gather):
    def _gather(max_segments, wait_seconds):
        got = gather(1, wait_seconds)
        return got[:1]

    return _gather


def test_records_arriving_while_the_instance_stops_are_trained_on_at_next_start(waws, log_segment, registry, schema,
                                                                                tiny_config, monkeypatch):
    import worker.loop as loop

    s = waws.settings
    waws.ec2.start_instances(InstanceIds=[s.instance_id])
    log_segment(generate(schema, 200, seed=1), 100)
    real_stop = loop.stop_instance

    def stop_while_records_arrive(ec2, instance_id):
        log_segment(generate(schema, 120, seed=2), 5000)  # lands between the idle decision and the stop
        return real_stop(ec2, instance_id)

    monkeypatch.setattr(loop, "stop_instance", stop_while_records_arrive)
    options = WorkerOptions(idle_grace=0.2, poll_seconds=0, config=tiny_config)
    assert Worker(waws, options).run() == 0
    state = waws.ec2.describe_instances(InstanceIds=[s.instance_id])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "stopped"
    assert registry.latest().records_seen == 200
    monkeypatch.setattr(loop, "stop_instance", real_stop)
    waws.ec2.start_instances(InstanceIds=[s.instance_id])  # the schedule / threshold starts it again
    assert Worker(waws, options).run() == 0
    assert registry.latest().records_seen == 320
    state = waws.ec2.describe_instances(InstanceIds=[s.instance_id])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "stopped"
