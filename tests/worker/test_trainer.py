"""The model: folding scaling into the first Dense layer, warm starts, scoring, the gate, holdout split."""
from __future__ import annotations

import numpy as np
import pytest

from autotraining.generator import generate
from worker import trainer
from worker.drain import id_hashes


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    from autotraining.schema import load_schema

    s = load_schema()
    recs = generate(s, 1500, seed=4)
    return np.array([r.features for r in recs]), np.array([s.label_index(r.label) for r in recs])


@pytest.fixture(scope="module")
def model(data: tuple[np.ndarray, np.ndarray]) -> object:
    x, y = data
    return trainer.train(None, x[:1000], y[:1000], 3, trainer.TrainConfig(hidden=(8,), epochs=3))


def test_first_model_standardizes_with_training_statistics(data, model) -> None:
    x, _ = data
    mean, std = trainer.standardization(model)
    assert np.allclose(mean, x[:1000].mean(axis=0), rtol=1e-5)
    assert np.allclose(std, x[:1000].std(axis=0), rtol=1e-5)


def test_folded_model_takes_raw_features_and_answers_like_the_model(data, model) -> None:
    x, _ = data
    folded = trainer.fold(model)
    assert trainer.STANDARDIZE not in [layer.name for layer in folded.layers]
    assert np.allclose(trainer.predict_proba(folded, x[:200]), trainer.predict_proba(model, x[:200]), atol=1e-5)


def test_warm_start_keeps_scaling_and_leaves_the_base_model_untouched(data, model) -> None:
    x, y = data
    before = [w.copy() for w in model.get_weights()]
    candidate = trainer.train(model, x[1000:1200], y[1000:1200], 3, trainer.TrainConfig(hidden=(8,), epochs=1))
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert np.allclose(trainer.standardization(candidate)[0], trainer.standardization(model)[0])
    assert not all(np.array_equal(a, b) for a, b in zip(before, candidate.get_weights(), strict=True))


def test_h5_round_trip_gives_the_same_probabilities(data, model) -> None:
    x, _ = data
    again = trainer.from_h5_bytes(trainer.to_h5_bytes(model))
    assert np.array_equal(trainer.predict_proba(again, x[:50]), trainer.predict_proba(model, x[:50]))
    assert not again.get_layer(trainer.STANDARDIZE).trainable


def test_score_reports_overall_and_per_class_accuracy(model) -> None:
    class Fixed:
        output_shape = (None, 3)

        def __call__(self, x, training=False):
            return np.tile([0.1, 0.2, 0.7], (len(x), 1))  # always "warm"

    s = trainer.score(Fixed(), np.zeros((4, 4)), np.array([2, 2, 0, 1]), ("cold", "ok", "warm"))
    assert s.accuracy == 0.5 and s.per_class == {"cold": 0.0, "ok": 0.0, "warm": 1.0} and s.n == 4
    assert trainer.score(None, np.zeros((2, 4)), np.array([0, 1]), ("a", "b")).accuracy is None


def test_gate_publishes_unless_worse_by_more_than_tolerance() -> None:
    cur = trainer.Scores(accuracy=0.90)
    assert trainer.gate(trainer.Scores(accuracy=0.89), cur, 0.02, first=False).publish
    rejected = trainer.gate(trainer.Scores(accuracy=0.85), cur, 0.02, first=False)
    assert not rejected.publish and rejected.reason.startswith("worse by 0.0500")
    assert trainer.gate(trainer.Scores(accuracy=0.1), trainer.Scores(None), 0.02, first=True).reason == "first model"


def test_holdout_split_is_a_stable_tenth_of_ids() -> None:
    ids = id_hashes([f"rec-{i}" for i in range(20000)])
    held = trainer.is_holdout(ids)
    assert 0.09 < held.mean() < 0.11
    assert np.array_equal(held, trainer.is_holdout(ids.copy()))
    assert np.array_equal(held[:100], trainer.is_holdout(id_hashes([f"rec-{i}" for i in range(100)])))


def test_same_seed_trains_the_same_model_and_inputs_stay_unchanged(data) -> None:
    x, y = data
    x_before, y_before = x.copy(), y.copy()
    cfg = trainer.TrainConfig(hidden=(8,), epochs=1, seed=5)
    a = trainer.train(None, x[:300], y[:300], 3, cfg)
    b = trainer.train(None, x[:300], y[:300], 3, cfg)
    assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights(), strict=True))
    assert np.array_equal(x, x_before) and np.array_equal(y, y_before)


def test_restandardized_model_answers_the_same_and_its_export_still_matches(data, model) -> None:
    from autotraining.artifacts import MODEL_JSON
    from autotraining.predictor import Predictor
    from worker import publish

    x, _ = data
    moved = trainer.restandardize(model, x.mean(axis=0) + 3.0, x.std(axis=0) * 2.5)
    mean, std = trainer.standardization(moved)
    assert np.allclose(mean, x.mean(axis=0) + 3.0) and np.allclose(std, x.std(axis=0) * 2.5, rtol=1e-5)
    assert np.allclose(trainer.predict_proba(moved, x[:300]), trainer.predict_proba(model, x[:300]), atol=1e-5)
    warm = trainer.train(moved, x[:500], np.zeros(500, dtype=np.int64), 3, trainer.TrainConfig(hidden=(8,), epochs=1))
    files = publish.export_tfjs(trainer.fold(warm))
    got = Predictor.from_bytes(files[MODEL_JSON], files).predict_proba(x[:300])
    assert np.abs(got - trainer.predict_proba(warm, x[:300])).max() < 1e-5


def test_gate_after_a_change_refuses_a_candidate_no_better_than_chance() -> None:
    current = trainer.Scores(accuracy=0.35, n=500, chance=0.36)  # the old model on the new regime
    noise = trainer.Scores(accuracy=0.37, n=500, chance=0.36)  # trained on shuffled labels
    learnt = trainer.Scores(accuracy=0.95, n=500, chance=0.36)
    assert trainer.gate(noise, current, 0.02, first=False).publish  # the old rule alone lets it through
    refused = trainer.gate(noise, current, 0.02, first=False, min_kappa=0.1)
    assert not refused.publish and refused.reason.startswith("no better than chance")
    assert trainer.gate(learnt, current, 0.02, first=False, min_kappa=0.1).publish


def test_weighted_score_and_chance() -> None:
    class Constant:
        output_shape = (None, 3)

        def __call__(self, x, training=False):  # always label 0
            return np.tile([1.0, 0.0, 0.0], (len(x), 1))

    y = np.array([0, 0, 1, 2])
    s = trainer.score(Constant(), np.zeros((4, 1)), y, ("a", "b", "c"), weights=np.array([1.0, 1.0, 6.0, 0.0]))
    assert s.accuracy == 0.25 and s.chance == 0.75 and s.kappa is not None and s.kappa < 0


def test_effort_rule_trains_harder_and_from_both_starts_after_a_change() -> None:
    cfg = trainer.TrainConfig(epochs=12, batch_size=64, change_steps=1500, change_max_epochs=40)
    assert trainer.plan_effort(9000, False, True, cfg).starts == ("warm",)
    assert trainer.plan_effort(9000, False, True, cfg).epochs == 12
    assert trainer.plan_effort(9000, False, False, cfg).starts == ("fresh",)
    after = trainer.plan_effort(4500, True, True, cfg)
    assert after.starts == ("warm", "fresh") and after.epochs == 22  # ⌈1500 / ⌈4500/64⌉⌉
    assert trainer.plan_effort(200, True, True, cfg).epochs == 40
    assert trainer.plan_effort(90000, True, True, cfg).epochs == 12


def test_every_round_anneals_its_rate_to_the_configured_share_and_comparisons_keep_a_constant_rate(data) -> None:
    x, y = data
    cfg = trainer.TrainConfig(hidden=(8,), epochs=2, learning_rate=0.01, final_rate_share=0.05)
    for changed, has_model in ((False, False), (False, True), (True, True)):
        assert trainer.plan_effort(300, changed, has_model, cfg).final_rate_share == 0.05
    effort = trainer.plan_effort(300, False, False, cfg)
    annealed = trainer.train(None, x[:300], y[:300], 3, cfg, effort)
    # The round's last steps run at about the configured share of the rate (10 steps: the last at
    # step 9 of the cosine, 0.05 + 0.95 · ½(1 + cos 0.9π) ≈ 0.073 of it).
    assert 0.01 * 0.05 <= float(annealed.optimizer.learning_rate) < 0.01 * 0.1
    constant = trainer.train(None, x[:300], y[:300], 3, cfg)  # no effort: a plain fit (the benchmark's refits)
    assert float(constant.optimizer.learning_rate) == pytest.approx(0.01)
    assert not all(np.array_equal(p, q) for p, q in zip(annealed.get_weights(), constant.get_weights(), strict=True))
