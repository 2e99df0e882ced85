"""Change detection on the test-then-train signal: ADWIN, and the monitor a round feeds.

``Adwin`` is ADWIN (A. Bifet and R. Gavaldà, "Learning from time-changing data with adaptive
windowing", SIAM International Conference on Data Mining (SDM) 2007), written here in numpy so
the worker does not depend on River. It keeps a window of the most recent values, summarised in
buckets of ``bucket_size`` values (count, sum, sum of squares, stream position of the first
value). After every full bucket it tests each split of the window into an older part W0 and a
newer part W1 (both at least ``min_side`` values) with the bound of ADWIN2's variance-aware form

    ε = sqrt(2 · σ²_W · ln(2 ln n / δ) / m) + 2 · ln(2 ln n / δ) / (3 m),   m = 1 / (1/n0 + 1/n1)

and drops W0 when |μ0 − μ1| > ε. Bifet and Gavaldà prove that, on a stationary stream, the
probability that ADWIN shrinks the window at a given step is at most δ, and that a change of the
mean by more than ε is detected. Cut points are checked at bucket boundaries only (as ADWIN2 does
with its exponential histogram), so a change is located to within one bucket.

Parameters (defaults in brackets):

- ``delta`` [0.002, River's default]: confidence. Smaller → fewer false alarms, later detection.
- ``min_effect`` [0.0]: a change is *reported* only when |μ0 − μ1| also exceeds this; the window
  is shrunk on any significant change anyway. The worker's signal is the accuracy of a model
  that the gate may replace by one up to ``gate_tolerance`` worse, so it uses 0.05 to report
  real changes, not model swaps.
- ``alarm`` ["both"]: "down" reports only decreases of the mean (a drop in accuracy); an
  increase (the model learning) still shrinks the window but raises nothing.
- ``bucket_size`` [32], ``max_buckets`` [1024]: the window holds at most
  ``bucket_size · max_buckets`` values (the oldest bucket is dropped beyond that: memory and
  the cost of a check stay bounded), ``min_side`` [128]: the smallest W0 / W1 tested.

Example: a Bernoulli stream whose mean falls from 0.9 to 0.5 at position 5,000.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> bits = np.concatenate([rng.random(5000) < 0.9, rng.random(2000) < 0.5]).astype(float)
>>> changes = Adwin(alarm="down").update(bits)
>>> len(changes), 4900 <= changes[0].position <= 5100, changes[0].detected_at < 5300
(1, True, True)
>>> Adwin().update((rng.random(20000) < 0.9).astype(float))
[]

``DriftMonitor`` is what a round feeds: one ``Adwin`` on the serving model's correctness over
all new records (alarm on a drop), one per label on its correctness for that label's records
(a drop in one class's recall), and one per label on the label's share of the records (a label
distribution shift, both directions). Its state is saved with the round state (``to_dict``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Change:
    """A reported change: where the new regime starts and when it was seen."""

    position: int  # stream position of the first value after the cut
    detected_at: int  # stream position of the value that completed the detecting bucket
    before: float  # mean of the dropped part W0
    after: float  # mean of the kept part W1


class Adwin:
    """ADWIN over a stream of bounded values (here 0/1), bucketed; see the module docstring."""

    def __init__(self, delta: float = 0.002, min_effect: float = 0.0, alarm: str = "both", bucket_size: int = 32,
                 max_buckets: int = 1024, min_side: int = 128) -> None:
        if not 0 < delta < 1:
            raise ValueError("delta must be in (0, 1)")
        if alarm not in ("both", "down", "up"):
            raise ValueError("alarm must be 'both', 'down' or 'up'")
        self.delta, self.min_effect, self.alarm = delta, min_effect, alarm
        self.bucket_size, self.max_buckets, self.min_side = bucket_size, max_buckets, min_side
        # Full buckets, oldest first: count, sum, sum of squares, start position.
        self._b = np.zeros((0, 4), dtype=np.float64)
        self._part = np.zeros(4, dtype=np.float64)  # the bucket being filled
        self.position = 0  # values seen so far

    @property
    def width(self) -> int:
        """Values in the window (full buckets + the one being filled)."""
        return int(self._b[:, 0].sum() + self._part[0])

    @property
    def mean(self) -> float | None:
        n = self._b[:, 0].sum() + self._part[0]
        return float((self._b[:, 1].sum() + self._part[1]) / n) if n else None

    def update(self, values: np.ndarray, positions: np.ndarray | None = None) -> list[Change]:
        """Feed values in stream order; returns the changes reported (usually none). Inputs are not written."""
        values = np.asarray(values, dtype=np.float64).ravel()
        pos = (np.arange(self.position, self.position + len(values)) if positions is None
               else np.asarray(positions, dtype=np.int64).ravel())
        changes: list[Change] = []
        i = 0
        while i < len(values):
            if self._part[0] == 0:
                self._part[3] = pos[i]
            take = min(self.bucket_size - int(self._part[0]), len(values) - i)
            chunk = values[i:i + take]
            self._part[:3] += (take, chunk.sum(), (chunk * chunk).sum())
            i += take
            self.position = int(pos[i - 1]) + 1
            if self._part[0] == self.bucket_size:
                self._b = np.vstack([self._b, self._part[None, :]])[-self.max_buckets:]
                self._part = np.zeros(4, dtype=np.float64)
                change = self._check()
                if change is not None:
                    changes.append(change)
        return changes

    def seed(self, mean: float, n: int, end: int) -> int:
        """Start an empty window with ``n`` values of mean ``mean`` (0/1, evenly spread, so no split
        inside them differs) at the stream positions just before ``end``: evidence measured before
        the stream reached this detector (see ``DriftMonitor.observe``). ``n`` is rounded down to
        whole buckets (the next value then starts a bucket, so a cut at ``end`` is located exactly);
        fewer than ``min_side`` values seed nothing. Returns the number of values seeded."""
        n = min(int(n), self.bucket_size * self.max_buckets // 2) // self.bucket_size * self.bucket_size
        if self.width or n < self.min_side:
            return 0
        i = np.arange(n + 1)
        values = np.diff(np.floor(i * min(max(mean, 0.0), 1.0)))
        self.update(values, np.arange(end - n, end))
        return n

    def _check(self) -> Change | None:
        counts, sums, sqs = self._b[:, 0], self._b[:, 1], self._b[:, 2]
        n = counts.sum()
        if len(counts) < 2 or n < 2 * self.min_side:
            return None
        n0 = np.cumsum(counts)[:-1]  # split after bucket k: W0 = buckets[:k+1]
        s0 = np.cumsum(sums)[:-1]
        n1, s1 = n - n0, sums.sum() - s0
        ok = (n0 >= self.min_side) & (n1 >= self.min_side)
        if not ok.any():
            return None
        mu = sums.sum() / n
        var = max(sqs.sum() / n - mu * mu, 0.0)
        dd = math.log(2.0 * math.log(n) / self.delta)
        m = 1.0 / (1.0 / n0 + 1.0 / n1)
        eps = np.sqrt(2.0 * var * dd / m) + 2.0 * dd / (3.0 * m)
        diff = s1 / n1 - s0 / n0  # > 0: the newer part is higher
        cut = ok & (np.abs(diff) > eps)
        if not cut.any():
            return None
        # Where: the maximum-likelihood split for a shift of the mean (largest |μ1 − μ0|·√m, the
        # CUSUM statistic) over every bucket boundary, in the detected direction — the newest
        # part may still be shorter than ``min_side`` when the change is caught early.
        sign = np.sign(diff[int(np.argmax(np.where(cut, np.abs(diff) - eps, -np.inf)))])
        k = int(np.argmax(sign * diff * np.sqrt(m)))
        before, after = float(s0[k] / n0[k]), float(s1[k] / n1[k])
        position, detected_at = int(self._b[k + 1, 3]), self.position - 1
        self._b = self._b[k + 1:]
        big = abs(after - before) > self.min_effect
        wanted = self.alarm == "both" or (self.alarm == "down") == (after < before)
        return Change(position, detected_at, before, after) if big and wanted else None

    def to_dict(self) -> dict[str, Any]:
        return {"params": [self.delta, self.min_effect, self.alarm, self.bucket_size, self.max_buckets, self.min_side],
                "buckets": self._b.tolist(), "part": self._part.tolist(), "position": self.position}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Adwin:
        delta, min_effect, alarm, bucket_size, max_buckets, min_side = d["params"]
        a = cls(float(delta), float(min_effect), str(alarm), int(bucket_size), int(max_buckets), int(min_side))
        a._b = np.asarray(d["buckets"], dtype=np.float64).reshape(-1, 4)
        a._part = np.asarray(d["part"], dtype=np.float64)
        a.position = int(d["position"])
        return a


@dataclass(frozen=True)
class DriftReport:
    """What the monitor saw in one round's records."""

    detected: bool
    change_at: int | None = None  # stream position where the new regime starts (latest of the signals)
    signals: tuple[str, ...] = ()  # e.g. ("accuracy", "recall/warm", "share/cold")
    changes: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"detected": self.detected, "change_at": self.change_at, "signals": list(self.signals),
                "changes": self.changes}


class DriftMonitor:
    """One ADWIN on overall correctness, one per label on recall, one per label on its share."""

    def __init__(self, labels: tuple[str, ...], delta: float = 0.002, min_effect: float = 0.05,
                 detectors: dict[str, Adwin] | None = None) -> None:
        self.labels, self.delta, self.min_effect = labels, delta, min_effect
        self.detectors = detectors if detectors is not None else self._fresh()

    def _fresh(self) -> dict[str, Adwin]:
        d = {"accuracy": Adwin(self.delta, self.min_effect, alarm="down")}
        for lab in self.labels:
            d[f"recall/{lab}"] = Adwin(self.delta, self.min_effect, alarm="down")
            d[f"share/{lab}"] = Adwin(self.delta, self.min_effect, alarm="both")
        return d

    def observe(self, correct: np.ndarray, y: np.ndarray, positions: np.ndarray,
                reference: Mapping[str, tuple[float, int]] | None = None) -> DriftReport:
        """Feed one round's records in stream order: whether the serving model was right, their labels.

        ``reference`` (detector name → (mean, values)) is what was measured before the first
        records a detector sees: the serving model's held-out accuracy on its gate's rows, the label
        shares of the records it learned from. A detector that has seen nothing yet starts its
        window with it (``Adwin.seed``), so a change that came before the model was first scored —
        the records of that first round all alike — is still compared with a "before".
        """
        correct = np.asarray(correct, dtype=np.float64)
        y, positions = np.asarray(y), np.asarray(positions, dtype=np.int64)
        found: dict[str, Change] = {}
        for name, det in self.detectors.items():
            if reference and name in reference and len(positions) and not det.width:
                det.seed(*reference[name], end=int(positions[0]))
            kind, _, lab = name.partition("/")
            if kind == "accuracy":
                changes = det.update(correct, positions)
            else:
                i = self.labels.index(lab)
                mask = y == i
                changes = (det.update(correct[mask], positions[mask]) if kind == "recall"
                           else det.update(mask.astype(np.float64), positions))
            if changes:
                found[name] = changes[0]
        if not found:
            return DriftReport(False)
        # The latest located start: training on a few post-change rows fewer beats training on old ones.
        return DriftReport(True, change_at=max(c.position for c in found.values()), signals=tuple(sorted(found)),
                           changes={k: {"position": c.position, "detected_at": c.detected_at,
                                        "before": round(c.before, 4), "after": round(c.after, 4)}
                                    for k, c in sorted(found.items())})

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "delta": self.delta, "min_effect": self.min_effect,
                "detectors": {k: v.to_dict() for k, v in self.detectors.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriftMonitor:
        return cls(tuple(d["labels"]), float(d["delta"]), float(d["min_effect"]),
                   {k: Adwin.from_dict(v) for k, v in d["detectors"].items()})
