"""The reservoir: a fixed-size uniform sample of every record the worker has consumed.

Algorithm R (J. S. Vitter, "Random sampling with a reservoir", ACM Transactions on
Mathematical Software 11(1), 1985, pp. 37-57): the first ``k`` items fill the reservoir; item
number ``t`` (0-based, ``t >= k``) replaces a uniformly chosen slot with probability
``k / (t + 1)``. After ``n`` items every item is in the reservoir with probability ``k / n``, so
a round trains on new records plus a sample of *all* earlier ones at a cost independent of
the history's length. The random generator is seeded and its state is saved with the sample,
so the same seed and the same stream give the same reservoir, across restarts too.

Rows are stored as numpy arrays: features (float64, n × d), label indices (int64) and 64-bit
id hashes (uint64; see ``worker.drain.id_hash``). ``add`` never mutates its inputs.

>>> import numpy as np
>>> r = Reservoir(capacity=3, n_features=1, seed=7)
>>> r.add(np.arange(10.0).reshape(10, 1), np.zeros(10, dtype=np.int64), np.arange(10, dtype=np.uint64))
>>> r.seen, len(r)
(10, 3)
>>> again = Reservoir(capacity=3, n_features=1, seed=7)
>>> again.add(np.arange(10.0).reshape(10, 1), np.zeros(10, dtype=np.int64), np.arange(10, dtype=np.uint64))
>>> bool((again.x == r.x).all())
True
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sample:
    """The reservoir's rows (copies): features, label indices, id hashes."""

    x: np.ndarray
    y: np.ndarray
    ids: np.ndarray


class Reservoir:
    """Algorithm R over (features, label, id hash) rows; ``capacity`` rows at most."""

    def __init__(self, capacity: int, n_features: int, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError("reservoir capacity must be at least 1")
        self.capacity = capacity
        self.n_features = n_features
        self.seed = seed
        self.seen = 0  # items offered so far (the t of Algorithm R)
        self._rng = np.random.default_rng(seed)
        self._x = np.zeros((0, n_features), dtype=np.float64)
        self._y = np.zeros(0, dtype=np.int64)
        self._ids = np.zeros(0, dtype=np.uint64)

    def __len__(self) -> int:
        return int(self._y.shape[0])

    @property
    def x(self) -> np.ndarray:
        return self._x.copy()

    @property
    def y(self) -> np.ndarray:
        return self._y.copy()

    @property
    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def sample(self) -> Sample:
        return Sample(x=self.x, y=self.y, ids=self.ids)

    def add(self, x: np.ndarray, y: np.ndarray, ids: np.ndarray) -> None:
        """Offer rows in order (Algorithm R). The arguments are read, never written."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.n_features)
        y = np.asarray(y, dtype=np.int64)
        ids = np.asarray(ids, dtype=np.uint64)
        if not (x.shape[0] == y.shape[0] == ids.shape[0]):
            raise ValueError("x, y and ids must have the same number of rows")
        n = x.shape[0]
        start = 0
        free = self.capacity - len(self)
        if free > 0:
            take = min(free, n)
            self._x = np.concatenate([self._x, x[:take]])
            self._y = np.concatenate([self._y, y[:take]])
            self._ids = np.concatenate([self._ids, ids[:take]])
            self.seen += take
            start = take
        if start == n:
            return
        # Item t (0-based) draws j uniform in [0, t]; it replaces slot j when j < capacity.
        # Only about capacity * ln(n / capacity) items ever land, so loop over those alone, in
        # order (a later item overwrites an earlier one in the same slot, as in the serial loop).
        x_buf, y_buf, id_buf = self._x.copy(), self._y.copy(), self._ids.copy()
        t = np.arange(self.seen, self.seen + (n - start), dtype=np.int64)
        j = self._rng.integers(0, t + 1)
        for k in np.nonzero(j < self.capacity)[0]:
            slot, row = int(j[k]), start + int(k)
            x_buf[slot], y_buf[slot], id_buf[slot] = x[row], y[row], ids[row]
        self._x, self._y, self._ids = x_buf, y_buf, id_buf
        self.seen += n - start

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        meta = {"capacity": self.capacity, "n_features": self.n_features, "seed": self.seed, "seen": self.seen,
                "rng": self._rng.bit_generator.state}
        np.savez(buf, x=self._x, y=self._y, ids=self._ids, meta=np.array(json.dumps(meta)))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Reservoir:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            r = cls(capacity=int(meta["capacity"]), n_features=int(meta["n_features"]), seed=int(meta["seed"]))
            r._x, r._y, r._ids = z["x"].astype(np.float64), z["y"].astype(np.int64), z["ids"].astype(np.uint64)
        r.seen = int(meta["seen"])
        r._rng.bit_generator.state = meta["rng"]
        return r
