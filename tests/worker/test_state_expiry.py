"""Superseded state objects are marked for the bucket's lifecycle rule as rounds commit: storage holds
the last few states (plus a day of marked ones), not one per round, and the worker deletes none."""
from __future__ import annotations

import time

import pytest

from autotraining.generator import generate
from worker.state import KEEP_STATES, SUPERSEDED_TAG, TrainingState, expire_states


class Killed(BaseException):
    """SIGKILL at a hook point."""


def _unmarked_state_keys(waws) -> list[str]:
    """State objects the lifecycle rule will not expire (untagged)."""
    s3, bucket = waws.s3, waws.settings.bucket
    listing = s3.list_objects_v2(Bucket=bucket, Prefix="state/")
    return sorted(o["Key"] for o in listing.get("Contents", [])
                  if SUPERSEDED_TAG not in s3.get_object_tagging(Bucket=bucket, Key=o["Key"])["TagSet"])


def _all_state_keys(waws) -> list[str]:
    listing = waws.s3.list_objects_v2(Bucket=waws.settings.bucket, Prefix="state/")
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_only_the_last_committed_states_stay_unmarked_and_none_is_deleted(waws, log_segment, make_worker, registry,
                                                                          schema):
    w = make_worker()
    for i in range(KEEP_STATES + 3):
        log_segment(generate(schema, 40, seed=i), 100 + 40 * i)
        w.run()
    history = registry.history()
    assert len(history) == KEEP_STATES + 3
    assert _unmarked_state_keys(waws) == sorted(v.state_key for v in history[:KEEP_STATES])
    assert _all_state_keys(waws) == sorted(v.state_key for v in history)  # marked, not deleted
    latest = waws.s3.get_object(Bucket=waws.settings.bucket, Key=history[0].state_key)["Body"].read()
    assert TrainingState.from_bytes(latest).records_seen == 40 * (KEEP_STATES + 3)


def test_a_killed_attempts_state_is_marked_when_its_version_commits(waws, log_segment, make_worker, registry,
                                                                   schema):
    def kill(step: str) -> None:
        if step == "before_commit":
            raise Killed(step)

    log_segment(generate(schema, 100, seed=1), 100)
    with pytest.raises(Killed):
        make_worker(hook=kill, visibility_seconds=1).run()
    orphan = _unmarked_state_keys(waws)
    assert len(orphan) == 1 and registry.latest() is None
    time.sleep(1.2)
    make_worker().run()
    assert _unmarked_state_keys(waws) == [registry.get("000001").state_key] != orphan
    assert orphan[0] in _all_state_keys(waws)


def test_a_state_whose_marking_failed_is_marked_by_a_later_commit(waws) -> None:
    s3, bucket = waws.s3, waws.settings.bucket
    for v in range(1, 9):
        s3.put_object(Bucket=bucket, Key=f"state/{v:06d}-a.npz", Body=b"s")
    # Commit 000004 should have marked 000001 but its calls failed; commit 000005 marks it (and 000002).
    assert sorted(expire_states(s3, bucket, "state/000005-a.npz")) == ["state/000001-a.npz", "state/000002-a.npz"]
    # Beyond the look-back window (2 * KEEP_STATES - 1 versions) nothing is listed again.
    assert "state/000001-a.npz" not in expire_states(s3, bucket, "state/000008-a.npz")
