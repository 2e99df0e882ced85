"""Exactly-once counting with bookkeeping that grows with shards and open gaps, not with records.

Unit tests of the interval bookkeeping (``worker.state``) and rounds on the in-process stack for
the duplicate that only a stream position can catch: a bisected batch overlapping a segment
already logged for the same records under another key.
"""
from __future__ import annotations

import io

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from autotraining.generator import generate
from worker.reservoir import Reservoir
from worker.state import TrainingState, add_interval, close_gaps

SHARD = "shardId-00000001"


def _state_after(segments: list[tuple[int, int]], starts_of_log: list[int]) -> TrainingState:
    state = TrainingState.empty(n_features=2, capacity=4)
    for lo, hi in segments:
        state = state.advanced(np.zeros((0, 2)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64), ("a",),
                               ranges=[(SHARD, lo, hi)])
        gaps = state.gaps()
        if gaps:
            after, below = gaps[SHARD]
            state = state.with_gaps_closed({SHARD: ([s for s in starts_of_log if after < s < below], None)})
    return state


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(1, 5), min_size=1, max_size=25), gaps=st.lists(st.integers(0, 3), min_size=25,
       max_size=25), order=st.randoms(use_true_random=False), taken=st.integers(0, 25))
def test_a_position_is_covered_exactly_when_a_consumed_segment_holds_it(sizes, gaps, order, taken):
    """Whatever order segments are consumed in, and whichever are still pending, gap closing never
    covers a record of a pending segment, and every record of a consumed one is covered."""
    segments, pos = [], 10
    for size, gap in zip(sizes, gaps, strict=False):
        pos += gap  # positions the stream skipped (MODIFY records, other tables' writes)
        segments.append((pos, pos + size - 1))
        pos += size
    order.shuffle(segments)
    consumed, pending = segments[:taken], segments[taken:]
    state = _state_after(consumed, [lo for lo, _ in segments])
    for lo, hi in consumed:
        assert all(state.covers(SHARD, p, p) for p in range(lo, hi + 1))
    for lo, hi in pending:
        assert not any(state.covers(SHARD, p, p) for p in range(lo, hi + 1))


def test_bookkeeping_stays_one_interval_per_shard_over_a_thousand_rounds():
    segments = [(100 + 10 * i, 100 + 10 * i + 6) for i in range(1000)]  # gaps of 3 between segments
    state = _state_after(segments, [lo for lo, _ in segments])
    assert state.consumed == {SHARD: [(100, 10096)]}
    small = _state_after(segments[:3], [lo for lo, _ in segments])
    assert abs(len(state.to_bytes()) - len(small.to_bytes())) <= 16  # a few more digits, nothing per record


def test_a_gap_holding_a_pending_segment_stays_open_until_it_is_consumed():
    log = [(100, 199), (200, 299), (300, 399)]
    state = _state_after([log[0], log[2]], [lo for lo, _ in log])
    assert state.consumed[SHARD] == [(100, 199), (300, 399)]
    state = _state_after([log[0], log[2], log[1]], [lo for lo, _ in log])
    assert state.consumed[SHARD] == [(100, 399)]


def test_interval_helpers():
    assert add_interval([], 5, 9) == [(5, 9)]
    assert add_interval([(1, 3), (8, 9)], 5, 6) == [(1, 3), (5, 6), (8, 9)]
    assert close_gaps([(1, 3), (8, 9)], [], complete_below=5) == [(1, 3), (8, 9)]  # not listed that far
    assert close_gaps([(1, 3), (8, 9)], [], complete_below=8) == [(1, 9)]


def test_state_round_trips_sequence_numbers_beyond_64_bits():
    big = 10 ** 39
    state = TrainingState.empty(2, 4).advanced(np.zeros((1, 2)), np.zeros(1, dtype=np.int64),
                                               np.ones(1, dtype=np.uint64), ("a",), ranges=[(SHARD, big, big + 5)])
    back = TrainingState.from_bytes(state.to_bytes())
    assert back.consumed == {SHARD: [(big, big + 5)]} and back.records_seen == 1 and back.label_counts == {"a": 1}


def test_state_of_the_id_set_design_still_loads_with_its_count():
    buf = io.BytesIO()
    np.savez(buf, reservoir=np.frombuffer(Reservoir(capacity=4, n_features=2).to_bytes(), dtype=np.uint8),
             seen=np.arange(1234, dtype=np.uint64), meta=np.array('{"label_counts": {"a": 1234}}'))
    old = TrainingState.from_bytes(buf.getvalue())
    assert old.records_seen == 1234 and old.consumed == {}


# ------------------------------------------------------------------ rounds on the in-process stack


def test_bisected_halves_of_a_consumed_batch_count_nothing(waws, log_segment, make_worker, registry, schema,
                                                           queue_counts):
    recs = generate(schema, 300, seed=1)
    whole = log_segment(recs, 100)  # the first attempt logged the whole batch, then failed
    w = make_worker()
    w.run()
    first, second = log_segment(recs[:150], 100), log_segment(recs[150:], 250)  # Lambda bisects and retries
    assert len({whole.key, first.key, second.key}) == 3
    w.run()
    assert registry.latest().round_version == "000001" and registry.latest().records_seen == 300
    assert queue_counts() == (0, 0)


def test_whole_batch_after_its_first_half_counts_only_the_rest(waws, log_segment, make_worker, registry, schema,
                                                               queue_counts):
    recs = generate(schema, 300, seed=2)
    log_segment(recs[:150], 100)
    w = make_worker()
    w.run()
    log_segment(recs, 100)  # the larger, overlapping segment is consumed later
    w.run()
    assert registry.latest().records_seen == 300 and registry.get("000002").new_records == 150
    assert queue_counts() == (0, 0)


def test_segment_consumed_after_its_successors_still_counts_and_closes_the_gap(waws, log_segment, make_worker,
                                                                              registry, schema):
    from worker.state import TrainingState as State

    a, b, c = (generate(schema, 100, seed=s) for s in (1, 2, 3))
    log_segment(a, 100)
    log_segment(b, 205, send=False)  # logged, its message delayed (e.g. a slow SendMessage retry)
    log_segment(c, 310)
    w = make_worker()
    w.run()
    assert registry.latest().records_seen == 200

    def state() -> State:
        key = registry.get(registry.latest().round_version).state_key
        return State.from_bytes(waws.s3.get_object(Bucket=waws.settings.bucket, Key=key)["Body"].read())

    assert state().consumed == {SHARD: [(100, 199), (310, 409)]}  # b holds its gap open
    log_segment(b, 205)  # the message arrives
    w.run()
    assert registry.latest().records_seen == 300
    assert state().consumed == {SHARD: [(100, 409)]}


def test_segment_starts_lists_only_between_the_first_interval_and_the_last(waws, log_segment, schema):
    from datetime import UTC, datetime, timedelta

    from worker.drain import DEAD_AFTER, segment_starts

    recs = generate(schema, 10, seed=4)
    for first in (100, 200, 300, 400, 500):
        log_segment(recs, first, send=False)
    calls: list[dict] = []
    waws.s3.meta.events.register("provide-client-params.s3.ListObjectsV2", lambda params, **_: calls.append(params))
    starts = segment_starts(waws.s3, waws.settings.bucket, {SHARD: (209, 400)})
    assert starts == {SHARD: ([300], None)}  # 100 and 200 end at or below 209; 400 is the last interval's start
    assert calls[0]["StartAfter"] > f"log/{SHARD}/{209:040d}" and calls[0]["Prefix"] == f"log/{SHARD}/"
    later = datetime.now(UTC) + DEAD_AFTER + timedelta(days=1)  # every segment older than the queue keeps messages
    assert segment_starts(waws.s3, waws.settings.bucket, {SHARD: (209, 400)}, now=later) == {SHARD: ([], None)}


def test_gaps_under_a_stream_label_stay_open_until_the_stream_retention_has_passed(waws, schema):
    """Keys named by the stream label may mix shards: a young segment keeps the gap below it open."""
    from datetime import UTC, datetime, timedelta

    from autotraining.segments import encode_segment, segment_key
    from worker.drain import UNORDERED_SETTLE, segment_starts

    label = "2026-11-30T04_56_34.018306"
    for first in (100, 300):
        waws.s3.put_object(Bucket=waws.settings.bucket, Key=segment_key(label, str(first), str(first + 9)),
                           Body=encode_segment(generate(schema, 10, seed=first), schema))
    state = TrainingState.empty(2, 4)
    state.consumed = {label: [(100, 109), (300, 309)]}
    young = state.with_gaps_closed(segment_starts(waws.s3, waws.settings.bucket, state.gaps()))
    assert young.consumed[label] == [(100, 109), (300, 309)]
    later = datetime.now(UTC) + UNORDERED_SETTLE + timedelta(minutes=1)
    settled = state.with_gaps_closed(segment_starts(waws.s3, waws.settings.bucket, state.gaps(), now=later))
    assert settled.consumed[label] == [(100, 309)]
