"""Superseded state objects are deleted as rounds commit: storage holds the last few states, not one per round."""
from __future__ import annotations

import time

import pytest

from autotraining.generator import generate
from worker.state import KEEP_STATES, TrainingState


class Killed(BaseException):
    """SIGKILL at a hook point."""


def _state_keys(waws) -> list[str]:
    listing = waws.s3.list_objects_v2(Bucket=waws.settings.bucket, Prefix="state/")
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_only_the_last_committed_states_are_kept(waws, log_segment, make_worker, registry, schema):
    w = make_worker()
    for i in range(KEEP_STATES + 3):
        log_segment(generate(schema, 40, seed=i), 100 + 40 * i)
        w.run()
    history = registry.history()
    assert len(history) == KEEP_STATES + 3
    assert _state_keys(waws) == sorted(v.state_key for v in history[:KEEP_STATES])
    latest = waws.s3.get_object(Bucket=waws.settings.bucket, Key=history[0].state_key)["Body"].read()
    assert TrainingState.from_bytes(latest).records_seen == 40 * (KEEP_STATES + 3)


def test_a_killed_attempts_state_is_deleted_when_its_version_commits(waws, log_segment, make_worker, registry,
                                                                    schema):
    def kill(step: str) -> None:
        if step == "before_commit":
            raise Killed(step)

    log_segment(generate(schema, 100, seed=1), 100)
    with pytest.raises(Killed):
        make_worker(hook=kill, visibility_seconds=1).run()
    orphan = _state_keys(waws)
    assert len(orphan) == 1 and registry.latest() is None
    time.sleep(1.2)
    make_worker().run()
    assert _state_keys(waws) == [registry.get("000001").state_key] != orphan
