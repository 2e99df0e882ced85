"""The pure half of a round: what to train on and what to judge on, decided without AWS or TensorFlow.

``plan_round`` takes the committed ``TrainingState``, the round's new records, whether the serving
model got each of them right (test-then-train) and the settings, and returns a ``RoundPlan``:

1. *Drift*: the serving model's correctness (overall, per label) and the label shares are fed to
   the ``worker.drift.DriftMonitor`` in stream order. A reported change gives a stream position
   ``change_at`` where the new regime starts. The first time the monitor sees the stream (the
   round after the first publish), its windows start from the serving model's own measurements
   (``drift_reference``: its gate's held-out accuracy and recalls, the label shares it learned
   from), so a change before that round is still a change.
2. *Replay*: the replay sample (``worker.reservoir``: a recent window + per-label long-term
   memory). After a change, only rows from ``change_at`` on are used — the new records of this
   round included — so the new concept wins at once; the next state's sample is cut the same way.
3. *Gate rows*: held-out rows (``trainer.is_holdout``) of the new records and of the replay,
   weighted so the newest round carries ``gate_recent_weight`` of the total (the rest spread
   over the replay's held-out rows); after a change, post-change rows only.
4. *Scaling*: running feature moments (exponentially forgotten with a half-life of one reservoir
   of records, restarted at a change). When they have moved more than ``RESCALE_AT`` model
   standard deviations (mean) or by a factor beyond e^±``RESCALE_AT`` (spread) away from the
   statistics the serving model standardizes with, ``rescale`` asks for a re-standardization
   (``trainer.restandardize``: same answers, new statistics, then training continues).

Nothing here writes its inputs: the state's reservoir and detectors are copied.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from autotraining.settings import Settings
from worker import trainer
from worker.drain import RecordBatch
from worker.drift import DriftMonitor, DriftReport
from worker.state import TrainingState

CHECK_ROWS = 64  # rows on which the exported model must match the Keras model
RESCALE_AT = 0.5


@dataclass(frozen=True)
class Moments:
    """Exponentially weighted feature moments: total weight, mean, variance."""

    weight: float
    mean: np.ndarray
    var: np.ndarray

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Moments | None:
        if not d:
            return None
        return cls(float(d["weight"]), np.asarray(d["mean"], dtype=np.float64), np.asarray(d["var"], dtype=np.float64))

    def to_dict(self) -> dict[str, Any]:
        return {"weight": self.weight, "mean": self.mean.tolist(), "var": self.var.tolist()}

    def merged(self, x: np.ndarray, half_life: float) -> Moments:
        """These moments, forgotten by 2^(−len(x)/half_life), merged with the rows x (Chan et al.)."""
        if len(x) == 0:
            return self
        w_old = self.weight * 0.5 ** (len(x) / half_life)
        n = float(len(x))
        mean_x, var_x = x.mean(axis=0), x.var(axis=0)
        total = w_old + n
        delta = mean_x - self.mean
        mean = self.mean + delta * n / total
        var = (w_old * self.var + n * var_x + delta * delta * w_old * n / total) / total
        return Moments(total, mean, var)

    @classmethod
    def of(cls, x: np.ndarray) -> Moments:
        return cls(float(len(x)), x.mean(axis=0), x.var(axis=0))


@dataclass(frozen=True)
class RoundPlan:
    """What one round trains on, what its gate scores on, and the state it commits."""

    train_x: np.ndarray
    train_y: np.ndarray
    holdout_x: np.ndarray
    holdout_y: np.ndarray
    holdout_w: np.ndarray
    check_x: np.ndarray  # rows on which the export is checked against Keras
    drift: DriftReport
    rescale: tuple[np.ndarray, np.ndarray] | None  # (mean, std) to re-standardize the warm start with
    next_state: TrainingState
    metrics: dict[str, Any]


def _gate_weights(is_new: np.ndarray, recent_weight: float) -> np.ndarray:
    """Weights of held-out rows: the new ones share ``recent_weight`` of the total, the replay the rest."""
    n_new, n_old = int(is_new.sum()), int((~is_new).sum())
    if n_new == 0 or n_old == 0:
        return np.ones(len(is_new))
    return np.where(is_new, recent_weight / n_new, (1.0 - recent_weight) / n_old) * len(is_new)


def _rescale(moments: Moments, scaling: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray] | None:
    if scaling is None:
        return None
    mean, std = scaling
    new_std = np.sqrt(np.maximum(moments.var, 0.0))
    new_std = np.where(new_std > 1e-12, new_std, std)
    shift = max(float(np.max(np.abs(moments.mean - mean) / std)), float(np.max(np.abs(np.log(new_std / std)))))
    return (moments.mean, new_std) if shift > RESCALE_AT else None


def drift_reference(holdout: Mapping[str, Any] | None, label_counts: Mapping[str, int],
                    labels: tuple[str, ...]) -> dict[str, tuple[float, int]]:
    """What the serving model was measured at before the stream reached the monitor, per detector:
    (mean, number of values) — its gate's held-out accuracy and per-label recall (``holdout``: the
    ``Scores.to_dict`` its round recorded) and the label shares of the records it learned from."""
    seen = sum(label_counts.get(lab, 0) for lab in labels)
    ref: dict[str, tuple[float, int]] = {}
    if seen:
        ref.update({f"share/{lab}": (label_counts.get(lab, 0) / seen, seen) for lab in labels})
    n = int((holdout or {}).get("n") or 0)
    if holdout and n and holdout.get("accuracy") is not None:
        ref["accuracy"] = (float(holdout["accuracy"]), n)
        for lab, recall in (holdout.get("per_class") or {}).items():
            if recall is not None and lab in labels and seen:
                ref[f"recall/{lab}"] = (float(recall), round(n * label_counts.get(lab, 0) / seen))
    return ref


def plan_round(state: TrainingState, new: RecordBatch, correct: np.ndarray, labels: tuple[str, ...],
               settings: Settings, scaling: tuple[np.ndarray, np.ndarray] | None,
               measured: Mapping[str, Any] | None = None) -> RoundPlan:
    """Decide the round (see the module docstring). ``scaling`` is the serving model's (mean, std), None
    without one; ``measured`` its gate's held-out scores (``Scores.to_dict``), when its round recorded them."""
    positions = state.reservoir.seen + np.arange(new.size, dtype=np.int64)
    if settings.drift_delta > 0:
        monitor = (DriftMonitor.from_dict(state.drift) if state.drift
                   else DriftMonitor(labels, settings.drift_delta, settings.drift_min_effect))
        # Without a serving model there is no correctness to watch (the first round).
        report = (monitor.observe(correct, new.y, positions, drift_reference(measured, state.label_counts, labels))
                  if scaling is not None else DriftReport(False))
        drift_state = monitor.to_dict()
    else:
        report, drift_state = DriftReport(False), {}
    change_at = report.change_at if report.detected and report.change_at is not None else state.change_at
    sample = state.reservoir.sample()
    keep_new = positions >= change_at
    keep_old = sample.t >= change_at if report.detected else np.ones(len(sample.y), dtype=bool)
    x = np.concatenate([new.x[keep_new], sample.x[keep_old]])
    y = np.concatenate([new.y[keep_new], sample.y[keep_old]])
    held = trainer.is_holdout(np.concatenate([new.ids[keep_new], sample.ids[keep_old]]))
    is_new = np.arange(len(y)) < int(keep_new.sum())

    post = new.x[keep_new]
    previous = Moments.from_dict(state.moments)
    if previous is not None and previous.mean.shape[0] != new.x.shape[1]:
        previous = None  # a schema change widened the encoding: the old moments describe other columns
    if len(post) == 0 and previous is not None:
        moments = previous
    elif previous is None or report.detected:
        moments = Moments.of(post)
    else:
        moments = previous.merged(post, half_life=float(state.reservoir.capacity))
    next_state = state.advanced(new.x, new.y, new.ids, labels, ranges=new.ranges)
    if report.detected:
        next_state.reservoir.cut(change_at)  # ``advanced`` made a fresh copy: the input state is unchanged
    next_state = dataclasses.replace(next_state, drift=drift_state, change_at=change_at, moments=moments.to_dict())
    rescale = _rescale(moments, scaling)
    metrics = {
        "drift": {**report.to_dict(), "last_change_at": change_at if change_at >= 0 else None},
        "train_rows": int((~held).sum()), "holdout_rows": int(held.sum()), "reservoir_rows": int(keep_old.sum()),
        "replay": {"window": state.reservoir.recent, "sample_rows": len(sample.y), "used_rows": int(keep_old.sum())},
        "scaling": {"restandardized": rescale is not None,
                    "mean": [round(float(v), 6) for v in (rescale[0] if rescale else moments.mean)]},
    }
    return RoundPlan(train_x=x[~held], train_y=y[~held], holdout_x=x[held], holdout_y=y[held],
                     holdout_w=_gate_weights(is_new[held], settings.gate_recent_weight), check_x=x[:CHECK_ROWS],
                     drift=report, rescale=rescale, next_state=next_state, metrics=metrics)
