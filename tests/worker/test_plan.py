"""Round planning without AWS or TensorFlow: replay and gate rows before and after a change, scaling, state."""
from __future__ import annotations

import numpy as np

from autotraining.settings import Settings
from worker import trainer
from worker.drain import RecordBatch
from worker.plan import Moments, plan_round
from worker.state import TrainingState

LABELS = ("a", "b", "c")
SETTINGS = Settings(reservoir_size=4000, replay_recent_share=0.5, gate_recent_weight=0.5)


def batch(start: int, n: int, rng: np.random.Generator, shift: float = 0.0) -> RecordBatch:
    ids = (np.arange(start, start + n, dtype=np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    return RecordBatch(x=rng.normal(shift, 1.0, (n, 2)), y=rng.integers(0, 3, n), ids=ids, segments=("s",),
                       poison=())


def history(rounds: int, rng: np.random.Generator, accuracy: float = 0.95) -> TrainingState:
    """A state after ``rounds`` stationary rounds of 2,000 records (serving model right ``accuracy`` of the time)."""
    state = TrainingState.empty(2, SETTINGS.reservoir_size, recent_share=0.5, n_labels=3)
    for r in range(rounds):
        new = batch(r * 2000, 2000, rng)
        plan = plan_round(state, new, rng.random(2000) < accuracy, LABELS, SETTINGS,
                          (np.zeros(2), np.ones(2)) if r else None)
        assert not plan.drift.detected
        state = plan.next_state
    return state


def test_stationary_round_replays_the_sample_and_weights_the_newest_round_by_the_setting() -> None:
    rng = np.random.default_rng(1)
    state = history(4, rng)
    new = batch(8000, 2000, rng)
    plan = plan_round(state, new, rng.random(2000) < 0.95, LABELS, SETTINGS, (np.zeros(2), np.ones(2)))
    assert not plan.drift.detected and plan.rescale is None
    assert len(plan.train_y) + len(plan.holdout_y) == 2000 + len(state.reservoir)
    held_new = trainer.is_holdout(new.ids).sum()
    # The newest round's held-out rows carry half the gate's weight, the replay's the other half.
    assert np.isclose(plan.holdout_w[:held_new].sum() / plan.holdout_w.sum(), 0.5)
    assert plan.next_state.reservoir.seen == 10000 and plan.next_state.records_seen == 10000


def test_after_a_detected_change_only_post_change_rows_are_trained_on_and_judged() -> None:
    rng = np.random.default_rng(2)
    state = history(4, rng)
    new = batch(8000, 2000, rng)
    correct = np.concatenate([rng.random(400) < 0.95, rng.random(1600) < 0.3])  # the world changes at 8,400
    plan = plan_round(state, new, correct, LABELS, SETTINGS, (np.zeros(2), np.ones(2)))
    assert plan.drift.detected and "accuracy" in plan.drift.signals
    change = plan.drift.change_at
    assert change is not None and abs(change - 8400) <= 96
    post = new.x[np.arange(8000, 10000) >= change]
    rows = np.concatenate([plan.train_x, plan.holdout_x])
    assert len(rows) == len(post)  # no replay row from before the change, no pre-change new row
    assert {tuple(r) for r in rows} == {tuple(r) for r in post}
    assert np.allclose(plan.holdout_w, 1.0)  # post-change rows only, equally weighted
    assert (plan.next_state.reservoir.t >= change).all() and plan.next_state.change_at == change
    assert plan.metrics["drift"]["detected"] and plan.metrics["drift"]["change_at"] == change


def test_planning_leaves_the_committed_state_untouched() -> None:
    rng = np.random.default_rng(3)
    state = history(3, rng)
    before = state.to_bytes()
    new = batch(6000, 2000, rng)
    plan_round(state, new, rng.random(2000) < 0.2, LABELS, SETTINGS, (np.zeros(2), np.ones(2)))
    assert state.to_bytes() == before


def test_moving_features_ask_for_restandardization_and_steady_ones_do_not() -> None:
    rng = np.random.default_rng(4)
    state = history(3, rng)
    steady = plan_round(state, batch(6000, 2000, rng), rng.random(2000) < 0.95, LABELS, SETTINGS,
                        (np.zeros(2), np.ones(2)))
    assert steady.rescale is None
    moved = plan_round(state, batch(6000, 4000, rng, shift=3.0), rng.random(4000) < 0.95, LABELS, SETTINGS,
                       (np.zeros(2), np.ones(2)))
    assert moved.rescale is not None
    mean, std = moved.rescale
    assert (mean > 1.0).all() and (std > 0.5).all()


def test_running_moments_forget_the_past_with_a_half_life() -> None:
    rng = np.random.default_rng(5)
    m = Moments.of(rng.normal(0.0, 1.0, (5000, 1)))
    m = m.merged(rng.normal(10.0, 1.0, (5000, 1)), half_life=5000)
    # Old weight halves: 2,500 at mean 0 vs 5,000 at mean 10 → mean ≈ 6.67.
    assert abs(float(m.mean[0]) - 20 / 3) < 0.1
    assert float(m.var[0]) > 20  # the two regimes apart
