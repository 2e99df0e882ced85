"""ADWIN and the drift monitor: known change points found, stationary streams quiet, state saved, River agrees."""
from __future__ import annotations

import doctest

import numpy as np
import pytest

import worker.drift
from worker.drift import Adwin, DriftMonitor


def bernoulli(rng: np.random.Generator, *parts: tuple[int, float]) -> np.ndarray:
    return np.concatenate([(rng.random(n) < p).astype(float) for n, p in parts])


def test_docstring_example_runs() -> None:
    result = doctest.testmod(worker.drift)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(("before", "after"), [(0.95, 0.5), (0.9, 0.7), (0.6, 0.4)])
def test_drop_is_located_within_a_few_buckets_of_the_known_change_point(before: float, after: float) -> None:
    rng = np.random.default_rng(3)
    changes = Adwin(alarm="down").update(bernoulli(rng, (8000, before), (4000, after)))
    assert len(changes) == 1
    assert abs(changes[0].position - 8000) <= 4 * 32
    assert 8000 <= changes[0].detected_at < 8000 + 2000
    assert changes[0].before > changes[0].after


@pytest.mark.slow
def test_false_alarm_rate_on_stationary_streams_is_below_delta() -> None:
    # 200 streams × 20,000 values, every bucket boundary checked: the measured rate per stream.
    alarms = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        p = 0.5 + 0.45 * rng.random()
        alarms += len(Adwin(delta=0.002).update(bernoulli(rng, (20000, p))))
    assert alarms / 200 <= 0.01


def test_an_increase_shrinks_the_window_but_is_not_reported_when_watching_drops() -> None:
    rng = np.random.default_rng(5)
    a = Adwin(alarm="down")
    assert a.update(bernoulli(rng, (4000, 0.5), (4000, 0.95))) == []
    assert a.width < 6000  # the old, lower part was dropped
    assert a.mean is not None and a.mean > 0.9


def test_min_effect_hides_small_changes() -> None:
    rng = np.random.default_rng(6)
    bits = bernoulli(rng, (20000, 0.97), (20000, 0.94))
    assert len(Adwin(alarm="down").update(bits)) == 1
    assert Adwin(alarm="down", min_effect=0.05).update(bits) == []


def test_saved_and_restored_detector_continues_like_an_uninterrupted_one() -> None:
    rng = np.random.default_rng(7)
    bits = bernoulli(rng, (6000, 0.9), (3000, 0.6))
    whole = Adwin(alarm="down").update(bits)
    first = Adwin(alarm="down")
    got = first.update(bits[:5001])
    resumed = Adwin.from_dict(first.to_dict())
    got += resumed.update(bits[5001:])
    assert got == whole and len(got) == 1


def test_inputs_are_not_written() -> None:
    bits = np.ones(500)
    Adwin().update(bits)
    assert (bits == 1).all()


def test_detection_delay_is_comparable_to_rivers_adwin() -> None:
    from river.drift import ADWIN

    delays_ours, delays_river = [], []
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        bits = bernoulli(rng, (10000, 0.9), (5000, 0.6))
        ours = Adwin(alarm="down").update(bits)
        river = ADWIN(delta=0.002)
        found = None
        for i, b in enumerate(bits):
            river.update(b)
            if river.drift_detected and i >= 10000:
                found = i
                break
        assert ours and found is not None
        delays_ours.append(ours[0].detected_at - 10000)
        delays_river.append(found - 10000)
    # Checked at bucket boundaries (32 values) against River's clock of 32: same order of delay.
    assert np.median(delays_ours) <= 2 * np.median(delays_river) + 64


LABELS = ("a", "b", "c")


def test_monitor_reports_an_accuracy_drop_with_its_position() -> None:
    rng = np.random.default_rng(8)
    m = DriftMonitor(LABELS)
    y = rng.integers(0, 3, 10000)
    correct = bernoulli(rng, (6000, 0.95), (4000, 0.4))
    report = m.observe(correct, y, np.arange(10000))
    assert report.detected and "accuracy" in report.signals
    assert report.change_at is not None and abs(report.change_at - 6000) <= 200


def test_monitor_reports_a_label_share_shift_even_when_accuracy_holds() -> None:
    rng = np.random.default_rng(9)
    m = DriftMonitor(LABELS)
    y = np.concatenate([rng.integers(0, 3, 6000), rng.choice(3, 4000, p=[0.7, 0.15, 0.15])])
    report = m.observe(np.ones(10000), y, np.arange(10000))
    assert report.detected and "share/a" in report.signals and "accuracy" not in report.signals


def test_monitor_reports_one_class_losing_its_recall() -> None:
    rng = np.random.default_rng(10)
    m = DriftMonitor(LABELS)
    y = rng.integers(0, 3, 12000)
    correct = (rng.random(12000) < 0.95).astype(float)
    late_b = (np.arange(12000) >= 6000) & (y == 1)
    correct[late_b] = (rng.random(late_b.sum()) < 0.5)
    report = m.observe(correct, y, np.arange(12000))
    assert "recall/b" in report.signals


def test_monitor_is_quiet_on_stationary_rounds_and_survives_a_save() -> None:
    rng = np.random.default_rng(11)
    m = DriftMonitor(LABELS)
    for r in range(8):  # eight rounds of 5,000, saved and restored between rounds like the worker does
        y = rng.integers(0, 3, 5000)
        report = m.observe((rng.random(5000) < 0.93).astype(float), y, np.arange(r * 5000, (r + 1) * 5000))
        assert not report.detected
        m = DriftMonitor.from_dict(m.to_dict())


def test_a_change_before_the_first_scored_round_is_reported_against_the_models_measurements() -> None:
    """The round after the first publish: every record already of the new concept, so the window
    alone has no "before"; the serving model's held-out accuracy is one."""
    rng = np.random.default_rng(12)
    y = rng.integers(0, 3, 5000)
    correct = bernoulli(rng, (5000, 0.55))
    positions = np.arange(3000, 8000)
    assert not DriftMonitor(LABELS).observe(correct, y, positions).detected  # the limit without a reference
    report = DriftMonitor(LABELS).observe(correct, y, positions, {"accuracy": (0.96, 600)})
    assert report.detected and "accuracy" in report.signals and report.change_at == 3000


def test_a_label_shift_before_the_first_scored_round_is_reported_against_the_learned_shares() -> None:
    rng = np.random.default_rng(13)
    y = rng.choice(3, 5000, p=[0.7, 0.15, 0.15])
    shares = {f"share/{lab}": (1 / 3, 3000) for lab in LABELS}
    report = DriftMonitor(LABELS).observe(np.ones(5000), y, np.arange(3000, 8000), shares)
    assert report.detected and "share/a" in report.signals and 3000 <= report.change_at <= 3000 + 32  # one bucket


def test_a_first_scored_round_like_the_models_measurements_raises_no_alarm() -> None:
    rng = np.random.default_rng(14)
    alarms = 0
    for _ in range(100):
        y = rng.integers(0, 3, 5000)
        held = bernoulli(rng, (600, 0.93))  # the gate's estimate itself is noisy
        ref = {"accuracy": (float(held.mean()), 600), **{f"share/{lab}": (1 / 3, 3000) for lab in LABELS}}
        alarms += DriftMonitor(LABELS).observe(bernoulli(rng, (5000, 0.93)), y, np.arange(3000, 8000), ref).detected
    assert alarms == 0


def test_a_reference_seeds_only_a_detector_that_has_seen_nothing_and_enough_of_it() -> None:
    det = Adwin()
    assert det.seed(0.9, 100, end=500) == 0 and det.width == 0  # fewer than min_side values: no evidence
    assert det.seed(0.9, 1000, end=1000) == 992 and det.width == 992 and abs(det.mean - 0.9) < 0.002
    assert det.seed(0.5, 1000, end=1000) == 0 and det.width == 992  # its own window comes first
    m = DriftMonitor(LABELS)
    m.observe(np.ones(3000), np.zeros(3000, dtype=int), np.arange(3000))
    report = m.observe(np.ones(3000), np.zeros(3000, dtype=int), np.arange(3000, 6000), {"accuracy": (0.2, 5000)})
    assert not report.detected  # the monitor's own history wins over a reference
