"""The model and how a round trains and judges it: test-then-train, warm start, effort, the gate.

The model is a small MLP over the schema's features with a softmax over ``schema.labels``
(in order). Scaling of raw features is part of the model: its first layer, ``standardize``,
is a frozen diagonal Dense layer (W = diag(1/σ), b = −μ/σ) whose statistics travel with the
model (``model.h5``), so warm starts keep them. When the features' running moments move away
from them, ``restandardize`` swaps in the new statistics and compensates the first hidden layer
so the model answers exactly as before (then training continues on a well-scaled input). On
export the layer is folded into the next Dense layer (W' = diag(1/σ)·W, b' = b − (μ/σ)·W, see
``fold``), because TensorFlow.js 4.22 does not know Keras' ``Normalization`` layer; the folded
model takes raw feature values, like every client.

Each round (``worker.round.run_round``, planned by ``worker.round.plan_round``):

1. *Test-then-train*: the current model scores the round's new records before it sees them
   (prequential accuracy, overall and per class) — the signal ``worker.drift`` watches.
2. *Train*: the candidate warm-starts from the current weights (or is built fresh for the
   first round) and trains on the new records plus the replay sample, minus held-out rows,
   with the effort ``plan_effort`` decides (after a detected change: more passes, and a fresh
   model is trained beside the warm start; the gate keeps the better).
3. *Gate*: held-out rows are chosen by a hash of the record id (``is_holdout``), so the same
   record is held out in every round and never trained on. Candidate and current model are
   scored on the same held-out rows, weighted toward the newest round (post-change rows only
   after a change); the candidate is published only if it is not worse by more than
   ``gate_tolerance``. After a detected change the current model is no yardstick (it is wrong
   on the new regime), so the candidate must also beat chance (Cohen's κ against always the
   majority label ≥ ``gate_min_kappa``): a round of shuffled labels looks like a change, and
   is refused.

Rejected-round policy: a rejected round still commits (status ``rejected``, the serving model
stays the parent's). Its records are counted in ``records_seen`` and enter the reservoir, its
segments are marked consumed and its messages deleted — nothing is lost or counted twice, and
later rounds learn from those records through the reservoir.

TensorFlow is imported here with ``TF_USE_LEGACY_KERAS=1`` (set by ``worker/__init__``), so
``tf_keras`` models export in the format TensorFlow.js 4.22 loads.
"""
from __future__ import annotations

import io
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import worker  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

HOLDOUT_PER_MILLE = 100  # 10 % of record ids are held out for the gate, in every round
STANDARDIZE = "standardize"


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of the model and of one round's training."""

    hidden: tuple[int, ...] = (32, 32)
    epochs: int = 12
    batch_size: int = 64
    learning_rate: float = 3e-3
    seed: int = 0
    # After a detected change: at least this many gradient steps (epochs raised up to
    # ``change_max_epochs``), so a round of a few thousand post-change rows is learnt in full.
    change_steps: int = 3000
    change_max_epochs: int = 40
    # The learning rate at a round's last step, as a share of ``learning_rate``: the rate follows a
    # cosine from the full rate down to this (SGDR's annealing, Loshchilov & Hutter, ICLR 2017), so
    # each round ends with small steps that settle the boundaries. 1.0 = a constant rate.
    final_rate_share: float = 0.05


@dataclass(frozen=True)
class Effort:
    """How hard one round trains: passes, step size, and which starts to try."""

    epochs: int
    learning_rate: float
    starts: tuple[str, ...]  # "warm" (from the serving model), "fresh" (re-initialised)
    reason: str
    chosen: str = ""  # the start whose model the gate judged (set after training)
    final_rate_share: float = 1.0  # the rate at the last step / ``learning_rate`` (cosine annealing)

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "learning_rate": self.learning_rate, "starts": list(self.starts),
                "reason": self.reason, "chosen": self.chosen, "final_rate_share": self.final_rate_share}


def plan_effort(n_train: int, changed: bool, has_model: bool, config: TrainConfig) -> Effort:
    """The round's effort, by rule (measured in scripts/bench_drift.py, documented in docs/worker.md).

    - every round: the rate is annealed along a cosine from ``learning_rate`` to
      ``final_rate_share`` of it over the round's steps (docs/worker.md: after one round the
      covariate stream 0.992 → 0.999, stationary 0.992 → 0.997; the same number of steps);
    - no model yet: a fresh model, ``config.epochs`` passes;
    - stationary: warm start, ``config.epochs`` passes at ``config.learning_rate`` (what keeps
      stationary streams where they were);
    - after a detected change: enough passes for ``config.change_steps`` gradient steps over the
      (now post-change) rows, between ``config.epochs`` and ``config.change_max_epochs``, and a
      fresh model trained beside the warm start — after a large change the old weights can be a
      worse start than none; the gate keeps whichever scores better on post-change rows.
    """
    share = config.final_rate_share
    if not has_model:
        return Effort(config.epochs, config.learning_rate, ("fresh",), "first model", final_rate_share=share)
    if not changed:
        return Effort(config.epochs, config.learning_rate, ("warm",), "stationary", final_rate_share=share)
    steps_per_epoch = max(1, -(-max(n_train, 1) // config.batch_size))
    epochs = min(config.change_max_epochs, max(config.epochs, -(-config.change_steps // steps_per_epoch)))
    return Effort(epochs, config.learning_rate, ("warm", "fresh"), "change detected", final_rate_share=share)


@dataclass(frozen=True)
class Scores:
    """Accuracy of a model on some rows, overall and per label (None where a label has no rows)."""

    accuracy: float | None
    per_class: dict[str, float | None] = field(default_factory=dict)
    n: int = 0
    chance: float | None = None  # accuracy of always answering the (weighted) majority label

    @property
    def kappa(self) -> float | None:
        """Cohen's κ against the majority answer: 0 = no better than chance, 1 = perfect."""
        if self.accuracy is None or self.chance is None:
            return None
        return 1.0 if self.chance >= 1.0 else (self.accuracy - self.chance) / (1.0 - self.chance)

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "per_class": self.per_class, "n": self.n, "chance": self.chance}


@dataclass(frozen=True)
class GateDecision:
    publish: bool
    reason: str


def keras() -> Any:
    import logging

    import tf_keras

    # tf_keras warns "compiled metrics have yet to be built" on every warm-start load: noise.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return tf_keras


def is_holdout(id_hashes: np.ndarray) -> np.ndarray:
    """Held-out rows by id hash (bits 20.. of the hash, so independent of other uses of it)."""
    return (np.asarray(id_hashes, dtype=np.uint64) >> np.uint64(20)) % np.uint64(1000) < HOLDOUT_PER_MILLE


def build_model(n_features: int, n_labels: int, mean: np.ndarray, std: np.ndarray, config: TrainConfig) -> Any:
    """A fresh model whose first layer standardizes with (mean, std), fixed for its lifetime."""
    k = keras()
    k.utils.set_random_seed(config.seed)
    std = np.where(np.asarray(std, dtype=np.float64) > 1e-12, std, 1.0)
    model = k.Sequential([k.layers.InputLayer(input_shape=(n_features,), name="features")])
    scale = k.layers.Dense(n_features, name=STANDARDIZE, trainable=False)
    model.add(scale)
    for i, units in enumerate(config.hidden):
        model.add(k.layers.Dense(units, activation="relu", name=f"hidden{i + 1}"))
    model.add(k.layers.Dense(n_labels, activation="softmax", name="probabilities"))
    scale.set_weights([np.diag(1.0 / std).astype(np.float32), (-np.asarray(mean) / std).astype(np.float32)])
    return model


def standardization(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) the model's first layer applies."""
    w, b = model.get_layer(STANDARDIZE).get_weights()
    std = 1.0 / np.diag(w).astype(np.float64)
    return -b.astype(np.float64) * std, std


def restandardize(model: Any, mean: np.ndarray, std: np.ndarray) -> Any:
    """A copy of ``model`` standardizing with (mean, std) that answers exactly like ``model``.

    With old statistics (μo, σo) and new (μn, σn): (x − μo)/σo = ((x − μn)/σn)·(σn/σo) + (μn − μo)/σo,
    so the first hidden layer becomes W' = diag(σn/σo)·W, b' = b + ((μn − μo)/σo)·W.
    """
    k = keras()
    mo, so = standardization(model)
    mean = np.asarray(mean, dtype=np.float64)
    std = np.where(np.asarray(std, dtype=np.float64) > 1e-12, std, 1.0)
    out = k.models.clone_model(model)
    out.set_weights(model.get_weights())
    first = [layer for layer in out.layers if layer.name != STANDARDIZE][0]
    w, b = (a.astype(np.float64) for a in first.get_weights())
    first.set_weights([((std / so)[:, None] * w).astype(np.float32), (b + ((mean - mo) / so) @ w).astype(np.float32)])
    out.get_layer(STANDARDIZE).set_weights([np.diag(1.0 / std).astype(np.float32), (-mean / std).astype(np.float32)])
    return out


def train(base: Any | None, x: np.ndarray, y: np.ndarray, n_labels: int, config: TrainConfig,
          effort: Effort | None = None) -> Any:
    """A candidate: ``base``'s weights (warm start) or a fresh model, trained on (x, y). ``base`` is untouched."""
    k = keras()
    k.utils.set_random_seed(config.seed)
    epochs = effort.epochs if effort else config.epochs
    rate: Any = effort.learning_rate if effort else config.learning_rate
    if effort is not None and effort.final_rate_share < 1.0 and len(y):
        steps = epochs * -(-len(y) // config.batch_size)
        rate = k.optimizers.schedules.CosineDecay(rate, decay_steps=steps, alpha=effort.final_rate_share)
    if base is None:
        model = build_model(x.shape[1], n_labels, x.mean(axis=0), x.std(axis=0), config)
    else:
        model = k.models.clone_model(base)
        model.set_weights(base.get_weights())
    model.compile(optimizer=k.optimizers.Adam(learning_rate=rate), loss="sparse_categorical_crossentropy")
    if len(y):
        model.fit(x.astype(np.float32), y.astype(np.int64), epochs=epochs, batch_size=config.batch_size,
                  shuffle=True, verbose=0)
    return model


def predict_proba(model: Any, x: np.ndarray) -> np.ndarray:
    if len(x) == 0:
        return np.zeros((0, int(model.output_shape[-1])), dtype=np.float32)
    out = [np.asarray(model(x[i:i + 65536].astype(np.float32), training=False)) for i in range(0, len(x), 65536)]
    return np.concatenate(out)


def correct(model: Any | None, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per row, whether ``model`` predicts the label (all False without a model)."""
    if model is None or len(y) == 0:
        return np.zeros(len(y), dtype=bool)
    return np.asarray(np.argmax(predict_proba(model, x), axis=1) == y)


def score(model: Any | None, x: np.ndarray, y: np.ndarray, labels: tuple[str, ...],
          weights: np.ndarray | None = None) -> Scores:
    """(Weighted) accuracy of ``model`` on (x, y); no model or no rows → accuracy None."""
    if model is None or len(y) == 0:
        return Scores(accuracy=None, per_class={lab: None for lab in labels}, n=int(len(y)))
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    hit = correct(model, x, y)
    per_class: dict[str, float | None] = {}
    for i, lab in enumerate(labels):
        mask = y == i
        per_class[lab] = float(np.average(hit[mask], weights=w[mask])) if w[mask].sum() > 0 else None
    share = np.bincount(y, weights=w, minlength=len(labels)) / w.sum()
    return Scores(accuracy=float(np.average(hit, weights=w)), per_class=per_class, n=int(len(y)),
                  chance=float(share.max()))


def gate(candidate: Scores, current: Scores, tolerance: float, first: bool,
         min_kappa: float | None = None) -> GateDecision:
    """Publish the candidate unless it is worse than the current model by more than ``tolerance``,
    or (when ``min_kappa`` is given: after a change, where the current model is no yardstick)
    no better than always answering the majority label (κ < ``min_kappa``)."""
    if first:
        return GateDecision(True, "first model")
    if current.accuracy is None or candidate.accuracy is None:
        return GateDecision(True, "no held-out records")
    kappa = candidate.kappa
    if min_kappa is not None and kappa is not None and kappa < min_kappa:
        return GateDecision(False, f"no better than chance (kappa {kappa:.4f} < {min_kappa})")
    drop = current.accuracy - candidate.accuracy
    if drop > tolerance:
        return GateDecision(False, f"worse by {drop:.4f} (tolerance {tolerance})")
    return GateDecision(True, f"passed ({candidate.accuracy:.4f} vs {current.accuracy:.4f})")


def fold(model: Any) -> Any:
    """The export model: ``standardize`` folded into the first hidden layer (raw features in, same output)."""
    k = keras()
    dense = [layer for layer in model.layers if layer.name != STANDARDIZE]
    mean, std = standardization(model)
    n_features = len(mean)
    folded = k.Sequential([k.layers.InputLayer(input_shape=(n_features,), name="features")])
    for layer in dense:
        cfg = layer.get_config()
        cfg["trainable"] = True
        folded.add(k.layers.Dense.from_config(cfg))
    w, b = dense[0].get_weights()
    w64, b64 = w.astype(np.float64), b.astype(np.float64)
    folded.layers[0].set_weights([(w64 / std[:, None]).astype(np.float32),
                                  (b64 - (mean / std) @ w64).astype(np.float32)])
    for src, dst in zip(dense[1:], folded.layers[1:], strict=True):
        dst.set_weights(src.get_weights())
    return folded


def to_h5_bytes(model: Any) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.h5")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "HDF5 is legacy": it is what warm starts read
            model.save(path, include_optimizer=False, save_format="h5")
        with open(path, "rb") as f:
            return f.read()


def from_h5_bytes(data: bytes) -> Any:
    import h5py

    with h5py.File(io.BytesIO(data), "r") as h5:
        return keras().models.load_model(h5, compile=False)
