"""What the worker carries from round to round, versioned with the model: ``TrainingState``.

One ``.npz`` object per committed round (``state/<version>-<attempt>.npz``, named by the
round's ``ModelVersion.state_key``): the reservoir (``worker.reservoir``), the sorted 64-bit
hashes of every record id consumed so far (exact dedupe across rounds), the running
counts (records seen, per label), and what follows change (``worker.drift``): the drift
monitor's detectors, the stream position of the last detected change and the running feature
moments (in the ``meta`` JSON). A round reads the state of the latest committed round and
writes a new object; nothing is ever updated in place, so a round that crashes or loses the
commit race leaves the committed state untouched.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from worker.reservoir import Reservoir

STATE_PREFIX = "state/"


def state_key(version: str, attempt: str) -> str:
    return f"{STATE_PREFIX}{version}-{attempt}.npz"


@dataclass
class TrainingState:
    """Reservoir + seen id hashes + counts. ``seen`` is sorted and unique."""

    reservoir: Reservoir
    seen: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    label_counts: dict[str, int] = field(default_factory=dict)
    drift: dict[str, Any] = field(default_factory=dict)  # ``DriftMonitor.to_dict()``; {} before the first round
    change_at: int = -1  # stream position of the last detected change (-1: none)
    moments: dict[str, Any] = field(default_factory=dict)  # ``worker.round.Moments`` as a dict; {} before

    @classmethod
    def empty(cls, n_features: int, capacity: int, seed: int = 0, recent_share: float = 0.0,
              n_labels: int = 1) -> TrainingState:
        return cls(reservoir=Reservoir(capacity=capacity, n_features=n_features, seed=seed,
                                       recent_share=recent_share, n_labels=n_labels))

    @property
    def records_seen(self) -> int:
        return int(self.seen.shape[0])

    def unseen(self, id_hashes: np.ndarray) -> np.ndarray:
        """Mask of the hashes not consumed by any committed round."""
        h = np.asarray(id_hashes, dtype=np.uint64)
        if self.seen.size == 0 or h.size == 0:
            return np.ones(h.shape[0], dtype=bool)
        pos = np.searchsorted(self.seen, h)
        pos = np.minimum(pos, self.seen.size - 1)
        return self.seen[pos] != h

    def advanced(self, x: np.ndarray, y: np.ndarray, ids: np.ndarray, labels: tuple[str, ...]) -> TrainingState:
        """A new state with these (already deduped, unseen) rows added; ``self`` is unchanged."""
        reservoir = Reservoir.from_bytes(self.reservoir.to_bytes())
        reservoir.add(x, y, ids)
        fresh = np.unique(np.asarray(ids, dtype=np.uint64))
        fresh = fresh[self.unseen(fresh)]
        # A sorted merge by insertion: O(history) memory copy, no O(history · log) re-sort.
        seen = np.insert(self.seen, np.searchsorted(self.seen, fresh), fresh).astype(np.uint64)
        counts = dict(self.label_counts)
        for i, lab in enumerate(labels):
            counts[lab] = counts.get(lab, 0) + int((np.asarray(y) == i).sum())
        return TrainingState(reservoir=reservoir, seen=seen, label_counts=counts)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        meta: dict[str, Any] = {"label_counts": self.label_counts, "drift": self.drift, "change_at": self.change_at,
                                "moments": self.moments}
        np.savez(buf, reservoir=np.frombuffer(self.reservoir.to_bytes(), dtype=np.uint8), seen=self.seen,
                 meta=np.array(json.dumps(meta)))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainingState:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            reservoir = Reservoir.from_bytes(z["reservoir"].tobytes())
            seen = z["seen"].astype(np.uint64)
            meta = json.loads(str(z["meta"]))
        return cls(reservoir=reservoir, seen=seen, label_counts={k: int(v) for k, v in meta["label_counts"].items()},
                   drift=meta.get("drift", {}), change_at=int(meta.get("change_at", -1)),
                   moments=meta.get("moments", {}))
