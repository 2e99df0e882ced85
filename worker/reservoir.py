"""The replay sample: a window of the most recent records plus a per-label uniform long-term memory.

A round trains on its new records plus this sample, so the sample decides how much the past
weighs against the present. It has two parts, their balance set by ``recent_share``
(``AUTOTRAINING_REPLAY_RECENT_SHARE``, default 0.5):

- the *window*: the ``recent = round(capacity · recent_share)`` most recent rows, first in
  first out — every row among the last ``recent`` is in the sample (inclusion probability 1);
- the *long-term memory*: rows leaving the window are offered, per label, to Algorithm R
  (J. S. Vitter, "Random sampling with a reservoir", ACM TOMS 11(1), 1985) with
  ``(capacity − recent) // n_labels`` slots per label. An older row of label c is in the
  sample with probability min(1, slots / n_c), n_c the rows of label c that left the window.
  Stratifying by label keeps rare classes: a label with few rows keeps all of them.

With ``recent_share = 0`` and one label this is plain Algorithm R (a uniform sample of all
history: the method before recency mattered).

``cut(position)`` forgets every row from before a stream position (a detected change): the new
concept then wins the replay at once instead of after ``capacity`` rows. Rows carry their stream
position ``t`` (the order they were offered in). The random generator is seeded and saved with
the sample, so the same seed and stream give the same sample, across restarts too. ``add``
never mutates its inputs.

Inclusion probabilities, checked: 10 rows of one label, window 2, long-term 3 slots. The last two
rows are always in; each of the 8 older ones with probability 3/8.

>>> import numpy as np
>>> hits = np.zeros(10)
>>> for seed in range(4000):
...     r = Reservoir(capacity=5, n_features=1, seed=seed, recent_share=0.4)
...     r.add(np.arange(10.0).reshape(10, 1), np.zeros(10, dtype=np.int64), np.arange(10, dtype=np.uint64))
...     hits[r.ids.astype(int)] += 1
>>> (hits[8:] / 4000).tolist()
[1.0, 1.0]
>>> bool(np.allclose(hits[:8] / 4000, 3 / 8, atol=0.03))
True
>>> r.seen, len(r), sorted(r.t.tolist())[-2:]
(10, 5, [8, 9])
>>> r.cut(7); sorted(r.t.tolist())
[8, 9]
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np

_COLS = ("x", "y", "ids", "t")


@dataclass(frozen=True)
class Sample:
    """The sample's rows (copies): features, label indices, id hashes, stream positions."""

    x: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    t: np.ndarray


def _empty(n_features: int) -> dict[str, np.ndarray]:
    return {"x": np.zeros((0, n_features), dtype=np.float64), "y": np.zeros(0, dtype=np.int64),
            "ids": np.zeros(0, dtype=np.uint64), "t": np.zeros(0, dtype=np.int64)}


def _take(rows: dict[str, np.ndarray], idx: np.ndarray | slice) -> dict[str, np.ndarray]:
    return {k: rows[k][idx] for k in _COLS}


def _cat(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in _COLS}


class Reservoir:
    """A recent window plus per-label Algorithm R; ``capacity`` rows at most (see the module docstring)."""

    def __init__(self, capacity: int, n_features: int, seed: int = 0, recent_share: float = 0.0,
                 n_labels: int = 1) -> None:
        if capacity < 1:
            raise ValueError("reservoir capacity must be at least 1")
        if not 0.0 <= recent_share <= 1.0:
            raise ValueError("recent_share must be between 0 and 1")
        self.capacity, self.n_features, self.seed = capacity, n_features, seed
        self.recent_share, self.n_labels = recent_share, max(1, n_labels)
        self.recent = int(round(capacity * recent_share))
        self.slots = (capacity - self.recent) // self.n_labels if self.n_labels > 1 else capacity - self.recent
        self.seen = 0  # rows offered so far (the next row's stream position)
        self.offered = np.zeros(self.n_labels, dtype=np.int64)  # rows per label offered to the long-term memory
        self._rng = np.random.default_rng(seed)
        self._window = _empty(n_features)
        self._long = [_empty(n_features) for _ in range(self.n_labels)]

    def _rows(self) -> dict[str, np.ndarray]:
        return _cat(*self._long, self._window)

    def __len__(self) -> int:
        return int(self._window["y"].shape[0] + sum(p["y"].shape[0] for p in self._long))

    @property
    def x(self) -> np.ndarray:
        return self._rows()["x"]

    @property
    def y(self) -> np.ndarray:
        return self._rows()["y"]

    @property
    def ids(self) -> np.ndarray:
        return self._rows()["ids"]

    @property
    def t(self) -> np.ndarray:
        return self._rows()["t"]

    def sample(self) -> Sample:
        rows = self._rows()
        return Sample(x=rows["x"], y=rows["y"], ids=rows["ids"], t=rows["t"])

    def add(self, x: np.ndarray, y: np.ndarray, ids: np.ndarray) -> None:
        """Offer rows in stream order. The arguments are read, never written."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.n_features)
        y = np.asarray(y, dtype=np.int64)
        ids = np.asarray(ids, dtype=np.uint64)
        if not (x.shape[0] == y.shape[0] == ids.shape[0]):
            raise ValueError("x, y and ids must have the same number of rows")
        n = x.shape[0]
        fresh = {"x": x.copy(), "y": y.copy(), "ids": ids.copy(),
                 "t": np.arange(self.seen, self.seen + n, dtype=np.int64)}
        self.seen += n
        window = _cat(self._window, fresh)
        leaving = max(0, window["y"].shape[0] - self.recent)
        self._window = _take(window, slice(leaving, None))
        old = _take(window, slice(0, leaving))
        for c in range(self.n_labels):
            mine = np.nonzero(old["y"] == c)[0] if self.n_labels > 1 else np.arange(leaving)
            self._offer(c, _take(old, mine))

    def _offer(self, c: int, rows: dict[str, np.ndarray]) -> None:
        """Algorithm R for label ``c``'s long-term slots."""
        n = rows["y"].shape[0]
        if n == 0 or self.slots == 0:
            self.offered[c] += n
            return
        buf = self._long[c]
        free = self.slots - buf["y"].shape[0]
        take = min(max(free, 0), n)
        buf = _cat(buf, _take(rows, slice(0, take)))
        self.offered[c] += take
        if take < n:
            # Row number s (0-based within the label) draws j uniform in [0, s]; it replaces slot j
            # when j < slots. Only about slots · ln(n / slots) rows land: loop over those, in order.
            buf = {k: v.copy() for k, v in buf.items()}
            s = np.arange(self.offered[c], self.offered[c] + (n - take), dtype=np.int64)
            j = self._rng.integers(0, s + 1)
            for k in np.nonzero(j < self.slots)[0]:
                slot, row = int(j[k]), take + int(k)
                for col in _COLS:
                    buf[col][slot] = rows[col][row]
            self.offered[c] += n - take
        self._long[c] = buf

    def cut(self, position: int) -> None:
        """Forget every row offered before stream ``position`` (a detected change)."""
        self._window = _take(self._window, self._window["t"] >= position)
        for c in range(self.n_labels):
            keep = self._long[c]["t"] >= position
            self._long[c] = _take(self._long[c], keep)
            # What is left is (about) all the label's post-change rows that left the window.
            self.offered[c] = int(keep.sum())

    def reconfigured(self, recent_share: float, n_labels: int) -> Reservoir:
        """A copy with another window share / label count (a changed setting, a state from before the window).

        The newest rows make the window; the rest are spread over the per-label memories (a
        seeded uniform subset where a label has more rows than slots). How many rows each label
        had offered is estimated from its share of the older rows, so later inclusion
        probabilities are approximately, not exactly, those of the module docstring.
        """
        out = Reservoir(self.capacity, self.n_features, self.seed, recent_share, n_labels)
        out._rng.bit_generator.state = self._rng.bit_generator.state
        out.seen = self.seen
        rows = self._rows()
        order = np.argsort(rows["t"], kind="stable")
        rows = _take(rows, order)
        n_window = min(out.recent, len(order))
        out._window = _take(rows, slice(len(order) - n_window, None))
        rest = _take(rows, slice(0, len(order) - n_window))
        older = max(self.seen - n_window, len(rest["y"]))
        for c in range(out.n_labels):
            mine = np.nonzero(rest["y"] == c)[0] if out.n_labels > 1 else np.arange(len(rest["y"]))
            keep = np.sort(out._rng.permutation(mine)[:out.slots])
            out._long[c] = _take(rest, keep)
            share = len(mine) / max(len(rest["y"]), 1)
            out.offered[c] = max(len(mine), int(round(share * older)))
        return out

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        meta = {"capacity": self.capacity, "n_features": self.n_features, "seed": self.seed, "seen": self.seen,
                "recent_share": self.recent_share, "n_labels": self.n_labels, "offered": self.offered.tolist(),
                "rng": self._rng.bit_generator.state}
        arrays = {f"w_{k}": v for k, v in self._window.items()}
        for c, part in enumerate(self._long):
            arrays.update({f"l{c}_{k}": v for k, v in part.items()})
        np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Reservoir:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            r = cls(capacity=int(meta["capacity"]), n_features=int(meta["n_features"]), seed=int(meta["seed"]),
                    recent_share=float(meta.get("recent_share", 0.0)), n_labels=int(meta.get("n_labels", 1)))
            if "w_x" not in z.files:  # a state written before the window existed: its uniform sample is long-term
                n = z["y"].shape[0]
                r._long[0] = {"x": z["x"].astype(np.float64), "y": z["y"].astype(np.int64),
                              "ids": z["ids"].astype(np.uint64), "t": np.zeros(n, dtype=np.int64)}
                r.offered[0] = int(meta["seen"])
            else:
                r._window = {k: z[f"w_{k}"] for k in _COLS}
                r._long = [{k: z[f"l{c}_{k}"] for k in _COLS} for c in range(r.n_labels)]
                r.offered = np.asarray(meta["offered"], dtype=np.int64)
        r.seen = int(meta["seen"])
        r._rng.bit_generator.state = meta["rng"]
        return r
